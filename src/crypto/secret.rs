//! Random tokens, their at-rest hashes, constant-time comparison and `Secret<T>`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 random bits from the OS, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A short random id (128 bits, hex), for row ids and `sid`s that are not secrets.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A UUIDv7 as 32 hex digits: the first 48 bits are the time in milliseconds, so ids made
/// later sort later and rows keyed by them are appended at the right edge of their index (a
/// burst of inserts shares one page) instead of each landing on a random page that the next
/// commit must write out again.
pub fn ordered_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A refresh token: an [`ordered_id`] handle, a dot, then 256 random bits.
pub fn new_refresh_token() -> String {
    format!("{}.{}", ordered_id(), random_token())
}

/// How a refresh token is stored and looked up: its handle in clear (so new rows sort by
/// issue time), a dot, and the SHA-256 of the whole token. A token without a handle (issued
/// before handles existed) is stored as its plain hash.
pub fn refresh_token_key(token: &str) -> String {
    match token.split_once('.') {
        Some((handle, _))
            if handle.len() == 32 && handle.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            format!("{handle}.{}", hash_token(token))
        }
        _ => hash_token(token),
    }
}

/// How a token is stored: SHA-256, hex. Tokens have 256 bits of entropy, so a fast hash is
/// enough (a slow KDF is for low-entropy passwords).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Constant-time equality of two byte strings (length may leak, content does not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A value that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(********)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_256_bits_and_differ() {
        let a = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_token());
    }

    #[test]
    fn ordered_ids_sort_by_time_and_differ() {
        let a = ordered_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ordered_id();
        assert_eq!((a.len(), b.len()), (32, 32));
        assert!(a < b, "{a} then {b}");
        assert_ne!(ordered_id(), ordered_id());
    }

    #[test]
    fn refresh_keys_keep_the_handle_and_hash_the_whole_token() {
        let t = new_refresh_token();
        let (handle, secret) = t.split_once('.').unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
        let key = refresh_token_key(&t);
        assert_eq!(key, format!("{handle}.{}", hash_token(&t)));
        assert_ne!(key, refresh_token_key(&format!("{handle}.x")));
        // Tokens from before handles, and anything else, are hashed whole.
        let old = random_token();
        assert_eq!(refresh_token_key(&old), hash_token(&old));
        assert_eq!(refresh_token_key("zz.y"), hash_token("zz.y"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(********)");
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}

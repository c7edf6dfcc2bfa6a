//! The master key that seals private signing keys and upstream client secrets at rest.
//! It lives outside the database: a 0600 file in the data dir created on first start, or a
//! file the operator provides (systemd `LoadCredential=master-key:…`).

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngCore;

use super::CryptoError;

pub struct MasterKey {
    key: LessSafeKey,
    /// HKDF-SHA256 pseudorandom key of the same bytes, for values that must be equal in every
    /// process and after every restart (`derive`).
    prk: aws_lc_rs::hkdf::Prk,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(********)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| CryptoError::MasterKey("bad key".into()))?;
        let prk =
            aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, b"portcullis master key")
                .extract(bytes);
        Ok(Self {
            key: LessSafeKey::new(unbound),
            prk,
        })
    }

    /// A 256-bit key for `purpose` (HKDF-SHA256, RFC 5869), the same in every process that
    /// holds this master key: the CSRF tokens of one process are good in another and after a
    /// restart. Never the master key itself.
    pub fn derive(&self, purpose: &str) -> Result<[u8; 32], CryptoError> {
        struct Len32;
        impl aws_lc_rs::hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let mut out = [0u8; 32];
        let info = [purpose.as_bytes()];
        self.prk
            .expand(&info, Len32)
            .and_then(|okm| okm.fill(&mut out))
            .map_err(|_| CryptoError::MasterKey("key derivation failed".into()))?;
        Ok(out)
    }

    /// Where the key is read from: the configured file, else systemd's credential, else the
    /// data dir (created on first start).
    pub fn locate(configured: &str, data_dir: &Path) -> (PathBuf, bool) {
        if !configured.is_empty() {
            return (PathBuf::from(configured), false);
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let p = Path::new(&dir).join("master-key");
            if p.exists() {
                return (p, false);
            }
        }
        (data_dir.join("master.key"), true)
    }

    /// Loads the key file (base64 of 32 bytes), creating it 0600 when `create` and absent.
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self, CryptoError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = STANDARD_NO_PAD
                    .decode(text.trim().trim_end_matches('='))
                    .map_err(|_| {
                        CryptoError::MasterKey(format!("{} is not base64", path.display()))
                    })?;
                let arr: [u8; 32] = bytes.try_into().map_err(|_| {
                    CryptoError::MasterKey(format!("{} must hold 32 bytes", path.display()))
                })?;
                Self::from_bytes(&arr)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                write_private(path, &STANDARD_NO_PAD.encode(bytes)).map_err(|e| {
                    CryptoError::MasterKey(format!("cannot create {}: {e}", path.display()))
                })?;
                Self::from_bytes(&bytes)
            }
            Err(e) => Err(CryptoError::MasterKey(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// AES-256-GCM with a random 96-bit nonce; `context` is bound as associated data so a
    /// sealed value cannot be moved to another row or purpose.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| CryptoError::Unseal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(STANDARD_NO_PAD.encode(out))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, CryptoError> {
        let bytes = STANDARD_NO_PAD
            .decode(sealed)
            .map_err(|_| CryptoError::Unseal)?;
        if bytes.len() < NONCE_LEN {
            return Err(CryptoError::Unseal);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::Unseal)?;
        Ok(plain.to_vec())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_the_same_for_the_same_master_key_and_purpose() {
        let a = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let b = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(a.derive("mac").unwrap(), b.derive("mac").unwrap());
        assert_ne!(a.derive("mac").unwrap(), a.derive("other").unwrap());
        assert_ne!(a.derive("mac").unwrap(), other.derive("mac").unwrap());
    }

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let k = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let s = k.seal("key:a", b"private").unwrap();
        assert_eq!(k.open("key:a", &s).unwrap(), b"private");
        assert!(k.open("key:b", &s).is_err());
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("key:a", &s).is_err());
    }

    #[test]
    fn key_file_is_created_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let a = MasterKey::load_or_create(&p, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let b = MasterKey::load_or_create(&p, true).unwrap();
        let sealed = a.seal("x", b"y").unwrap();
        assert_eq!(b.open("x", &sealed).unwrap(), b"y");
    }
}

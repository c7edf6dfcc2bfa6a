//! Our tokens as others present them back: the JWT access token format (RFC 9068), and the
//! checks of our own access tokens at userinfo, revocation and introspection, and of ID tokens
//! given as `id_token_hint`. Minting is `mint`.
//!
//! Choices worth knowing:
//! - Every token is signed with the client's `signing_alg` by the key active for it now.
//! - Access token `aud` (RFC 9068 §3 wants a resource indicator; without a `resource`
//!   parameter the server picks a default): user tokens carry `[client_id, <issuer>/userinfo]`
//!   — the client's own API and the one resource this server hosts (Auth0 does the same);
//!   client-credentials tokens carry the client_id only. Userinfo requires its own URL.
//! - `at_hash` (OIDC Core §3.1.3.6): left half of the hash named by the ID token's `alg`:
//!   SHA-256 for RS256 and ES256. JWA names no hash for EdDSA; OIDC Core 1.0 errata set 2 and
//!   node-oidc-provider (`oidc-token-hash`) use SHA-512 for Ed25519, and so do we.
//! - Every access token also has a server-side row (`store::tokens::insert_access`): a valid
//!   signature alone is not enough at userinfo and introspection.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clock::UnixTime;
use crate::crypto::jwt;
use crate::state::AppState;

/// `typ` of JWT access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of a JWT access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    /// A string or an array of strings.
    pub aud: Value,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The person's roles in the audience application (when it defines roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// RFC 8693 §4.1: the client that acts for the subject (exchanged tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// RFC 8693 §4.1 `act`: "identifies the acting party to whom authority has been delegated".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    pub sub: String,
}

impl AccessClaims {
    pub fn audiences(&self) -> Vec<&str> {
        match &self.aud {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// Verification keys parsed from the published JWKS, rebuilt when the document changes.
struct KeyCache {
    /// The JWKS these keys came from (held so its allocation, compared by address, is not
    /// reused while cached).
    jwks: Arc<Vec<u8>>,
    keys: HashMap<String, (Algorithm, Arc<DecodingKey>)>,
}

static KEY_CACHE: LazyLock<RwLock<Option<Arc<KeyCache>>>> = LazyLock::new(Default::default);

fn parse_jwks(jwks: Arc<Vec<u8>>) -> KeyCache {
    let mut keys = HashMap::new();
    if let Ok(set) = serde_json::from_slice::<JwkSet>(&jwks) {
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (&jwk.common.key_id, jwk.common.key_algorithm) else {
                continue;
            };
            let Ok(alg) = Algorithm::try_from(alg) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid.clone(), (alg, Arc::new(key)));
            }
        }
    }
    KeyCache { jwks, keys }
}

/// The published verification key `kid` and its algorithm.
fn decoding_key(state: &AppState, kid: &str) -> Option<(Algorithm, Arc<DecodingKey>)> {
    let current = state.keys.jwks();
    let cached = KEY_CACHE.read().ok().and_then(|g| g.clone());
    let cache = match cached {
        Some(c) if Arc::ptr_eq(&c.jwks, &current) => c,
        _ => {
            let fresh = Arc::new(parse_jwks(current));
            if let Ok(mut g) = KEY_CACHE.write() {
                *g = Some(fresh.clone());
            }
            fresh
        }
    };
    cache.keys.get(kid).cloned()
}

/// Access tokens already checked (signature, `typ`, `iss`) against the JWKS in force, by the
/// SHA-256 of the token: a resource server, or an app exchanging per request, presents the
/// same token again and again, and the signature check is most of what that costs (an
/// RSA-2048 verification ~20 µs, ECDSA P-256 ~70 µs). Derived from the token and the keys
/// alone: a new JWKS (a key added or retired) empties it, and `exp` is checked every time.
struct Verified {
    jwks: Arc<Vec<u8>>,
    claims: HashMap<[u8; 32], AccessClaims>,
}

static VERIFIED: LazyLock<Mutex<Option<Verified>>> = LazyLock::new(Default::default);
/// Entries kept at most (~350 bytes each); when full it starts over.
const VERIFIED_MAX: usize = 1024;

/// Checks one of our JWT access tokens: a published key's signature, `typ: at+jwt`, our `iss`,
/// and (unless `allow_expired`) `exp` against the server clock. `None` for anything else.
/// The caller must still check the server-side row.
pub fn verify_access(
    state: &AppState,
    token: &str,
    now: UnixTime,
    allow_expired: bool,
) -> Option<AccessClaims> {
    let jwks = state.keys.jwks();
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let known = VERIFIED.lock().ok().and_then(|g| {
        g.as_ref()
            .filter(|v| Arc::ptr_eq(&v.jwks, &jwks))
            .and_then(|v| v.claims.get(&digest).cloned())
    });
    let c = match known {
        Some(c) => c,
        None => {
            let c = verify_signature(state, token)?;
            if let Ok(mut g) = VERIFIED.lock() {
                let v = g.get_or_insert_with(|| Verified {
                    jwks: jwks.clone(),
                    claims: HashMap::new(),
                });
                if !Arc::ptr_eq(&v.jwks, &jwks) || v.claims.len() >= VERIFIED_MAX {
                    *v = Verified {
                        jwks,
                        claims: HashMap::new(),
                    };
                }
                v.claims.insert(digest, c.clone());
            }
            c
        }
    };
    if !allow_expired && c.exp <= now {
        return None;
    }
    Some(c)
}

/// The signature, `typ` and `iss` part of [`verify_access`], uncached.
fn verify_signature(state: &AppState, token: &str) -> Option<AccessClaims> {
    jwt::install();
    let header = jsonwebtoken::decode_header(token).ok()?;
    // RFC 9068 §4: "Resource servers MUST verify that the typ header value is at+jwt or
    // application/at+jwt and reject tokens carrying any other value."
    let typ = header.typ.as_deref()?;
    if !(typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
        || typ.eq_ignore_ascii_case("application/at+jwt"))
    {
        return None;
    }
    let (alg, key) = decoding_key(state, header.kid.as_deref()?)?;
    if header.alg != alg {
        return None;
    }
    let mut v = Validation::new(alg);
    // Time is checked against the server clock by the caller, the audience by each endpoint.
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &v).ok()?;
    let c = data.claims;
    if c.iss != state.config.issuer() {
        return None;
    }
    Some(c)
}

/// What a verified `id_token_hint` says (OIDC RP-Initiated Logout 1.0 §2).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IdTokenHint {
    pub sub: String,
    /// The client the ID token was issued to (our ID tokens have a single audience).
    #[serde(default, deserialize_with = "single_audience")]
    pub aud: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
}

fn single_audience<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Array(a) if a.len() == 1 => a.into_iter().next().and_then(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        }),
        _ => None,
    })
}

/// Checks an ID token we issued, as an `id_token_hint`: a published key's signature, our
/// `iss`; an expired one is fine ("The OP need not be the audience … expired ID Tokens may be
/// used"). Access tokens (`typ: at+jwt`) and `alg: none` are refused.
pub fn verify_id_token_hint(state: &AppState, token: &str) -> Option<IdTokenHint> {
    jwt::install();
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header
        .typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
    {
        return None;
    }
    let (alg, key) = decoding_key(state, header.kid.as_deref()?)?;
    if header.alg != alg {
        return None;
    }
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.set_issuer(&[state.config.issuer()]);
    Some(
        jsonwebtoken::decode::<IdTokenHint>(token, &key, &v)
            .ok()?
            .claims,
    )
}

/// Whether `token` looks like a JWT (three dot-separated parts) rather than an opaque token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn jwt_shape_is_three_parts() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("opaque-token"));
    }
}

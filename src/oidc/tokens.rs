//! Token minting and verification: ID tokens (OIDC Core §2), JWT access tokens (RFC 9068),
//! opaque refresh tokens, and the check of our own access tokens at userinfo, revocation and
//! introspection.
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
use std::sync::{Arc, LazyLock, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::clock::UnixTime;
use crate::config::Config;
use crate::crypto::jwt;
use crate::crypto::key_pairs::Alg;
use crate::oidc::error::OAuthError;
use crate::state::AppState;
use crate::store::clients::Client;

/// `typ` of JWT access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Token lifetimes in seconds: the client's override, else the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub access: i64,
    pub id_token: i64,
    pub refresh: i64,
    pub refresh_absolute: i64,
}

impl Lifetimes {
    pub fn of(config: &Config, client: &Client) -> Self {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            access: client
                .access_token_ttl
                .unwrap_or(secs(config.access_token_ttl)),
            id_token: client.id_token_ttl.unwrap_or(secs(config.id_token_ttl)),
            refresh: client
                .refresh_token_ttl
                .unwrap_or(secs(config.refresh_token_ttl)),
            refresh_absolute: secs(config.refresh_token_absolute_ttl),
        }
    }
}

/// The algorithm the client's tokens are signed with.
pub fn signing_alg(client: &Client) -> Result<Alg, OAuthError> {
    Alg::parse(&client.signing_alg).ok_or_else(|| {
        tracing::error!(client = %client.id, alg = %client.signing_alg, "unknown signing algorithm");
        OAuthError::server_error()
    })
}

/// OIDC Core §3.1.3.6: "Its value is the base64url encoding of the left-most half of the hash
/// of the octets of the ASCII representation of the access_token value, where the hash
/// algorithm used is the hash algorithm used in the alg Header Parameter of the ID Token's
/// JOSE Header." EdDSA (Ed25519): SHA-512, per the errata and common practice.
pub fn at_hash(access_token: &str, alg: Alg) -> String {
    match alg {
        Alg::RS256 | Alg::ES256 => {
            let h = Sha256::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(h.get(..16).unwrap_or_default())
        }
        Alg::EdDSA => {
            let h = Sha512::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(h.get(..32).unwrap_or_default())
        }
    }
}

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

/// Who an access token is for.
pub enum Subject<'a> {
    /// A user, signed in at `auth_time`, maybe within browser session `sid`.
    User {
        user_id: &'a str,
        auth_time: UnixTime,
        sid: Option<&'a str>,
    },
    /// The client itself (client_credentials).
    Client,
}

/// A new access token's claims, with a fresh `jti`.
pub fn access_claims(
    state: &AppState,
    client_id: &str,
    subject: Subject<'_>,
    scope: &str,
    now: UnixTime,
    ttl: i64,
) -> AccessClaims {
    let (sub, aud, auth_time, sid) = match subject {
        Subject::User {
            user_id,
            auth_time,
            sid,
        } => (
            user_id.to_string(),
            json!([client_id, state.url("/userinfo")]),
            Some(auth_time),
            sid.map(str::to_string),
        ),
        Subject::Client => (client_id.to_string(), json!(client_id), None, None),
    };
    AccessClaims {
        iss: state.config.issuer().to_string(),
        sub,
        aud,
        exp: now.saturating_add(ttl),
        iat: now,
        jti: crate::crypto::secret::ordered_id(),
        client_id: client_id.to_string(),
        scope: scope.to_string(),
        auth_time,
        sid,
    }
}

/// What an ID token says about the authentication (OIDC Core §2).
pub struct IdTokenFacts<'a> {
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub auth_time: UnixTime,
    pub nonce: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub amr: &'a [String],
    pub acr: Option<&'a str>,
    pub at_hash: Option<String>,
}

/// The ID token claim set: the released user claims, then the protocol claims (which always
/// win). `iss` is byte for byte the issuer of discovery.
pub fn id_token_claims(
    issuer: &str,
    f: &IdTokenFacts<'_>,
    released: Map<String, Value>,
    now: UnixTime,
    ttl: i64,
) -> Map<String, Value> {
    let mut c = released;
    c.insert("iss".into(), json!(issuer));
    c.insert("sub".into(), json!(f.user_id));
    c.insert("aud".into(), json!(f.client_id));
    c.insert("exp".into(), json!(now.saturating_add(ttl)));
    c.insert("iat".into(), json!(now));
    c.insert("auth_time".into(), json!(f.auth_time));
    c.insert("azp".into(), json!(f.client_id));
    // Only when the authorization request carried one (OIDC Core §3.1.2.1).
    if let Some(n) = f.nonce {
        c.insert("nonce".into(), json!(n));
    }
    if let Some(sid) = f.sid {
        c.insert("sid".into(), json!(sid));
    }
    if !f.amr.is_empty() {
        c.insert("amr".into(), json!(f.amr));
    }
    if let Some(acr) = f.acr {
        c.insert("acr".into(), json!(acr));
    }
    if let Some(h) = &f.at_hash {
        c.insert("at_hash".into(), json!(h));
    }
    c
}

/// Signs with the key active for `alg` now.
pub fn sign<T: Serialize>(
    state: &AppState,
    claims: &T,
    alg: Alg,
    typ: &str,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let kid = state.keys.active_kid(alg, now).map_err(|e| {
        tracing::error!(error = %e, "no signing key");
        OAuthError::server_error()
    })?;
    jwt::sign(claims, &kid, alg, typ).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        OAuthError::server_error()
    })
}

pub fn sign_access(
    state: &AppState,
    claims: &AccessClaims,
    alg: Alg,
    now: UnixTime,
) -> Result<String, OAuthError> {
    sign(state, claims, alg, ACCESS_TOKEN_TYP, now)
}

pub fn sign_id_token(
    state: &AppState,
    claims: &Map<String, Value>,
    alg: Alg,
    now: UnixTime,
) -> Result<String, OAuthError> {
    sign(state, claims, alg, "JWT", now)
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

/// Checks one of our JWT access tokens: a published key's signature, `typ: at+jwt`, our `iss`,
/// and (unless `allow_expired`) `exp` against the server clock. `None` for anything else.
/// The caller must still check the server-side row.
pub fn verify_access(
    state: &AppState,
    token: &str,
    now: UnixTime,
    allow_expired: bool,
) -> Option<AccessClaims> {
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
    // Time is checked against the server clock below, the audience by each endpoint.
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &v).ok()?;
    let c = data.claims;
    if c.iss != state.config.issuer() {
        return None;
    }
    if !allow_expired && c.exp <= now {
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
    fn at_hash_is_the_left_half_of_sha256_for_rs256_and_es256() {
        // OIDC Core example (§A.3 ID token with at_hash): access token and its at_hash.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash(token, Alg::RS256), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash(token, Alg::ES256), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn at_hash_for_eddsa_is_the_left_half_of_sha512() {
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        let full = Sha512::digest(token.as_bytes());
        let h = at_hash(token, Alg::EdDSA);
        assert_eq!(URL_SAFE_NO_PAD.decode(&h).unwrap(), full[..32].to_vec());
        assert_eq!(h.len(), 43);
    }

    fn facts<'a>(nonce: Option<&'a str>, amr: &'a [String]) -> IdTokenFacts<'a> {
        IdTokenFacts {
            client_id: "app",
            user_id: "u1",
            auth_time: 100,
            nonce,
            sid: Some("s1"),
            amr,
            acr: None,
            at_hash: Some("h".into()),
        }
    }

    #[test]
    fn id_token_has_nonce_only_when_the_request_had_one() {
        let c = id_token_claims("https://id", &facts(None, &[]), Map::new(), 1000, 60);
        assert!(c.get("nonce").is_none());
        assert!(c.get("amr").is_none(), "empty amr is left out");
        let amr = vec!["pwd".to_string()];
        let c = id_token_claims("https://id", &facts(Some("n"), &amr), Map::new(), 1000, 60);
        assert_eq!(c.get("nonce"), Some(&json!("n")));
        assert_eq!(c.get("amr"), Some(&json!(["pwd"])));
    }

    #[test]
    fn id_token_protocol_claims_win_over_released_claims() {
        let mut released = Map::new();
        released.insert("sub".into(), json!("evil"));
        released.insert("email".into(), json!("a@b.c"));
        let c = id_token_claims("https://id", &facts(None, &[]), released, 1000, 60);
        assert_eq!(c.get("sub"), Some(&json!("u1")));
        assert_eq!(c.get("aud"), Some(&json!("app")));
        assert_eq!(c.get("azp"), Some(&json!("app")));
        assert_eq!(c.get("exp"), Some(&json!(1060)));
        assert_eq!(c.get("auth_time"), Some(&json!(100)));
        assert_eq!(c.get("sid"), Some(&json!("s1")));
        assert_eq!(c.get("email"), Some(&json!("a@b.c")));
    }

    #[test]
    fn jwt_shape_is_three_parts() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("opaque-token"));
    }
}

//! POST /device_authorization — the device authorization endpoint (RFC 8628 §3.1, §3.2).
//!
//! A device without a browser (a TV, a command line) authenticates as at /token (public
//! clients send only `client_id`), and gets a device code to poll /token with and a short
//! user code for the person to type at /device (`login::device`). The client must be allowed
//! the grant (`allow_device_code`). Both codes are stored hashed: the device code with
//! SHA-256 like every token, the user code (only ~34 bits) with an HMAC under a key derived
//! from the master key, so a copy of the database alone cannot be searched for live codes.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rand::Rng;
use serde::Serialize;

use crate::crypto::secret::{hash_token, random_token};
use crate::domain::scope;
use crate::oidc::client_auth::{self, FormParams};
use crate::oidc::cors;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grants;
use crate::state::AppState;
use crate::store;
use crate::store::clients::Client;
use crate::store::device_codes::NewDeviceCode;
use crate::web::State;
use crate::web::session;

/// How long a device authorization waits for the person (RFC 8628 §3.2 `expires_in`).
pub const LIFETIME_SECS: i64 = 600;
/// The minimum seconds between polls (RFC 8628 §3.2 `interval`).
pub const INTERVAL_SECS: i64 = 5;
/// At most this many codes of one client may wait for a person at once, so the table cannot
/// be flooded.
pub const MAX_PENDING_PER_CLIENT: i64 = 100;
/// RFC 8628 §6.1: consonants only (no vowels, so no words; no look-alikes such as 0/O, 1/I).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (20^8 ≈ 2^34.6; guesses are throttled at /device).
pub const USER_CODE_LEN: usize = 8;
/// Longest device_agent recorded.
const MAX_AGENT_LEN: usize = 512;

/// RFC 8628 §3.2.
#[derive(Debug, Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// A new user code, as shown: `XXXX-XXXX`.
pub fn new_user_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let mut out = String::with_capacity(USER_CODE_LEN + 1);
    for i in 0..USER_CODE_LEN {
        if i == USER_CODE_LEN / 2 {
            out.push('-');
        }
        let n = rng.gen_range(0..USER_CODE_ALPHABET.len());
        out.push(char::from(
            USER_CODE_ALPHABET.get(n).copied().unwrap_or(b'B'),
        ));
    }
    out
}

/// A user code as typed, normalised (RFC 8628 §6.1: case-insensitive, dashes and spaces
/// ignored): `None` unless it is then exactly 8 characters of the alphabet.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// `ABCDEFGH` as shown: `ABCD-EFGH`.
pub fn display_user_code(normalized: &str) -> String {
    let (a, b) = normalized.split_at(normalized.len().min(USER_CODE_LEN / 2));
    format!("{a}-{b}")
}

/// How a (normalised) user code is stored and looked up.
pub fn user_code_hash(state: &AppState, normalized: &str) -> String {
    state.mac("device-user-code", normalized)
}

pub async fn post(state: State, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let mut resp = match handle(&state, &req, &body).await {
        Ok(r) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(r),
        Err(e) => crate::oidc::token::error_response(&e, "device_authorization"),
    };
    cors::apply_to(&state, &req, &mut resp).await;
    resp
}

/// RFC 8628 §3.1: the client authenticates as at the token endpoint; `scope` is optional.
async fn handle(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<DeviceAuthorizationResponse, OAuthError> {
    let form = FormParams::parse(req, body)?;
    let client = client_auth::authenticate(state, req, &form).await?.client;
    may_use(&client)?;
    let requested = scope::parse(form.get("scope").unwrap_or("")).ok_or_else(|| {
        OAuthError::new(ErrorCode::InvalidScope, "scope contains invalid characters")
    })?;
    let custom =
        crate::domain::claims::custom_scopes(&state.db.read(store::users::claim_scopes).await?);
    let scopes = grants::user_scopes(&client, &requested, &custom);
    let scope_text = scope::join(&scopes);
    let now = state.now();
    let device_code = random_token();
    let device_code_hash = hash_token(&device_code);
    // A few candidates, in case one is taken (the column is unique): made outside the
    // transaction like every random value.
    let candidates: Vec<(String, String)> = (0..4)
        .map(|_| {
            let shown = new_user_code();
            let hash = normalize_user_code(&shown)
                .map(|n| user_code_hash(state, &n))
                .unwrap_or_default();
            (shown, hash)
        })
        .collect();
    let ip = session::ip_string(state, req);
    let agent: Option<String> =
        session::user_agent(req).map(|a| a.chars().take(MAX_AGENT_LEN).collect());
    let cid = client.id.clone();
    let user_code = state
        .db
        .try_write(move |c| -> Result<String, OAuthError> {
            if store::device_codes::pending_count(c, &cid, now)? >= MAX_PENDING_PER_CLIENT {
                tracing::warn!(client = %cid, "device authorization refused: too many pending codes");
                return Err(OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "too many device sign-ins are waiting for this client; try again later",
                ));
            }
            for (shown, hash) in candidates {
                if hash.is_empty() || store::device_codes::user_code_taken(c, &hash)? {
                    continue;
                }
                store::device_codes::insert(
                    c,
                    &NewDeviceCode {
                        device_code_hash: &device_code_hash,
                        user_code_hash: &hash,
                        client_id: &cid,
                        scope: &scope_text,
                        device_ip: ip.as_deref(),
                        device_agent: agent.as_deref(),
                        interval_secs: INTERVAL_SECS,
                        expires_at: now + LIFETIME_SECS,
                    },
                    now,
                )?;
                return Ok(shown);
            }
            Err(OAuthError::server_error())
        })
        .await?;
    let verification_uri = state.url("/device");
    Ok(DeviceAuthorizationResponse {
        device_code,
        verification_uri_complete: format!("{verification_uri}?code={user_code}"),
        user_code,
        verification_uri,
        expires_in: LIFETIME_SECS,
        interval: INTERVAL_SECS,
    })
}

/// RFC 6749 §5.2 unauthorized_client, as RFC 8628 §3.2 points to it: the client is not
/// allowed the device grant.
pub fn may_use(client: &Client) -> Result<(), OAuthError> {
    if client.allow_device_code {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "device sign-in is turned off for this client",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn user_codes_are_eight_consonants_shown_in_two_halves() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 9, "{c}");
            assert_eq!(c.as_bytes()[4], b'-', "{c}");
            let n = normalize_user_code(&c).unwrap();
            assert!(n.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)), "{c}");
            assert_eq!(display_user_code(&n), c);
        }
        assert_ne!(new_user_code(), new_user_code());
    }

    #[test]
    fn typed_codes_are_normalised_rfc8628_6_1() {
        assert_eq!(
            normalize_user_code("wdjb-mjht").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(
            normalize_user_code(" wdjb mjht ").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(normalize_user_code("WDJBMJHT").as_deref(), Some("WDJBMJHT"));
        for bad in [
            "",
            "WDJB-MJH",
            "WDJB-MJHTX",
            "AEIO-UWDJ",
            "WDJB-MJH1",
            "WDJB–MJHT",
            "ÅDJB-MJHT",
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
    }
}

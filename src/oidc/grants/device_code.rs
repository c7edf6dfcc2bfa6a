//! grant_type=urn:ietf:params:oauth:grant-type:device_code (RFC 8628 §3.4, §3.5).
//!
//! One transaction per poll: find the device code (of this client), record the poll, and
//! answer what the person decided — `authorization_pending` while they have not,
//! `slow_down` (and 5 s more interval from now on) when the device polls faster than its
//! interval, `access_denied`, `expired_token`. An approved code is marked used atomically
//! (two parallel polls cannot both succeed) and recorded through the same writes as an
//! authorization code (`authorization_code::record`: user still allowed, refresh family
//! under the same rules, access token record, the session's client). Errors that record
//! something (the poll time, a raised interval) are returned as outcomes, not `Err`, so the
//! transaction commits them.

use crate::clock::UnixTime;
use crate::crypto::secret::hash_token;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grants::authorization_code::{NewIds, record};
use crate::oidc::mint::{Minting, UserGrant};
use crate::state::AppState;
use crate::store;
use crate::store::clients::Client;
use crate::store::codes::CodeGrant;
use crate::store::device_codes::{DeviceCode, Status};

/// RFC 8628 §3.5: "the interval MUST be increased by 5 seconds for this and all subsequent
/// requests."
pub const SLOW_DOWN_STEP: i64 = 5;
/// The interval never grows past this.
const MAX_INTERVAL: i64 = 60;

enum Outcome {
    Granted(Box<UserGrant>),
    Pending,
    SlowDown,
    Denied,
    Expired,
    Invalid(&'static str),
}

/// Exchanges `device_code` for `client`'s tokens once the person approved it.
pub async fn exchange(
    state: &AppState,
    client: &Client,
    minting: &Minting,
    device_code: &str,
    now: UnixTime,
) -> Result<UserGrant, OAuthError> {
    let life = minting.life;
    let c = client.clone();
    let hash = hash_token(device_code);
    let ids = NewIds::new();
    let outcome = state
        .db
        .try_write(move |conn| -> Result<Outcome, OAuthError> {
            let Some(row) = store::device_codes::by_device_code_hash(conn, &hash)? else {
                return Ok(Outcome::Invalid("the device code is invalid"));
            };
            if row.client_id != c.id {
                return Ok(Outcome::Invalid("the device code is invalid"));
            }
            match row.status {
                Status::Used => Ok(Outcome::Invalid("the device code was already used")),
                _ if row.is_expired(now) => Ok(Outcome::Expired),
                Status::Denied => Ok(Outcome::Denied),
                Status::Pending => {
                    let too_fast = row
                        .last_polled_at
                        .is_some_and(|t| now.saturating_sub(t) < row.interval_secs);
                    let interval = if too_fast {
                        (row.interval_secs + SLOW_DOWN_STEP).min(MAX_INTERVAL)
                    } else {
                        row.interval_secs
                    };
                    store::device_codes::poll(conn, &hash, interval, now)?;
                    Ok(if too_fast {
                        Outcome::SlowDown
                    } else {
                        Outcome::Pending
                    })
                }
                Status::Approved => {
                    if !store::device_codes::mark_used(conn, &hash, now)? {
                        return Ok(Outcome::Invalid("the device code was already used"));
                    }
                    let Some(grant) = code_grant(&row) else {
                        return Ok(Outcome::Invalid("the device code is invalid"));
                    };
                    // An `Err` here (the user may no longer use the client) rolls the use back.
                    let decided = record(conn, &c, grant, &hash, ids, life, now)?;
                    Ok(Outcome::Granted(Box::new(decided)))
                }
            }
        })
        .await?;
    match outcome {
        Outcome::Granted(g) => Ok(*g),
        Outcome::Pending => Err(OAuthError::new(
            ErrorCode::AuthorizationPending,
            "the person has not yet approved this device",
        )),
        Outcome::SlowDown => Err(OAuthError::new(
            ErrorCode::SlowDown,
            "polling too fast: wait 5 seconds more between requests",
        )),
        Outcome::Denied => Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the person denied this device",
        )),
        Outcome::Expired => Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the device code has expired; start again",
        )),
        Outcome::Invalid(d) => Err(OAuthError::invalid_grant(d)),
    }
}

/// An approved device authorization as the grant `record` writes (no redirect URI, PKCE,
/// nonce or claims request: the device flow has none). `None` without an approving user.
fn code_grant(row: &DeviceCode) -> Option<CodeGrant> {
    Some(CodeGrant {
        client_id: row.client_id.clone(),
        user_id: row.user_id.clone()?,
        sid: row.sid.clone(),
        redirect_uri: String::new(),
        redirect_uri_sent: false,
        scope: row.scope.clone(),
        nonce: None,
        code_challenge: None,
        claims: None,
        auth_time: row.auth_time?,
        amr: row.amr.clone(),
        acr: row.acr.clone(),
    })
}

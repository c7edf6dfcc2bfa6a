//! OpenID Connect Back-Channel Logout 1.0: delivery of Logout Tokens from the durable outbox.
//!
//! Ending a session writes one `logout_outbox` row per client of that session that has a
//! `backchannel_logout_uri`, in the same transaction (see `store::sessions::end`). This worker
//! sends them: a fresh token per attempt (RPs such as Immich refuse tokens older than two
//! minutes), a timeout per request, exponential backoff, a give-up limit and audit events. A
//! slow or dead RP never blocks anyone's sign-out page.

use std::time::Duration;

use serde_json::json;

use crate::clock::{Clock, UnixTime};
use crate::crypto::key_pairs::Alg;
use crate::crypto::secret::random_id;
use crate::ops::signing_keys::KeyManager;
use crate::outbound::Outbound;
use crate::store::audit::NewEvent;
use crate::store::outbox::Due;
use crate::store::{self, Db, StoreError};

/// Attempts before giving up (backoff 5 s, 10 s, 20 s … capped at an hour: about a day).
pub const MAX_ATTEMPTS: i64 = 12;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long claimed deliveries belong to the pass that claimed them (a few request timeouts):
/// longer than any pass takes, short enough that a crashed sender's rows go out soon after.
const LEASE: i64 = 60;
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a delivery pass needs (the server's state provides it; see `jobs`).
pub struct Delivery<'a> {
    pub db: &'a Db,
    pub keys: &'a KeyManager,
    pub outbound: &'a Outbound,
    pub issuer: &'a str,
    pub clock: &'a dyn Clock,
}

/// The Logout Token (§2.4) for one delivery: iss, aud, iat, exp, jti, events with exactly the
/// back-channel logout member set to `{}`, sub and/or sid (equal to the ID token's), and never
/// a nonce. Signed with the client's algorithm.
pub fn logout_token(keys: &KeyManager, issuer: &str, d: &Due, now: UnixTime) -> Option<String> {
    let alg = Alg::parse(&d.alg).unwrap_or(Alg::RS256);
    let mut claims = json!({
        "iss": issuer,
        "aud": d.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": random_id(),
        "events": { EVENT: {} },
        "sub": d.user_id,
    });
    if let (Some(obj), Some(sid)) = (claims.as_object_mut(), &d.sid) {
        obj.insert("sid".into(), json!(sid));
    }
    if d.session_required && d.sid.is_none() {
        // The client needs a sid, which this event does not have: sub alone identifies the user.
        tracing::debug!(client_id = %d.client_id, "logout token without sid");
    }
    let kid = keys.active_kid(alg, now).ok()?;
    crate::crypto::jwt::sign(&claims, &kid, alg, "logout+jwt").ok()
}

fn backoff(attempts: i64) -> i64 {
    (5i64 << attempts.clamp(0, 20)).min(3600)
}

/// One pass: sends every due delivery concurrently; returns how many were delivered.
pub async fn deliver_due(d: &Delivery<'_>) -> Result<usize, StoreError> {
    let (state, now) = (d, d.clock.now());
    if !state
        .db
        .read(move |c| store::outbox::any_due(c, now))
        .await?
    {
        return Ok(0);
    }
    let batch = state
        .db
        .write(move |c| store::outbox::claim_due(c, now, LEASE))
        .await?;
    let sends = batch.into_iter().map(|d| async move {
        let result = match logout_token(state.keys, state.issuer, &d, state.clock.now()) {
            None => Err("no signing key".to_string()),
            Some(token) => match state.outbound.post(&d.uri) {
                Err(refused) => Err(refused.to_string()),
                Ok(request) => request
                    .timeout(REQUEST_TIMEOUT)
                    .form(&[("logout_token", token.as_str())])
                    .send()
                    .await
                    .map_err(|e| format!("{e}"))
                    .and_then(|r| {
                        if r.status().is_success() {
                            Ok(())
                        } else {
                            Err(format!("HTTP {}", r.status().as_u16()))
                        }
                    }),
            },
        };
        (d, result)
    });
    let results = futures_util::future::join_all(sends).await;
    let now = state.clock.now();
    let delivered = results.iter().filter(|(_, r)| r.is_ok()).count();
    state
        .db
        .write(move |c| {
            for (d, r) in &results {
                let (kind, extra) = match r {
                    Ok(()) => {
                        store::outbox::remove(c, d.id)?;
                        ("logout.backchannel_delivered", json!(null))
                    }
                    Err(e) if d.attempts + 1 >= MAX_ATTEMPTS => {
                        store::outbox::remove(c, d.id)?;
                        ("logout.backchannel_gave_up", json!(e))
                    }
                    Err(e) => {
                        store::outbox::retry_later(c, d.id, now + backoff(d.attempts), e)?;
                        ("logout.backchannel_failed", json!(e))
                    }
                };
                store::audit::record(
                    c,
                    &NewEvent {
                        kind,
                        user_id: Some(&d.user_id),
                        client_id: Some(&d.client_id),
                        detail: Some(
                            json!({"sid": d.sid, "attempts": d.attempts + 1, "detail": extra}),
                        ),
                        ..Default::default()
                    },
                    now,
                )?;
            }
            Ok(())
        })
        .await?;
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), 5);
        assert_eq!(backoff(1), 10);
        assert_eq!(backoff(4), 80);
        assert_eq!(backoff(30), 3600);
    }
}

//! Completing a sign-in, whichever way it was made (password, passkey, second factor,
//! upstream, invite, first-run setup): a fresh session and browser id, the pending
//! authorization request told, and where to go next.

use actix_web::HttpRequest;
use actix_web::cookie::Cookie;

use crate::crypto::secret::hash_token;
use crate::domain::session::{end_sessions, start};
use crate::state::AppState;
use crate::store::audit::NewEvent;
use crate::store::{self, StoreError};
use crate::web::session::{COOKIE, cookie, ip_string, user_agent};
use crate::web::ui;

/// Completes a sign-in: ends this browser's previous session (a fresh id at every sign-in),
/// starts a new one with `amr`, records the audit event, gives the browser a new id (its
/// cookie is set by the middleware), and tells a pending authorization request (`req`) that
/// the user just signed in for it. Returns the session cookie.
pub async fn complete_sign_in(
    state: &AppState,
    req: &HttpRequest,
    user_id: &str,
    amr: Vec<String>,
    pending: &str,
) -> Result<Cookie<'static>, StoreError> {
    complete_sign_in_clearing(state, req, user_id, amr, pending, None).await
}

/// [`complete_sign_in`] that also settles the throttle's reservation of this attempt, in the
/// same transaction (the password sign-in: one write instead of two).
pub async fn complete_sign_in_clearing(
    state: &AppState,
    req: &HttpRequest,
    user_id: &str,
    amr: Vec<String>,
    pending: &str,
    attempt: Option<crate::domain::throttle::Reservation>,
) -> Result<Cookie<'static>, StoreError> {
    let now = state.now();
    let old_cookie = req
        .cookie(&ui::cookie_name(state, COOKIE))
        .map(|c| hash_token(c.value()));
    let (uid, ua, ip) = (user_id.to_string(), user_agent(req), ip_string(state, req));
    let lifetime = state.config.session_lifetime.as_secs() as i64;
    let token = state
        .db
        .write(move |c| {
            if let Some(attempt) = &attempt {
                crate::domain::throttle::succeeded(c, attempt)?;
            }
            if let Some(old) = old_cookie
                && let Some(sid) = store::sessions::sid_by_hash(c, &old)?
            {
                end_sessions(c, &[sid], Some(&uid), "replaced", now)?;
            }
            let method = amr.join(" ");
            let (s, token) = start(c, &uid, amr, ua, ip.clone(), now, lifetime)?;
            store::audit::record(
                c,
                &NewEvent {
                    kind: "login.succeeded",
                    actor_id: Some(&uid),
                    user_id: Some(&uid),
                    ip: ip.as_deref(),
                    detail: Some(serde_json::json!({"amr": method, "sid": s.sid})),
                    ..Default::default()
                },
                now,
            )?;
            Ok(token)
        })
        .await?;
    let cookie = cookie(state, token);
    // The pending request is found under the old browser id, then moves to the new one.
    let found = if pending.is_empty() {
        None
    } else {
        crate::oidc::authorize::load_pending(state, req, pending).await?
    };
    let browser = ui::renew_browser_id(req);
    if let Some((mut ar, _)) = found {
        ar.signed_in = true;
        crate::oidc::authorize::update_pending_for(state, pending, &ar, browser).await?;
    }
    Ok(cookie)
}

/// Where to go after signing in: back to the pending authorization request, or a local page.
pub fn after_sign_in(state: &AppState, pending: &str, next: &str) -> String {
    if pending.is_empty() {
        crate::web::return_to::local_or_default(&state.issuer_url, next)
    } else {
        format!("/authorize/resume?req={}", crate::web::ui::enc(pending))
    }
}

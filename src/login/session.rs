//! Browser sessions: the cookie holds a random 256-bit id, the database only its hash. A
//! fresh id at every sign-in (no fixation); idle timeout and absolute lifetime; one session
//! serves every client (single sign-on) and carries the `sid` of ID and logout tokens.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::Cookie;
use actix_web::{FromRequest, HttpRequest, HttpResponse};

use crate::app::{AppState, State};
use crate::clock::UnixTime;
use crate::crypto::secret::{hash_token, random_id, random_token};
use crate::store::audit::NewEvent;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{self, StoreError};
use crate::ui::{self, CsrfForm, PageError};

pub const COOKIE: &str = "pc_session";

/// Starts a session for `user_id` inside the caller's transaction; returns it and the cookie
/// value (call after every successful sign-in; see `complete_sign_in`).
pub fn start(
    conn: &rusqlite::Connection,
    user_id: &str,
    amr: Vec<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    now: UnixTime,
    lifetime: i64,
) -> Result<(Session, String), StoreError> {
    let token = random_token();
    let session = Session {
        id_hash: hash_token(&token),
        sid: random_id(),
        user_id: user_id.to_string(),
        auth_time: now,
        amr,
        acr: None,
        user_agent: user_agent.map(|u| u.chars().take(256).collect()),
        ip,
        created_at: now,
        last_seen_at: now,
        expires_at: now + lifetime,
    };
    store::sessions::insert(conn, &session)?;
    Ok((session, token))
}

/// The session cookie for a token from `start`.
pub fn cookie(state: &AppState, token: String) -> Cookie<'static> {
    ui::make_cookie(state, COOKIE, token, None)
}

/// The live session and its user for this request, if any (and marks it used).
pub async fn current(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(Session, User)>, StoreError> {
    let Some(cookie) = req.cookie(&ui::cookie_name(state, COOKIE)) else {
        return Ok(None);
    };
    let hash = hash_token(cookie.value());
    let now = state.now();
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    state
        .db
        .write(move |c| {
            let Some(s) = store::sessions::live(c, &hash, now, idle)? else {
                return Ok(None);
            };
            store::sessions::touch(c, &hash, now)?;
            let Some(u) = store::users::by_id(c, &s.user_id)? else {
                return Ok(None);
            };
            Ok(Some((s, u)))
        })
        .await
}

/// A signed-in person; signed-out browsers are sent to the login page and brought back.
pub struct SignedIn {
    pub session: Session,
    pub user: User,
    pub is_admin: bool,
}

impl SignedIn {
    pub fn page(&self, state: &AppState, req: &HttpRequest, title: &str) -> ui::Page {
        ui::Page::new(state, req, title).with_user(self.user.shown_name(), self.is_admin)
    }
}

/// Redirect to the sign-in page (for `SignedIn` failures).
#[derive(Debug)]
pub struct SignInFirst(pub String);

impl std::fmt::Display for SignInFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sign in first")
    }
}

impl actix_web::ResponseError for SignInFirst {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::SEE_OTHER
    }
    fn error_response(&self) -> HttpResponse {
        let next = crate::ui::enc(&self.0);
        ui::see_other(&format!("/login?next={next}"))
    }
}

impl FromRequest for SignedIn {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<State>().ok_or(PageError::Internal)?.clone();
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into());
            let Some((session, user)) = current(&state, &req).await.map_err(PageError::from)?
            else {
                let next = if req.method() == actix_web::http::Method::GET {
                    path
                } else {
                    "/account".into()
                };
                return Err(SignInFirst(next).into());
            };
            let uid = user.id.clone();
            let is_admin = state
                .db
                .read(move |c| store::users::is_admin(c, &uid))
                .await
                .map_err(PageError::from)?;
            Ok(SignedIn {
                session,
                user,
                is_admin,
            })
        })
    }
}

/// Ends sessions by `sid` in one transaction: deletes them, revokes their non-offline tokens,
/// records audit events. Returns the ended sessions with the clients that took part.
pub fn end_sessions(
    conn: &rusqlite::Connection,
    sids: &[String],
    actor: Option<&str>,
    reason: &str,
    now: UnixTime,
) -> Result<Vec<(Session, Vec<String>)>, StoreError> {
    let mut ended = Vec::new();
    for sid in sids {
        let clients = store::sessions::clients_of(conn, sid)?;
        if let Some(s) = store::sessions::end(conn, sid, now)? {
            store::audit::record(
                conn,
                &NewEvent {
                    kind: "session.ended",
                    actor_id: actor,
                    user_id: Some(&s.user_id),
                    detail: Some(serde_json::json!({"sid": s.sid, "reason": reason})),
                    ..Default::default()
                },
                now,
            )?;
            ended.push((s, clients));
        }
    }
    Ok(ended)
}

#[derive(serde::Deserialize)]
pub struct SignOutForm {}

/// POST /signout — ends this browser's session.
pub async fn sign_out(
    state: State,
    req: HttpRequest,
    _form: CsrfForm<SignOutForm>,
) -> Result<HttpResponse, PageError> {
    let mut ended = Vec::new();
    if let Some((s, u)) = current(&state, &req).await? {
        let now = state.now();
        let sid = s.sid.clone();
        let uid = u.id.clone();
        ended = state
            .db
            .write(move |c| end_sessions(c, &[sid], Some(&uid), "sign_out", now))
            .await?;
        crate::oidc::backchannel::kick(&state);
    }
    let mut resp = signed_out_page(&state, &req, &ended).await?;
    let _ = resp.add_removal_cookie(&ui::removal_cookie(&state, COOKIE));
    Ok(resp)
}

/// The new session's cookie on a redirect response.
pub fn redirect_with_cookie(location: &str, cookie: Cookie<'static>) -> HttpResponse {
    let mut resp = ui::see_other(location);
    let _ = resp.add_cookie(&cookie);
    resp
}

/// Request facts recorded on a session.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub fn ip_string(state: &AppState, req: &HttpRequest) -> Option<String> {
    state.client_ip(req).map(|ip| ip.to_string())
}

#[derive(askama::Template)]
#[template(path = "oidc/signed_out.html")]
struct SignedOutPage {
    page: ui::Page,
    /// Front-channel logout URIs (with `iss` and `sid`) to load in hidden iframes.
    frames: Vec<String>,
}

/// The signed-out page. For the ended sessions' clients that registered a
/// `frontchannel_logout_uri` (OpenID Connect Front-Channel Logout 1.0), it loads each in a
/// hidden iframe with `iss` and `sid`; the page's CSP allows framing exactly those origins.
pub async fn signed_out_page(
    state: &AppState,
    req: &HttpRequest,
    ended: &[(Session, Vec<String>)],
) -> Result<HttpResponse, PageError> {
    let pairs: Vec<(String, String)> = ended
        .iter()
        .flat_map(|(s, clients)| clients.iter().map(|c| (s.sid.clone(), c.clone())))
        .collect();
    let uris = if pairs.is_empty() {
        Vec::new()
    } else {
        state
            .db
            .read(move |c| {
                let mut out = Vec::new();
                for (sid, cid) in &pairs {
                    if let Some(client) = store::clients::by_id(c, cid)?
                        && let Some(uri) = client.frontchannel_logout_uri
                    {
                        out.push((sid.clone(), uri));
                    }
                }
                Ok(out)
            })
            .await?
    };
    let issuer = state.config.issuer().to_string();
    let mut frames = Vec::new();
    let mut origins: Vec<String> = Vec::new();
    for (sid, uri) in uris {
        let Ok(mut u) = url::Url::parse(&uri) else {
            continue;
        };
        u.query_pairs_mut()
            .append_pair("iss", &issuer)
            .append_pair("sid", &sid);
        origins.push(u.origin().ascii_serialization());
        frames.push(u.to_string());
    }
    let mut resp = ui::ok(&SignedOutPage {
        page: ui::Page::new(state, req, "Signed out"),
        frames,
    });
    if !origins.is_empty() {
        origins.sort();
        origins.dedup();
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; frame-src {}; \
             frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
            origins.join(" ")
        );
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&csp) {
            resp.headers_mut()
                .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
    Ok(resp)
}

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
    attempt: Option<crate::login::throttle::Reservation>,
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
                crate::login::throttle::succeeded(c, attempt)?;
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
        crate::return_to::local_or_default(&state.issuer_url, next)
    } else {
        format!("/authorize/resume?req={}", crate::ui::enc(pending))
    }
}

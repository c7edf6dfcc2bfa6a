//! The browser session on the web side: its cookie, the live session of a request, and the
//! `SignedIn` extractor (signed-out browsers are sent to sign in and brought back). The
//! session model itself is `domain::session`.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::Cookie;
use actix_web::{FromRequest, HttpRequest, HttpResponse};

use crate::crypto::secret::hash_token;
use crate::state::AppState;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::ui::{self, PageError};

pub const COOKIE: &str = "pc_session";

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
        let next = crate::web::ui::enc(&self.0);
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

/// The new session's cookie on a redirect response.
pub fn redirect_with_cookie(location: &str, cookie: Cookie<'static>) -> HttpResponse {
    let mut resp = ui::see_other(location);
    let _ = resp.add_cookie(&cookie);
    resp
}

/// The client's IP (see `AppState::client_ip`: trusted proxies' `X-Forwarded-For`).
pub fn client_ip(state: &AppState, req: &HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Some(state.client_ip(peer, &forwarded))
}

/// Request facts recorded on a session.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub fn ip_string(state: &AppState, req: &HttpRequest) -> Option<String> {
    client_ip(state, req).map(|ip| ip.to_string())
}

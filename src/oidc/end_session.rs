//! GET|POST /logout — OpenID Connect RP-Initiated Logout 1.0 (the end_session_endpoint).
//!
//! A request is trusted when it carries a valid `id_token_hint` from this issuer (expired is
//! fine) for the signed-in user; then the session ends at once. Otherwise (no hint, a foreign,
//! altered or `alg: none` hint) the user is asked "Sign out of all apps?" first. A redirect
//! goes only to a post-logout URI registered for the client, compared as an exact string,
//! with `state` added when sent and nothing else.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::oidc::redirect_uri::ValidatedRedirect;
use crate::state::AppState;
use crate::store::clients::Client;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::session;
use crate::web::ui::{self, Page, PageError};

#[derive(Debug, Default, Deserialize)]
pub struct LogoutParams {
    #[serde(default)]
    id_token_hint: Option<String>,
    #[serde(default)]
    logout_hint: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    post_logout_redirect_uri: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    ui_locales: Option<String>,
    /// Set by our own confirmation form.
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    csrf: Option<String>,
}

#[derive(Template)]
#[template(path = "oidc/logout_confirm.html")]
struct ConfirmPage {
    page: Page,
    client_name: Option<String>,
    client_id: String,
    post_logout_redirect_uri: String,
    /// Carried through the form only when the request had one (RP-Initiated Logout §2).
    state: Option<String>,
}

pub async fn get(
    state: State,
    req: HttpRequest,
    q: web::Query<LogoutParams>,
) -> Result<HttpResponse, PageError> {
    handle(&state, &req, q.into_inner()).await
}

pub async fn post(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let params: LogoutParams = serde_urlencoded::from_bytes(&body)
        .map_err(|_| PageError::BadRequest("The sign-out request could not be read.".into()))?;
    handle(&state, &req, params).await
}

fn some(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|v| !v.is_empty())
}

async fn handle(
    state: &AppState,
    req: &HttpRequest,
    p: LogoutParams,
) -> Result<HttpResponse, PageError> {
    let _ = (&p.logout_hint, &p.ui_locales); // accepted; nothing to choose between
    // The hint identifies the client and the user when it is really ours.
    let hint =
        some(&p.id_token_hint).and_then(|h| crate::oidc::tokens::verify_id_token_hint(state, h));
    let hint_invalid = some(&p.id_token_hint).is_some() && hint.is_none();
    let hint_client = hint.as_ref().and_then(|c| c.aud.clone());
    let client_id = named_client_id(&p, hint_client)?;
    let client = load_client(state, &client_id).await?;
    let redirect = post_logout_redirect(&p, client.as_ref())?;
    let current = session::current(state, req).await?;
    // Trusted: a valid hint for the signed-in user (or nobody is signed in any more), or our
    // own confirmation form.
    let confirmed = confirmed_by_form(state, req, &p);
    let hint_matches = match (&hint, &current) {
        (Some(h), Some((_, user))) => h.sub == user.id,
        (Some(_), None) => true,
        _ => false,
    };
    if current.is_some() && !confirmed && (!hint_matches || hint_invalid) {
        return Ok(confirm_page(
            state,
            req,
            &p,
            client.as_ref(),
            redirect.as_ref(),
        ));
    }
    let mut ended = Vec::new();
    if let Some((s, user)) = current {
        ended = end_session(state, &s, &user).await?;
    }
    let mut resp = match redirect {
        Some(r) => {
            let mut params: Vec<(&str, &str)> = Vec::new();
            if let Some(st) = p.state.as_deref() {
                params.push(("state", st));
            }
            ui::see_other(&r.with_query(&params))
        }
        None => crate::login::sign_out::signed_out_page(state, req, &ended).await?,
    };
    let _ = resp.add_removal_cookie(&ui::removal_cookie(state, session::COOKIE));
    Ok(resp)
}

/// The client the request names: `client_id`, else the hint's audience (`hint_client`).
fn named_client_id(
    p: &LogoutParams,
    hint_client: Option<String>,
) -> Result<Option<String>, PageError> {
    // OIDC RP-Initiated Logout §2: client_id, when both are sent, must match the hint's audience.
    if let (Some(cid), Some(aud)) = (some(&p.client_id), hint_client.as_deref())
        && cid != aud
    {
        return Err(PageError::BadRequest(
            "The sign-out request names two different apps.".into(),
        ));
    }
    Ok(some(&p.client_id).map(str::to_string).or(hint_client))
}

/// The named client, if one is named and registered.
async fn load_client(
    state: &AppState,
    client_id: &Option<String>,
) -> Result<Option<Client>, StoreError> {
    match client_id {
        Some(id) => {
            let id = id.clone();
            state.db.read(move |c| store::clients::by_id(c, &id)).await
        }
        None => Ok(None),
    }
}

/// `post_logout_redirect_uri`, if sent: it must be registered for the named client.
fn post_logout_redirect(
    p: &LogoutParams,
    client: Option<&Client>,
) -> Result<Option<ValidatedRedirect>, PageError> {
    let Some(uri) = some(&p.post_logout_redirect_uri) else {
        return Ok(None);
    };
    let Some(client) = client else {
        return Err(PageError::BadRequest(
            "The app asked to return to an address, but did not say which app it is. You were not signed out.".into(),
        ));
    };
    let Some(r) = ValidatedRedirect::for_post_logout(client, uri) else {
        return Err(PageError::BadRequest(format!(
            "{} asked to return to an address that is not registered for it. For your safety you were not sent there.",
            client.name
        )));
    };
    Ok(Some(r))
}

/// Whether this is our own confirmation form, with this browser's CSRF token.
fn confirmed_by_form(state: &AppState, req: &HttpRequest, p: &LogoutParams) -> bool {
    p.confirm.as_deref() == Some("yes")
        && p.csrf.as_deref().is_some_and(|t| {
            crate::crypto::secret::ct_eq(
                t.as_bytes(),
                ui::csrf_token(state, &ui::browser_id(req)).as_bytes(),
            )
        })
}

/// "Sign out of all apps?", carrying the request through the form.
fn confirm_page(
    state: &AppState,
    req: &HttpRequest,
    p: &LogoutParams,
    client: Option<&Client>,
    redirect: Option<&ValidatedRedirect>,
) -> HttpResponse {
    ui::ok(&ConfirmPage {
        page: Page::new(state, req, "Sign out?"),
        client_name: client.map(|c| c.name.clone()),
        client_id: client.map(|c| c.id.clone()).unwrap_or_default(),
        post_logout_redirect_uri: redirect.map(|r| r.as_str().to_string()).unwrap_or_default(),
        state: p.state.clone(),
    })
}

/// Ends the current session (and queues back-channel logouts); returns what ended.
async fn end_session(
    state: &AppState,
    s: &Session,
    user: &User,
) -> Result<Vec<(Session, Vec<String>)>, StoreError> {
    let now = state.now();
    let (sid, uid) = (s.sid.clone(), user.id.clone());
    let ended = state
        .db
        .write(move |c| {
            crate::domain::session::end_sessions(c, &[sid], Some(&uid), "rp_logout", now)
        })
        .await?;
    state.kick_logout_delivery();
    Ok(ended)
}

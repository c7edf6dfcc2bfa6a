//! GET|POST /setup — first run: a one-time link (logged by `serve` while no administrator
//! exists) opens a form that creates the first administrator and signs them in.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::crypto::secret::{Secret, hash_token};
use crate::ops::users::{self, NewUser};
use crate::ops::{FieldError, OpError};
use crate::state::AppState;
use crate::store::audit::NewEvent;
use crate::store::links::Purpose;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::session;
use crate::web::ui::{self, CsrfForm, Page, PageError};

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    page: Page,
    token: String,
    username: String,
    email: String,
    display_name: String,
    min_length: u32,
    error: Option<String>,
    field: String,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn link_gone() -> HttpResponse {
    ui::error_page(
        actix_web::http::StatusCode::NOT_FOUND,
        "This setup link no longer works",
        "It was already used, or more than an hour has passed. Restart Portcullis to print a new link, \
         or create an administrator with `portcullis user add --admin`.",
        None,
    )
}

pub async fn get(
    state: State,
    req: HttpRequest,
    q: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let hash = hash_token(&q.token);
    let now = state.now();
    let link = state
        .db
        .read(move |c| store::links::peek(c, &hash, Purpose::Setup, now))
        .await?;
    if link.is_none() {
        return Ok(link_gone());
    }
    Ok(ui::ok(&SetupPage {
        page: Page::new(&state, &req, "Set up"),
        token: q.token.clone(),
        username: String::new(),
        email: String::new(),
        display_name: String::new(),
        min_length: state.config.password_min_length,
        error: None,
        field: String::new(),
    }))
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    email: String,
    #[serde(default)]
    display_name: String,
    password: String,
}

pub async fn post(
    state: State,
    req: HttpRequest,
    form: CsrfForm<SetupForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.0;
    let new = new_admin(&f);
    if let Err(e) = users::validate_new(&new)
        .and_then(|_| users::validate_password(&f.password, state.config.password_min_length))
    {
        return Ok(redisplay(&state, &req, &f, e.field, e.message));
    }
    let hash = state
        .hasher
        .hash(Secret::new(f.password.clone()))
        .await
        .map_err(PageError::from)?;
    let new = NewUser {
        password_hash: Some(hash),
        ..new
    };
    let outcome = create_admin(&state, &req, &f.token, new).await;
    if outcome.is_ok() {
        ui::renew_browser_id(&req); // as at every sign-in
    }
    match outcome {
        Ok(token) => Ok(session::redirect_with_cookie(
            "/account",
            session::cookie(&state, token),
        )),
        Err(Refused::Link) => Ok(link_gone()),
        Err(Refused::Field(e)) => Ok(redisplay(&state, &req, &f, e.field, e.message)),
        Err(Refused::Store(e)) => Err(e.into()),
    }
}

/// The setup form again (422), keeping what was typed, with `error` at `field`.
fn redisplay(
    state: &AppState,
    req: &HttpRequest,
    f: &SetupForm,
    field: &str,
    error: String,
) -> HttpResponse {
    ui::render(
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        &SetupPage {
            page: Page::new(state, req, "Set up"),
            token: f.token.clone(),
            username: f.username.clone(),
            email: f.email.clone(),
            display_name: f.display_name.clone(),
            min_length: state.config.password_min_length,
            error: Some(error),
            field: field.to_string(),
        },
    )
}

/// The first administrator as typed (trimmed), still without a password hash.
fn new_admin(f: &SetupForm) -> NewUser {
    NewUser {
        username: f.username.trim().to_string(),
        email: Some(f.email.trim().to_string()),
        display_name: Some(f.display_name.trim().to_string()),
        email_verified: true,
        admin: true,
        ..Default::default()
    }
}

/// Why the transaction rolled back.
enum Refused {
    Link,
    Field(FieldError),
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Store(e)
    }
}

/// One transaction: consumes the setup link, creates the administrator, audits it and starts
/// their session; returns the session token.
async fn create_admin(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
    new: NewUser,
) -> Result<String, Refused> {
    let token_hash = hash_token(token);
    let now = state.now();
    let (ua, ip) = (session::user_agent(req), session::ip_string(state, req));
    let lifetime = state.config.session_lifetime.as_secs() as i64;
    state
        .db
        .try_write(move |c| {
            // The link is consumed in the same transaction that creates the user.
            if store::links::consume(c, &token_hash, Purpose::Setup, now)?.is_none()
                || store::users::any_admin(c)?
            {
                return Err(Refused::Link);
            }
            let user = users::insert(c, &new, now).map_err(|e| match e {
                OpError::Invalid(e) | OpError::Conflict(e) => Refused::Field(e),
                OpError::Store(e) => Refused::Store(e),
                other => Refused::Store(StoreError::Corrupt(other.to_string())),
            })?;
            store::audit::record(
                c,
                &NewEvent {
                    kind: "setup.admin_created",
                    actor_id: Some(&user.id),
                    user_id: Some(&user.id),
                    ip: ip.as_deref(),
                    ..Default::default()
                },
                now,
            )?;
            let (_, token) = crate::domain::session::start(
                c,
                &user.id,
                vec!["pwd".into()],
                ua,
                ip,
                now,
                lifetime,
            )?;
            Ok(token)
        })
        .await
}

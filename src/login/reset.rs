//! GET|POST /reset?token=… — an administrator-issued one-time link (stored hashed, single
//! use, expiring) that lets a person set a new password. Setting it ends every session.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::crypto::secret::{Secret, hash_token};
use crate::ops::users;
use crate::store::audit::NewEvent;
use crate::store::links::Purpose;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::session;
use crate::web::ui::{self, CsrfForm, Page, PageError};

#[derive(Template)]
#[template(path = "login/reset.html")]
struct ResetPage {
    page: Page,
    token: String,
    username: Option<String>,
    min_length: u32,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct ResetQuery {
    #[serde(default)]
    token: String,
}

fn link_gone() -> HttpResponse {
    ui::error_page(
        StatusCode::NOT_FOUND,
        "This link no longer works",
        "Password links work once and expire. Ask your administrator for a new one.",
        Some("/login".into()),
    )
}

pub async fn get(
    state: State,
    req: HttpRequest,
    q: web::Query<ResetQuery>,
) -> Result<HttpResponse, PageError> {
    let hash = hash_token(&q.token);
    let now = state.now();
    let found = state
        .db
        .read(move |c| {
            let Some(link) = store::links::peek(c, &hash, Purpose::PasswordReset, now)? else {
                return Ok(None);
            };
            let Some(uid) = link.user_id else {
                return Ok(None);
            };
            store::users::by_id(c, &uid)
        })
        .await?;
    let Some(user) = found else {
        return Ok(link_gone());
    };
    Ok(ui::ok(&ResetPage {
        page: Page::new(&state, &req, "New password"),
        token: q.token.clone(),
        username: Some(user.username),
        min_length: state.config.password_min_length,
        error: None,
    }))
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    password: String,
}

pub async fn post(
    state: State,
    req: HttpRequest,
    form: CsrfForm<ResetForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.0;
    if let Err(e) = users::validate_password(&f.password, state.config.password_min_length) {
        return Ok(ui::render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ResetPage {
                page: Page::new(&state, &req, "New password"),
                token: f.token.clone(),
                username: None,
                min_length: state.config.password_min_length,
                error: Some(e.message),
            },
        ));
    }
    let hash = state
        .hasher
        .hash(Secret::new(f.password))
        .await
        .map_err(PageError::from)?;
    let token_hash = hash_token(&f.token);
    let now = state.now();
    let ip = session::ip_string(&state, &req);
    let done = state
        .db
        .write(move |c| -> Result<bool, StoreError> {
            let Some(link) = store::links::consume(c, &token_hash, Purpose::PasswordReset, now)?
            else {
                return Ok(false);
            };
            let Some(uid) = link.user_id else {
                return Ok(false);
            };
            store::users::set_password_hash(c, &uid, &hash, now)?;
            let sids = store::sessions::sids_of_user(c, &uid, None)?;
            crate::domain::session::end_sessions(c, &sids, Some(&uid), "password_reset", now)?;
            store::audit::record(
                c,
                &NewEvent {
                    kind: "password.reset",
                    actor_id: Some(&uid),
                    user_id: Some(&uid),
                    ip: ip.as_deref(),
                    ..Default::default()
                },
                now,
            )?;
            Ok(true)
        })
        .await?;
    if !done {
        return Ok(link_gone());
    }
    Ok(ui::see_other("/login?reset=1"))
}

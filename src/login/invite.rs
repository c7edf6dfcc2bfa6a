//! GET /invite?token=… — a one-time invite link made by an administrator for a user without
//! a password (`portcullis user invite USERNAME`): the person registers a passkey there (or
//! sets a password, if the administrator allowed it) and is signed in. Links expire, are
//! single use and stored hashed.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use crate::crypto::secret::{Secret, hash_token};
use crate::login::passkey::{passkey_error, webauthn};
use crate::login::sign_in;
use crate::ops::passkeys;
use crate::ops::users;
use crate::state::AppState;
use crate::store::audit::NewEvent;
use crate::store::links::{Link, Purpose};
use crate::store::users::User;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::session;
use crate::web::ui::{self, CsrfForm, CsrfJson, JsonError, Page, PageError};

#[derive(Template)]
#[template(path = "login/invite.html")]
struct InvitePage {
    page: Page,
    token: String,
    name: String,
    allow_password: bool,
    passkeys_available: bool,
    min_length: u32,
    error: Option<String>,
}

async fn valid(state: &AppState, token: &str) -> Result<Option<(Link, User)>, StoreError> {
    let (hash, now) = (hash_token(token), state.now());
    state
        .db
        .read(move |c| {
            let Some(link) = store::links::peek(c, &hash, Purpose::Invite, now)? else {
                return Ok(None);
            };
            let Some(uid) = &link.user_id else {
                return Ok(None);
            };
            Ok(store::users::by_id(c, uid)?.map(|u| (link, u)))
        })
        .await
}

fn gone() -> HttpResponse {
    ui::error_page(
        StatusCode::NOT_FOUND,
        "This invite no longer works",
        "Invite links work once and expire. Ask your administrator for a new one.",
        Some("/login".into()),
    )
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn get(
    state: State,
    req: HttpRequest,
    q: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let Some((link, user)) = valid(&state, &q.token).await? else {
        return Ok(gone());
    };
    Ok(ui::ok(&InvitePage {
        page: Page::new(&state, &req, "Welcome"),
        token: q.token.clone(),
        name: user.shown_name().to_string(),
        allow_password: link.allow_password,
        passkeys_available: state.webauthn.is_some(),
        min_length: state.config.password_min_length,
        error: None,
    }))
}

/// Uses the link and signs the person in.
async fn accept(
    state: &AppState,
    token: &str,
    user_id: &str,
    detail: serde_json::Value,
) -> Result<bool, StoreError> {
    let (hash, now, uid) = (hash_token(token), state.now(), user_id.to_string());
    let used = state
        .db
        .write(move |c| {
            let Some(link) = store::links::consume(c, &hash, Purpose::Invite, now)? else {
                return Ok(false);
            };
            if link.user_id.as_deref() != Some(uid.as_str()) {
                return Err(StoreError::Corrupt("invite user changed".into()));
            }
            store::audit::record(
                c,
                &NewEvent {
                    kind: "invite.accepted",
                    actor_id: Some(&uid),
                    user_id: Some(&uid),
                    detail: Some(detail),
                    ..Default::default()
                },
                now,
            )?;
            Ok(true)
        })
        .await?;
    Ok(used)
}

#[derive(Deserialize)]
pub struct StartBody {
    token: String,
}

/// POST /invite/passkey/start
pub async fn passkey_start(
    state: State,
    b: CsrfJson<StartBody>,
) -> Result<HttpResponse, JsonError> {
    let wa = webauthn(&state)?;
    let Some((_, user)) = valid(&state, &b.0.token).await? else {
        return Err(JsonError::new(
            StatusCode::NOT_FOUND,
            "This invite no longer works. Ask for a new one.",
        ));
    };
    let (ceremony, options) = passkeys::start_registration(wa, &state.db, &user, state.now())
        .await
        .map_err(passkey_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"ceremony": ceremony, "options": options})))
}

#[derive(Deserialize)]
pub struct FinishBody {
    token: String,
    ceremony: String,
    credential: RegisterPublicKeyCredential,
    #[serde(default)]
    name: String,
}

/// POST /invite/passkey/finish — registers the passkey, uses the link, signs in.
pub async fn passkey_finish(
    state: State,
    req: HttpRequest,
    b: CsrfJson<FinishBody>,
) -> Result<HttpResponse, JsonError> {
    let wa = webauthn(&state)?;
    let f = b.0;
    let Some((_, user)) = valid(&state, &f.token).await? else {
        return Err(JsonError::new(
            StatusCode::NOT_FOUND,
            "This invite no longer works. Ask for a new one.",
        ));
    };
    let stored = passkeys::finish_registration(
        wa,
        &state.db,
        &user.id,
        &f.ceremony,
        &f.credential,
        &f.name,
        state.now(),
    )
    .await
    .map_err(passkey_error)?;
    if !accept(
        &state,
        &f.token,
        &user.id,
        serde_json::json!({"method": "passkey", "passkey": stored.id}),
    )
    .await?
    {
        // Someone used the link meanwhile: do not keep a passkey it did not authorise.
        let (uid, pid) = (user.id.clone(), stored.id.clone());
        state
            .db
            .write(move |c| store::passkeys::delete(c, &uid, &pid))
            .await?;
        return Err(JsonError::new(
            StatusCode::NOT_FOUND,
            "This invite no longer works. Ask for a new one.",
        ));
    }
    let amr = vec![
        passkeys::amr_for(stored.backup_eligible).to_string(),
        "user".into(),
        "mfa".into(),
    ];
    let cookie = sign_in::complete_sign_in(&state, &req, &user.id, amr, "").await?;
    let mut resp =
        HttpResponse::Ok().json(serde_json::json!({"redirect": "/account?done=passkey"}));
    let _ = resp.add_cookie(&cookie);
    Ok(resp)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    token: String,
    password: String,
}

/// POST /invite/password — when the administrator allowed a password.
pub async fn password(
    state: State,
    req: HttpRequest,
    form: CsrfForm<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.0;
    let Some((link, user)) = valid(&state, &f.token).await? else {
        return Ok(gone());
    };
    if !link.allow_password {
        return Err(PageError::Forbidden);
    }
    if let Err(e) = users::validate_password(&f.password, state.config.password_min_length) {
        return Ok(ui::render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &InvitePage {
                page: Page::new(&state, &req, "Welcome"),
                token: f.token.clone(),
                name: user.shown_name().to_string(),
                allow_password: true,
                passkeys_available: state.webauthn.is_some(),
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
    if !accept(
        &state,
        &f.token,
        &user.id,
        serde_json::json!({"method": "password"}),
    )
    .await?
    {
        return Ok(gone());
    }
    let (uid, now) = (user.id.clone(), state.now());
    state
        .db
        .write(move |c| store::users::set_password_hash(c, &uid, &hash, now))
        .await?;
    let cookie = sign_in::complete_sign_in(&state, &req, &user.id, vec!["pwd".into()], "").await?;
    Ok(session::redirect_with_cookie("/account", cookie))
}

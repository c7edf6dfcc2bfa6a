//! GET /login/second-factor and its passkey ceremony — a passkey after the password, for
//! users (or members of groups) that require one. The password step leaves a short-lived,
//! single-use marker (a `second_factor` ceremony bound to a cookie); the session starts only
//! once a passkey of the same user is verified. `amr` is then `pwd` + `hwk`/`swk` + `mfa`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::PublicKeyCredential;

use crate::crypto::secret::{hash_token, random_token};
use crate::login::passkey::{passkey_error, webauthn};
use crate::login::sign_in;
use crate::ops::passkeys::{self, CEREMONY_TTL};
use crate::state::AppState;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::ui::{self, CsrfJson, JsonError, Page, PageError};

const COOKIE: &str = "pc_mfa";

#[derive(Serialize, Deserialize)]
struct Pending {
    req: String,
    next: String,
}

/// After a verified password: remember that, and send the browser to the passkey step.
pub async fn begin(
    state: &AppState,
    user_id: &str,
    pending: &str,
    next: &str,
) -> Result<HttpResponse, StoreError> {
    let token = random_token();
    let (hash, uid, now) = (hash_token(&token), user_id.to_string(), state.now());
    let json = serde_json::to_string(&Pending {
        req: pending.into(),
        next: next.into(),
    })
    .unwrap_or_default();
    state
        .db
        .write(move |c| {
            store::passkeys::put_ceremony(
                c,
                &hash,
                "second_factor",
                Some(&uid),
                &json,
                now,
                now + CEREMONY_TTL,
            )
        })
        .await?;
    let mut resp = ui::see_other("/login/second-factor");
    let _ = resp.add_cookie(&ui::make_cookie(state, COOKIE, token, Some(CEREMONY_TTL)));
    Ok(resp)
}

/// The user whose password was verified in this browser, with the pending request.
async fn marker(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(String, String, Pending)>, StoreError> {
    let Some(c) = req.cookie(&ui::cookie_name(state, COOKIE)) else {
        return Ok(None);
    };
    let hash = hash_token(c.value());
    let now = state.now();
    let found = state
        .db
        .read(move |conn| store::passkeys::peek_ceremony(conn, &hash, "second_factor", now))
        .await?;
    Ok(found.and_then(|(uid, json)| {
        Some((
            uid?,
            hash_token(c.value()),
            serde_json::from_str(&json).ok()?,
        ))
    }))
}

#[derive(Template)]
#[template(path = "login/second_factor.html")]
struct SecondFactorPage {
    page: Page,
    username: String,
}

pub async fn get(state: State, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let Some((uid, _, _)) = marker(&state, &req).await? else {
        return Ok(ui::see_other("/login"));
    };
    let user = state
        .db
        .read(move |c| store::users::by_id(c, &uid))
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(ui::ok(&SecondFactorPage {
        page: Page::new(&state, &req, "Confirm with your passkey"),
        username: user.username,
    }))
}

#[derive(Deserialize)]
pub struct Empty {}

/// POST /login/second-factor/start — options for one of this user's passkeys.
pub async fn start(
    state: State,
    req: HttpRequest,
    _body: CsrfJson<Empty>,
) -> Result<HttpResponse, JsonError> {
    let wa = webauthn(&state)?;
    let Some((uid, _, _)) = marker(&state, &req).await? else {
        return Err(JsonError::new(
            StatusCode::BAD_REQUEST,
            "Your sign-in expired. Start again.",
        ));
    };
    let (ceremony, options) = passkeys::start_for_user(wa, &state.db, &uid, state.now())
        .await
        .map_err(passkey_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"ceremony": ceremony, "options": options})))
}

#[derive(Deserialize)]
pub struct Finish {
    ceremony: String,
    credential: PublicKeyCredential,
}

/// POST /login/second-factor/finish — verifies the passkey and starts the session.
pub async fn finish(
    state: State,
    req: HttpRequest,
    body: CsrfJson<Finish>,
) -> Result<HttpResponse, JsonError> {
    let wa = webauthn(&state)?;
    let Some((uid, marker_hash, pending)) = marker(&state, &req).await? else {
        return Err(JsonError::new(
            StatusCode::BAD_REQUEST,
            "Your sign-in expired. Start again.",
        ));
    };
    let f = body.0;
    let verified = match passkeys::finish_authentication(
        wa,
        &state.db,
        &f.ceremony,
        &f.credential,
        state.now(),
    )
    .await
    {
        Ok(v) if v.user.id == uid => v,
        Ok(_) => {
            return Err(JsonError::new(
                StatusCode::UNAUTHORIZED,
                "That passkey belongs to another account.",
            ));
        }
        Err(e) => return Err(crate::login::passkey::audit_failure(&state, &req, e).await),
    };
    let now = state.now();
    // The marker is single use.
    state
        .db
        .write(move |c| store::passkeys::take_ceremony(c, &marker_hash, "second_factor", now))
        .await?;
    let amr = vec![
        "pwd".to_string(),
        verified.method.to_string(),
        "mfa".to_string(),
    ];
    let cookie = sign_in::complete_sign_in(&state, &req, &uid, amr, &pending.req).await?;
    let mut resp = HttpResponse::Ok()
        .json(serde_json::json!({"redirect": sign_in::after_sign_in(&state, &pending.req, &pending.next)}));
    let _ = resp.add_cookie(&cookie);
    let _ = resp.add_removal_cookie(&ui::removal_cookie(&state, COOKIE));
    Ok(resp)
}

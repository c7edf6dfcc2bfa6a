//! POST /login/passkey/start|finish — passwordless sign-in with a discoverable passkey: the
//! "Sign in with a passkey" button (modal) and passkey autofill on the username field
//! (conditional mediation). The script is static/passkey.js.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::PublicKeyCredential;

use crate::login::sign_in;
use crate::ops::passkeys::{self, PasskeyError};
use crate::state::AppState;
use crate::store;
use crate::store::audit::NewEvent;
use crate::web::State;
use crate::web::session;
use crate::web::ui::{CsrfJson, JsonError};

/// The relying party, or a clear error when the issuer cannot be one.
pub fn webauthn(state: &AppState) -> Result<&Webauthn, JsonError> {
    state.webauthn.as_ref().ok_or_else(|| {
        JsonError::new(
            StatusCode::NOT_IMPLEMENTED,
            "Passkeys are not available on this server (its address cannot be a passkey site).",
        )
    })
}

/// What the person sees for a failed ceremony (causes go to the log).
pub fn passkey_error(e: PasskeyError) -> JsonError {
    tracing::info!(error = %e, "passkey ceremony failed");
    match e {
        PasskeyError::Unavailable(_) => JsonError::new(
            StatusCode::NOT_IMPLEMENTED,
            "Passkeys are not available on this server.",
        ),
        PasskeyError::UnknownCeremony => {
            JsonError::new(StatusCode::BAD_REQUEST, "This request expired. Try again.")
        }
        PasskeyError::UnknownCredential => JsonError::new(
            StatusCode::UNAUTHORIZED,
            "This passkey is not registered here.",
        ),
        PasskeyError::PossibleClone { .. } => JsonError::new(
            StatusCode::UNAUTHORIZED,
            "This passkey was refused because it may have been copied. Use another sign-in method and tell your administrator.",
        ),
        PasskeyError::WrongUser => JsonError::new(
            StatusCode::UNAUTHORIZED,
            "That passkey belongs to another account.",
        ),
        PasskeyError::Disabled => {
            JsonError::new(StatusCode::UNAUTHORIZED, "This account is disabled.")
        }
        PasskeyError::Rejected(_) => JsonError::new(
            StatusCode::UNAUTHORIZED,
            "The passkey could not be verified. Try again.",
        ),
        PasskeyError::Store(e) => e.into(),
    }
}

/// Records a failed passkey sign-in (a suspected clone gets its own event) and maps the error.
pub async fn audit_failure(state: &AppState, req: &HttpRequest, e: PasskeyError) -> JsonError {
    let now = state.now();
    let ip = session::ip_string(state, req);
    let (kind, user, detail) = match &e {
        PasskeyError::PossibleClone {
            user_id,
            passkey_id,
        } => (
            "passkey.clone_detected",
            Some(user_id.clone()),
            serde_json::json!({"passkey": passkey_id}),
        ),
        other => (
            "login.failed",
            None,
            serde_json::json!({"method": "passkey", "reason": other.to_string()}),
        ),
    };
    let _ = state
        .db
        .write(move |c| {
            store::audit::record(
                c,
                &NewEvent {
                    kind,
                    user_id: user.as_deref(),
                    ip: ip.as_deref(),
                    detail: Some(detail),
                    ..Default::default()
                },
                now,
            )
        })
        .await;
    passkey_error(e)
}

#[derive(Deserialize)]
pub struct Start {
    #[serde(default)]
    conditional: bool,
}

pub async fn start(state: State, body: CsrfJson<Start>) -> Result<HttpResponse, JsonError> {
    let wa = webauthn(&state)?;
    let (ceremony, options) =
        passkeys::start_discoverable(wa, &state.db, body.0.conditional, state.now())
            .await
            .map_err(passkey_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"ceremony": ceremony, "options": options})))
}

#[derive(Deserialize)]
pub struct Finish {
    ceremony: String,
    credential: PublicKeyCredential,
    #[serde(default)]
    req: String,
    #[serde(default)]
    next: String,
}

pub async fn finish(
    state: State,
    req: HttpRequest,
    body: CsrfJson<Finish>,
) -> Result<HttpResponse, JsonError> {
    let wa = webauthn(&state)?;
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
        Ok(v) => v,
        Err(e) => return Err(audit_failure(&state, &req, e).await),
    };
    // A user-verifying passkey is two factors in one: possession and a PIN or biometric.
    let amr = vec![
        verified.method.to_string(),
        "user".to_string(),
        "mfa".to_string(),
    ];
    let cookie = sign_in::complete_sign_in(&state, &req, &verified.user.id, amr, &f.req).await?;
    let mut resp = HttpResponse::Ok()
        .json(serde_json::json!({"redirect": sign_in::after_sign_in(&state, &f.req, &f.next)}));
    let _ = resp.add_cookie(&cookie);
    Ok(resp)
}

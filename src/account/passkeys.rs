//! The account page's passkeys: add (registration ceremony), rename, delete (never the last
//! way to sign in), and require a passkey after the password.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use crate::login::passkey::{passkey_error, webauthn};
use crate::ops::passkeys;
use crate::store::audit::NewEvent;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::session::SignedIn;
use crate::web::ui::{self, CsrfForm, CsrfJson, JsonError, PageError};

#[derive(Deserialize)]
pub struct Empty {}

/// POST /account/passkeys/register/start
pub async fn register_start(
    state: State,
    me: SignedIn,
    _b: CsrfJson<Empty>,
) -> Result<HttpResponse, JsonError> {
    let wa = webauthn(&state)?;
    let (ceremony, options) = passkeys::start_registration(wa, &state.db, &me.user, state.now())
        .await
        .map_err(passkey_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"ceremony": ceremony, "options": options})))
}

#[derive(Deserialize)]
pub struct RegisterFinish {
    ceremony: String,
    credential: RegisterPublicKeyCredential,
    #[serde(default)]
    name: String,
}

/// POST /account/passkeys/register/finish
pub async fn register_finish(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    b: CsrfJson<RegisterFinish>,
) -> Result<HttpResponse, JsonError> {
    let wa = webauthn(&state)?;
    let f = b.0;
    let now = state.now();
    let stored = passkeys::finish_registration(
        wa,
        &state.db,
        &me.user.id,
        &f.ceremony,
        &f.credential,
        &f.name,
        now,
    )
    .await
    .map_err(passkey_error)?;
    audit(
        &state,
        &me,
        "passkey.registered",
        &stored.id,
        &stored.name,
        crate::web::session::ip_string(&state, &req),
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"redirect": "/account?done=passkey"})))
}

async fn audit(
    state: &State,
    me: &SignedIn,
    kind: &'static str,
    id: &str,
    name: &str,
    ip: Option<String>,
) -> Result<(), StoreError> {
    let (uid, detail, now) = (
        me.user.id.clone(),
        serde_json::json!({"passkey": id, "name": name}),
        state.now(),
    );
    state
        .db
        .write(move |c| {
            store::audit::record(
                c,
                &NewEvent {
                    kind,
                    actor_id: Some(&uid),
                    user_id: Some(&uid),
                    ip: ip.as_deref(),
                    detail: Some(detail),
                    ..Default::default()
                },
                now,
            )
        })
        .await
}

#[derive(Deserialize)]
pub struct RenameForm {
    id: String,
    name: String,
}

/// POST /account/passkeys/rename
pub async fn rename(
    state: State,
    me: SignedIn,
    form: CsrfForm<RenameForm>,
) -> Result<HttpResponse, PageError> {
    let (uid, id, name) = (
        me.user.id.clone(),
        form.0.id,
        passkeys::clean_name(&form.0.name),
    );
    state
        .db
        .write(move |c| store::passkeys::rename(c, &uid, &id, &name))
        .await?;
    Ok(ui::see_other("/account?done=passkey_renamed#passkeys"))
}

#[derive(Deserialize)]
pub struct DeleteForm {
    id: String,
}

/// Why a deletion is refused.
enum Refusal {
    LastMethod,
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
}

/// POST /account/passkeys/delete — refused for the last way to sign in.
pub async fn delete(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    form: CsrfForm<DeleteForm>,
) -> Result<HttpResponse, PageError> {
    let (uid, id, now) = (me.user.id.clone(), form.0.id, state.now());
    let result = state
        .db
        .try_write(move |c| {
            if crate::ops::users::sign_in_methods(c, &uid)?.only_one_left() {
                return Err(Refusal::LastMethod);
            }
            if store::passkeys::delete(c, &uid, &id)? {
                let required = store::passkeys::required_for(c, &uid)?;
                if required && store::passkeys::count_for_user(c, &uid)? == 0 {
                    // Nothing left to require: the own setting goes off with the last passkey.
                    store::passkeys::set_user_requirement(c, &uid, false, now)?;
                }
                store::audit::record(
                    c,
                    &NewEvent {
                        kind: "passkey.deleted",
                        actor_id: Some(&uid),
                        user_id: Some(&uid),
                        detail: Some(serde_json::json!({"passkey": id})),
                        ..Default::default()
                    },
                    now,
                )?;
            }
            Ok(())
        })
        .await;
    match result {
        Ok(()) => Ok(ui::see_other("/account?done=passkey_deleted#passkeys")),
        Err(Refusal::LastMethod) => crate::account::render_with_error(
            &state,
            &req,
            &me,
            StatusCode::CONFLICT,
            "This is your only way to sign in, so it cannot be removed. Add another passkey or ask your administrator to set a password first.",
        )
        .await,
        Err(Refusal::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RequireForm {
    #[serde(default)]
    require: Option<String>,
}

/// POST /account/passkeys/require — ask for a passkey after the password from now on.
pub async fn require(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    form: CsrfForm<RequireForm>,
) -> Result<HttpResponse, PageError> {
    let on = form.0.require.as_deref() == Some("on");
    let (uid, now) = (me.user.id.clone(), state.now());
    let count = {
        let uid = uid.clone();
        state
            .db
            .read(move |c| store::passkeys::count_for_user(c, &uid))
            .await?
    };
    if on && count == 0 {
        return crate::account::render_with_error(
            &state,
            &req,
            &me,
            StatusCode::CONFLICT,
            "Add a passkey first.",
        )
        .await;
    }
    state
        .db
        .write(move |c| {
            store::passkeys::set_user_requirement(c, &uid, on, now)?;
            store::audit::record(
                c,
                &NewEvent {
                    kind: "passkey.requirement_changed",
                    actor_id: Some(&uid),
                    user_id: Some(&uid),
                    detail: Some(serde_json::json!({"require": on})),
                    ..Default::default()
                },
                now,
            )
        })
        .await?;
    Ok(ui::see_other("/account?done=passkey_required#passkeys"))
}

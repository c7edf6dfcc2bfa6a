//! POST /account/upstream/link and POST /account/upstream/unlink — the "Linked sign-ins"
//! section of the account page. Linking runs the same handshake with the `link` purpose for
//! the signed-in account; unlinking refuses to remove the last way to sign in.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::accounts::{self, UnlinkRefused};
use super::handshake::{self, Purpose};
use crate::store;
use crate::web::State;
use crate::web::session::SignedIn;
use crate::web::ui::{self, CsrfForm, PageError};

#[derive(Deserialize)]
pub struct LinkForm {
    slug: String,
}

/// POST /account/upstream/link — off to the provider to link it to this account.
pub async fn link(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    form: CsrfForm<LinkForm>,
) -> Result<HttpResponse, PageError> {
    let slug = form.0.slug;
    let provider = state
        .db
        .read(move |c| store::upstream::by_slug(c, &slug))
        .await?
        .filter(|p| p.enabled)
        .ok_or(PageError::NotFound)?;
    match handshake::begin(
        &state,
        ui::browser_hash(&req),
        &provider,
        Purpose::Link,
        Some(me.user.id.clone()),
        "",
        "/account",
    )
    .await
    {
        Ok(url) => Ok(ui::see_other(&url)),
        Err(f) => {
            let (_, _, message) = f.page(&provider.display_name);
            crate::account::render_with_error(&state, &req, &me, StatusCode::BAD_GATEWAY, &message)
                .await
        }
    }
}

#[derive(Deserialize)]
pub struct UnlinkForm {
    provider_id: String,
    subject: String,
}

/// POST /account/upstream/unlink — removes one of the account's linked identities.
pub async fn unlink(
    state: State,
    req: HttpRequest,
    me: SignedIn,
    form: CsrfForm<UnlinkForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.0;
    let (uid, now) = (me.user.id.clone(), state.now());
    let outcome = state
        .db
        .write(move |c| accounts::unlink(c, &uid, &f.provider_id, &f.subject, &uid, now))
        .await?;
    match outcome {
        Ok(()) => Ok(ui::see_other("/account?done=unlinked")),
        Err(UnlinkRefused::NotFound) => Err(PageError::NotFound),
        Err(UnlinkRefused::LastSignInMethod) => {
            crate::account::render_with_error(
                &state,
                &req,
                &me,
                StatusCode::CONFLICT,
                "This is your only way to sign in, so it cannot be removed. Add a passkey or link another sign-in first.",
            )
            .await
        }
    }
}

//! The "Linked sign-ins" section of the account page, and its two forms: POST
//! /account/upstream/link and POST /account/upstream/unlink. Linking runs the same handshake with the `link` purpose for
//! the signed-in account; unlinking refuses to remove the last way to sign in.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::clock::UnixTime;
use crate::state::AppState;
use crate::store::{self, StoreError};
use crate::upstream::accounts::{self, UnlinkRefused};
use crate::upstream::handshake::{self, Purpose};
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
            super::render_with_error(&state, &req, &me, StatusCode::BAD_GATEWAY, &message).await
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
            super::render_with_error(
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

/// A linked identity on the account page.
#[derive(Debug, Clone)]
pub struct LinkedRow {
    pub provider_id: String,
    pub subject: String,
    pub name: String,
    pub icon: Option<String>,
    pub email: String,
    pub linked: String,
    pub last_used: String,
}

/// A provider the person can link.
#[derive(Debug, Clone)]
pub struct LinkOption {
    pub slug: String,
    pub name: String,
    pub icon: Option<String>,
}

/// The "Linked sign-ins" section of the account page.
#[derive(Debug, Clone, Default)]
pub struct LinkedSignIns {
    pub linked: Vec<LinkedRow>,
    pub available: Vec<LinkOption>,
}

impl LinkedSignIns {
    /// Whether the section has anything to show (no providers at all: hidden).
    pub fn shown(&self) -> bool {
        !self.linked.is_empty() || !self.available.is_empty()
    }
}

pub async fn account_section(state: &AppState, user_id: &str) -> Result<LinkedSignIns, StoreError> {
    let uid = user_id.to_string();
    let (links, providers) = state
        .db
        .read(move |c| {
            Ok((
                store::upstream::links_for_user(c, &uid)?,
                store::upstream::list(c, true)?,
            ))
        })
        .await?;
    let now = state.now();
    let available = providers
        .into_iter()
        .filter(|p| !links.iter().any(|l| l.link.provider_id == p.id))
        .map(|p| LinkOption {
            slug: p.slug,
            name: p.display_name,
            icon: p.icon,
        })
        .collect();
    let linked = links
        .into_iter()
        .map(|l| LinkedRow {
            email: l.link.email.clone().unwrap_or_default(),
            linked: when(now, l.link.linked_at),
            last_used: l
                .link
                .last_used_at
                .map(|t| when(now, t))
                .unwrap_or_else(|| "never".into()),
            provider_id: l.link.provider_id,
            subject: l.link.subject,
            name: l.display_name,
            icon: l.icon,
        })
        .collect();
    Ok(LinkedSignIns { linked, available })
}

fn when(now: UnixTime, t: UnixTime) -> String {
    super::ago(now, t)
}

//! /admin/keys — signing keys (kid, algorithm, state next/active/retired, dates) and rotating
//! them now, after a confirmation.

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::view::{Chrome, Fields, when};
use super::{AdminSession, blocking};
use crate::ops::signing_keys::KeyError;
use crate::ops::{self, Subject};
use crate::web::State;
use crate::web::ui::{self, CsrfForm, Page, PageError};

const NAV: &str = "keys";

struct Row {
    kid: String,
    alg: String,
    state: &'static str,
    created: String,
    activates: String,
    retired: String,
    prune: String,
}

#[derive(Template)]
#[template(path = "admin/keys/list.html")]
struct ListPage {
    page: Page,
    admin: Chrome,
    rows: Vec<Row>,
    rotation_days: u64,
}

#[derive(Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

fn key_error(e: KeyError) -> PageError {
    tracing::error!(error = %e, "signing keys");
    match e {
        KeyError::Store(s) => PageError::from(s),
        _ => PageError::Internal,
    }
}

/// GET /admin/keys
pub async fn list(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    q: actix_web::web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let now = state.now();
    let s = state.clone();
    let keys = blocking(move || s.keys.list(now))
        .await
        .map_err(key_error)?;
    let opt = |t: Option<i64>| t.map(when).unwrap_or_else(|| "-".into());
    let notice = match q.done.as_deref() {
        Some("rotated") => Some("New keys are published. Apps pick them up from the JWKS."),
        _ => None,
    };
    Ok(ui::ok(&ListPage {
        page: me.page(&state, &req, "Signing keys"),
        admin: Chrome::new(NAV).with_notice(notice),
        rotation_days: state.config.key_rotation_period.as_secs() / 86_400,
        rows: keys
            .into_iter()
            .map(|k| Row {
                state: k.state,
                created: when(k.created_at),
                activates: when(k.activates_at),
                retired: opt(k.retired_at),
                prune: opt(k.prune_after),
                kid: k.kid,
                alg: k.alg,
            })
            .collect(),
    }))
}

#[derive(Template)]
#[template(path = "admin/keys/rotate.html")]
struct RotatePage {
    page: Page,
    admin: Chrome,
    grace_minutes: u64,
}

/// GET /admin/keys/rotate — explains, then asks.
pub async fn confirm_rotate(
    state: State,
    req: HttpRequest,
    me: AdminSession,
) -> Result<HttpResponse, PageError> {
    Ok(ui::ok(&RotatePage {
        page: me.page(&state, &req, "Rotate signing keys"),
        admin: Chrome::new(NAV),
        grace_minutes: state.config.key_publish_grace.as_secs() / 60,
    }))
}

/// POST /admin/keys/rotate — publishes new keys (signing after the publish grace, or at once
/// when the box says a key leaked) and records it.
pub async fn rotate(
    state: State,
    me: AdminSession,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let immediately = Fields(form.0).on("immediately");
    rotate_keys(&state, &me.actor(), immediately)
        .await
        .map_err(key_error)?;
    Ok(ui::see_other("/admin/keys?done=rotated"))
}

/// Rotates the signing keys off the async threads and records who did it (console and API).
pub(crate) async fn rotate_keys(
    state: &State,
    actor: &ops::Actor,
    immediately: bool,
) -> Result<Vec<String>, KeyError> {
    let (s, now) = (state.clone(), state.now());
    let kids = blocking(move || s.keys.rotate(now, immediately)).await?;
    let (actor, k2) = (actor.clone(), kids.clone());
    state
        .db
        .write(move |c| {
            ops::record(
                c,
                &actor,
                "keys.rotated",
                Subject {
                    detail: Some(serde_json::json!({"kids": k2, "immediately": immediately})),
                    ..Default::default()
                },
                now,
            )
        })
        .await?;
    Ok(kids)
}

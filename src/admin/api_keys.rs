//! /admin/api-keys — keys for the admin API: create (the key is shown once), list, revoke.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminSession;
use super::view::{Chrome, Problem, when};
use crate::ops::OpError;
use crate::ops::api_keys;
use crate::state::AppState;
use crate::store;
use crate::web::State;
use crate::web::ui::{self, CsrfForm, Page, PageError};

const NAV: &str = "api_keys";

struct Row {
    id: String,
    name: String,
    created_by: String,
    created: String,
    last_used: String,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/api_keys/list.html")]
struct ListPage {
    page: Page,
    admin: Chrome,
    rows: Vec<Row>,
    api: String,
    name: String,
    problem: Problem,
}

#[derive(Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

async fn render_list(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    name: String,
    problem: Problem,
    notice: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let keys = state.db.read(store::api_keys::list).await?;
    let status = if problem.0.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(ui::render(
        status,
        &ListPage {
            page: me.page(state, req, "API keys"),
            admin: Chrome::new(NAV).with_notice(notice),
            rows: keys
                .into_iter()
                .map(|k| Row {
                    created_by: k.created_by_name.unwrap_or_else(|| "command line".into()),
                    created: when(k.created_at),
                    last_used: k.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                    revoked: k.revoked_at.map(when),
                    id: k.id,
                    name: k.name,
                })
                .collect(),
            api: state.url("/admin/api"),
            name,
            problem,
        },
    ))
}

/// GET /admin/api-keys
pub async fn list(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = match q.done.as_deref() {
        Some("revoked") => Some("The key is revoked: it no longer works."),
        _ => None,
    };
    render_list(&state, &req, &me, String::new(), Problem::none(), notice).await
}

#[derive(Template)]
#[template(path = "admin/api_keys/created.html")]
struct CreatedPage {
    page: Page,
    admin: Chrome,
    name: String,
    key: String,
    api: String,
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
}

/// POST /admin/api-keys — shows the new key, once.
pub async fn create(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    form: CsrfForm<CreateForm>,
) -> Result<HttpResponse, PageError> {
    let name = form.0.name;
    let (actor, now, n2) = (me.actor(), state.now(), name.clone());
    let r = state
        .db
        .try_write(move |c| api_keys::create(c, &actor, &n2, now))
        .await;
    match r {
        Ok((k, key)) => Ok(ui::ok(&CreatedPage {
            page: me.page(&state, &req, "New API key"),
            admin: Chrome::new(NAV),
            name: k.name,
            key,
            api: state.url("/admin/api"),
        })),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            render_list(&state, &req, &me, name, Problem(Some(p)), None).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct Empty {}

/// POST /admin/api-keys/{id}/revoke
pub async fn revoke(
    state: State,
    me: AdminSession,
    path: web::Path<String>,
    _form: CsrfForm<Empty>,
) -> Result<HttpResponse, PageError> {
    let (actor, now, id) = (me.actor(), state.now(), path.into_inner());
    state
        .db
        .try_write(move |c| api_keys::revoke(c, &actor, &id, now))
        .await?;
    Ok(ui::see_other("/admin/api-keys?done=revoked"))
}

//! GET /admin — the console's front page: counts, the issuer, and first steps.

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::AdminSession;
use super::view::Chrome;
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::ui::{self, Page, PageError};

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    page: Page,
    admin: Chrome,
    users: i64,
    groups: i64,
    apps: i64,
    sessions: i64,
    issuer: String,
    discovery: String,
}

/// GET /admin
pub async fn get(
    state: State,
    req: HttpRequest,
    me: AdminSession,
) -> Result<HttpResponse, PageError> {
    let now = state.now();
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    let (users, groups, apps, sessions) = state
        .db
        .read(move |c| -> Result<_, StoreError> {
            Ok((
                store::users::count(c)?,
                store::groups::count(c)?,
                store::clients::count_matching(c, "")?,
                store::sessions::count_active(c, now, idle, None)?,
            ))
        })
        .await?;
    let issuer = state.config.issuer().to_string();
    Ok(ui::ok(&OverviewPage {
        page: me.page(&state, &req, "Administration"),
        admin: Chrome::new("overview"),
        users,
        groups,
        apps,
        sessions,
        discovery: format!("{issuer}/.well-known/openid-configuration"),
        issuer,
    }))
}

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
    /// The last scheduled backup, in words (`None`: backups are not scheduled).
    backup: Option<String>,
    backup_failed: bool,
}

/// GET /admin
pub async fn get(
    state: State,
    req: HttpRequest,
    me: AdminSession,
) -> Result<HttpResponse, PageError> {
    let now = state.now();
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    let (users, groups, apps, sessions, last_backup) = state
        .db
        .read(move |c| -> Result<_, StoreError> {
            Ok((
                store::users::count(c)?,
                store::groups::count(c)?,
                store::clients::count_matching(c, "")?,
                store::sessions::count_active(c, now, idle, None)?,
                crate::ops::backup::last_status(c)?,
            ))
        })
        .await?;
    let scheduled = !state.config.backup_dir.is_empty();
    let backup_failed = last_backup.as_ref().is_some_and(|b| !b.ok);
    let backup = scheduled.then(|| match &last_backup {
        None => "none yet (the first runs within a minute of the server's start)".to_string(),
        Some(b) if b.ok => format!(
            "{}, into {}",
            crate::account::ago(now, b.at),
            b.path.as_deref().unwrap_or("?")
        ),
        Some(b) => format!(
            "failed ({}): {}",
            crate::account::ago(now, b.at),
            b.error.as_deref().unwrap_or("unknown error")
        ),
    });
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
        backup,
        backup_failed,
    }))
}

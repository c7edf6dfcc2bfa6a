//! /admin/audit — the audit log, newest first, filtered by person, application, kind and
//! dates; 50 events a page, paged by event id (stable while new events arrive).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminSession;
use super::view::{Chrome, PER_PAGE, day, enc, parse_day, when};
use crate::store::audit::{Filter, NamedEvent};
use crate::store::{self, StoreError};
use crate::web::State;
use crate::web::ui::{self, Page, PageError};

const NAV: &str = "audit";

/// The kinds offered in the filter: a prefix and its words.
const KINDS: &[(&str, &str)] = &[
    ("login", "Sign-ins"),
    ("session", "Sign-outs and ended sessions"),
    ("consent", "Consents"),
    ("device", "Sign-ins on devices"),
    ("token", "Tokens"),
    ("password", "Passwords"),
    ("passkey", "Passkeys"),
    ("logout", "Logout notices to apps"),
    ("upstream", "Sign-in with other providers"),
    ("user", "Changes to users"),
    ("group", "Changes to groups"),
    ("client", "Changes to applications"),
    ("keys", "Signing keys"),
    ("apikey", "API keys"),
    ("claims", "Custom claims"),
    ("role", "Roles in applications"),
    ("authorize", "Refused at an application"),
    ("backup", "Backups"),
];

/// An event kind in words.
pub fn describe(kind: &str) -> &'static str {
    match kind {
        "login.succeeded" => "Signed in",
        "login.failed" => "Sign-in failed",
        "login.throttled" => "Sign-in slowed down after failures",
        "session.ended" => "Session ended",
        "consent.granted" => "Allowed an app",
        "consent.denied" => "Refused an app",
        "consent.revoked" => "Removed an app's access",
        "device.approved" => "Signed in a device",
        "device.denied" => "Refused a device sign-in",
        "device.code_rejected" => "Typed a device code that is not valid",
        "token.revoked" => "Token revoked",
        "token.code_replayed" => "Sign-in code used twice (tokens revoked)",
        "token.refresh_reused" => "Old refresh token reused (tokens revoked)",
        "password.changed" => "Changed password",
        "password.reset" => "Set a new password with a link",
        "password.set" => "Set a first password",
        "passkey.deleted" => "Removed a passkey",
        "passkey.requirement_changed" => "Changed the passkey requirement",
        "invite.accepted" => "Accepted an invite",
        "setup.admin_created" => "First administrator created",
        "logout.backchannel_delivered" => "App told of sign-out",
        "logout.backchannel_failed" => "Could not tell an app of sign-out (will retry)",
        "logout.backchannel_gave_up" => "Gave up telling an app of sign-out",
        "upstream.signed_in" => "Signed in with another provider",
        "upstream.login_failed" => "Sign-in with another provider failed",
        "upstream.linked" => "Linked another provider",
        "upstream.unlinked" => "Unlinked another provider",
        "upstream.provider_created" => "Sign-in provider added",
        "upstream.provider_updated" => "Sign-in provider changed",
        "upstream.provider_enabled" => "Sign-in provider turned on",
        "upstream.provider_disabled" => "Sign-in provider turned off",
        "upstream.provider_deleted" => "Sign-in provider deleted",
        "user.created" => "User added",
        "user.updated" => "User changed",
        "user.disabled" => "User disabled",
        "user.enabled" => "User enabled",
        "user.deleted" => "User deleted",
        "user.reset_link_issued" => "Password link made",
        "user.password_set" => "Password set by an administrator",
        "user.invite_issued" => "Set-up link made",
        "group.created" => "Group created",
        "group.updated" => "Group changed",
        "group.deleted" => "Group deleted",
        "group.member_added" => "Added to a group",
        "group.member_removed" => "Removed from a group",
        "client.created" => "Application added",
        "client.updated" => "Application changed",
        "client.deleted" => "Application deleted",
        "client.secret_rotated" => "Application secret replaced",
        "keys.rotated" => "Signing keys rotated",
        "apikey.created" => "API key created",
        "apikey.revoked" => "API key revoked",
        "claims.scopes_changed" => "Claim scopes changed",
        "authorize.denied_group" => "Refused: not in an allowed group",
        "authorize.denied_role" => "Refused: no role in the application",
        "backup.completed" => "Backup made",
        "backup.failed" => "Backup failed",
        "passkey.registered" => "Added a passkey",
        "passkey.clone_detected" => "Passkey refused: it may have been copied",
        "role.created" => "Role defined",
        "role.updated" => "Role changed",
        "role.deleted" => "Role deleted (and revoked from everyone)",
        "role.granted" => "Role granted",
        "role.revoked" => "Role revoked",
        "token.exchanged" => "Token exchanged for another application",
        _ => "",
    }
}

/// Who acted, in words.
pub fn actor_words(e: &NamedEvent) -> String {
    match (&e.actor_name, e.event.actor_id.as_deref()) {
        (Some(name), _) => name.clone(),
        (None, Some("cli")) => "command line".into(),
        (None, Some(id)) if id.starts_with("apikey:") => match &e.actor_key {
            Some(name) => format!("API key “{name}”"),
            None => "API key".into(),
        },
        (None, Some(id)) => id.to_string(),
        (None, None) => String::new(),
    }
}

struct Row {
    at: String,
    kind: String,
    words: &'static str,
    actor: String,
    actor_id: String,
    user: String,
    user_id: String,
    client: String,
    client_id: String,
    ip: String,
    detail: String,
    /// The detail cut to fit the table (the whole text is in the cell's title).
    detail_short: String,
}

fn detail_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) if m.is_empty() => String::new(),
        serde_json::Value::Null => String::new(),
        v => v.to_string(),
    }
}

struct KindChoice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "admin/audit/list.html")]
struct ListPage {
    page: Page,
    admin: Chrome,
    /// The typed kind or pattern (`role.*`).
    action: String,
    user: String,
    app: String,
    kind: String,
    from: String,
    to: String,
    kinds: Vec<KindChoice>,
    rows: Vec<Row>,
    newer: Option<String>,
    older: Option<String>,
    filtered: bool,
    unknown_user: bool,
    retention_days: u64,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    kind: String,
    /// A kind or a pattern (`role.*`), typed; wins over `kind`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<i64>,
}

/// The filter as typed (trimmed), with the dates as times and the page's upper bound.
struct Search {
    user: String,
    app: String,
    kind: String,
    action: String,
    since: Option<i64>,
    until: Option<i64>,
    before: Option<i64>,
}

/// One page of events (and one more, to tell whether there is an older page), and whether the
/// user filter named no known user (it is then matched as a user id, also of deleted users).
fn read_events(c: &rusqlite::Connection, s: Search) -> Result<(Vec<NamedEvent>, bool), StoreError> {
    // A username (or a user id, also of deleted users).
    let (user_id, unknown) = if s.user.is_empty() {
        (None, false)
    } else {
        match crate::ops::users::find(c, &s.user)? {
            Some(u) => (Some(u.id), false),
            None => (Some(s.user.clone()), true),
        }
    };
    // A client id, or an application's name (any case).
    let client_id = match s.app.as_str() {
        "" => None,
        a if store::clients::by_id(c, a)?.is_some() => Some(a.to_string()),
        a => Some(
            store::clients::list(c)?
                .into_iter()
                .find(|x| x.name.eq_ignore_ascii_case(a))
                .map(|x| x.id)
                .unwrap_or_else(|| a.to_string()),
        ),
    };
    let f = Filter {
        user_id,
        client_id,
        since: s.since,
        until: s.until,
        ..Default::default()
    }
    .with_kind(Some(if s.action.is_empty() {
        s.kind
    } else {
        s.action
    }));
    let events = store::audit::search(c, &f, s.before, PER_PAGE + 1)?;
    Ok((events, unknown))
}

/// The detail cut to 32 characters (31 and an ellipsis) for the table.
fn short_detail(d: String) -> String {
    if d.chars().count() > 32 {
        format!("{}…", d.chars().take(31).collect::<String>())
    } else {
        d
    }
}

/// An event as a table row: names where known (with the id to link to), else the bare ids.
fn event_row(e: &NamedEvent) -> Row {
    Row {
        at: when(e.event.at),
        words: describe(&e.event.kind),
        kind: e.event.kind.clone(),
        actor: actor_words(e),
        actor_id: e
            .actor_name
            .as_ref()
            .and(e.event.actor_id.clone())
            .unwrap_or_default(),
        user: e
            .user_name
            .clone()
            .or_else(|| e.event.user_id.clone())
            .unwrap_or_default(),
        user_id: e
            .user_name
            .as_ref()
            .and(e.event.user_id.clone())
            .unwrap_or_default(),
        client: e
            .client_name
            .clone()
            .or_else(|| e.event.client_id.clone())
            .unwrap_or_default(),
        client_id: e
            .client_name
            .as_ref()
            .and(e.event.client_id.clone())
            .unwrap_or_default(),
        ip: e.event.ip.clone().unwrap_or_default(),
        detail: detail_text(&e.event.detail),
        detail_short: short_detail(detail_text(&e.event.detail)),
    }
}

/// The kind filter's choices, the current one selected.
fn kind_choices(kind: &str) -> Vec<KindChoice> {
    KINDS
        .iter()
        .map(|(value, label)| KindChoice {
            value,
            label,
            selected: *value == kind,
        })
        .collect()
}

/// GET /admin/audit
pub async fn list(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let q = q.into_inner();
    let (user, app, kind, action) = (
        q.user.trim().to_string(),
        q.app.trim().to_string(),
        q.kind.trim().to_string(),
        q.action.trim().to_string(),
    );
    let since = parse_day(&q.from);
    let until = parse_day(&q.to).map(|t| t + 86_399);
    let before = q.before;
    let search = Search {
        user: user.clone(),
        app: app.clone(),
        kind: kind.clone(),
        action: action.clone(),
        since,
        until,
        before,
    };
    let (events, unknown_user) = state.db.read(move |c| read_events(c, search)).await?;
    let keep = format!(
        "user={}&app={}&kind={}&action={}&from={}&to={}",
        enc(&user),
        enc(&app),
        enc(&kind),
        enc(&action),
        enc(&q.from),
        enc(&q.to)
    );
    let more = events.len() > PER_PAGE as usize;
    let events: Vec<NamedEvent> = events.into_iter().take(PER_PAGE as usize).collect();
    let older = if more {
        events
            .last()
            .map(|e| format!("/admin/audit?{keep}&before={}", e.event.id))
    } else {
        None
    };
    let newer = before.map(|_| format!("/admin/audit?{keep}"));
    let rows = events.iter().map(event_row).collect();
    let filtered = !(user.is_empty() && app.is_empty() && kind.is_empty() && action.is_empty())
        || since.is_some()
        || until.is_some();
    Ok(ui::ok(&ListPage {
        page: me.page(&state, &req, "Audit log"),
        admin: Chrome::new(NAV),
        kinds: kind_choices(&kind),
        user,
        app,
        kind,
        action,
        from: since.map(day).unwrap_or_default(),
        to: q.to.trim().to_string(),
        rows,
        newer,
        older,
        filtered,
        unknown_user,
        retention_days: state.config.audit_retention.as_secs() / 86_400,
    }))
}

//! /admin/sessions — every active browser session, newest activity first; end any of them
//! (the apps of that session are told by back-channel logout).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminSession;
use super::view::{Chrome, PER_PAGE, Pager, ago, when};
use crate::account::describe_device;
use crate::ops::users;
use crate::store;
use crate::web::State;
use crate::web::ui::{self, CsrfForm, Page, PageError};

const NAV: &str = "sessions";

struct Row {
    sid: String,
    user_id: String,
    username: String,
    device: String,
    ip: String,
    signed_in: String,
    last_seen: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "admin/sessions/list.html")]
struct ListPage {
    page: Page,
    admin: Chrome,
    rows: Vec<Row>,
    pager: Pager,
}

#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<u32>,
    done: Option<String>,
}

/// GET /admin/sessions
pub async fn list(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let now = state.now();
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    let page = q.page;
    let (pager, list) = state
        .db
        .read(move |c| {
            let total = store::sessions::count_active(c, now, idle, None)?;
            let pager = Pager::new("/admin/sessions", page, total, String::new());
            let list = store::sessions::list_active(c, now, idle, None, PER_PAGE, pager.offset())?;
            Ok((pager, list))
        })
        .await?;
    let notice = match q.done.as_deref() {
        Some("ended") => Some("The session is ended; its apps are being told."),
        _ => None,
    };
    Ok(ui::ok(&ListPage {
        page: me.page(&state, &req, "Sessions"),
        admin: Chrome::new(NAV).with_notice(notice),
        rows: list
            .into_iter()
            .map(|a| Row {
                current: a.session.sid == me.0.session.sid,
                device: describe_device(a.session.user_agent.as_deref()),
                ip: a.session.ip.clone().unwrap_or_default(),
                signed_in: when(a.session.auth_time),
                last_seen: ago(now, a.session.last_seen_at),
                user_id: a.session.user_id,
                sid: a.session.sid,
                username: a.username,
            })
            .collect(),
        pager,
    }))
}

#[derive(Deserialize)]
pub struct EndForm {
    sid: String,
    #[serde(default)]
    back: String,
}

/// POST /admin/sessions/end — ends a session; returns to `back` (a console page) or the list.
pub async fn end(
    state: State,
    me: AdminSession,
    form: CsrfForm<EndForm>,
) -> Result<HttpResponse, PageError> {
    let EndForm { sid, back } = form.0;
    let (actor, now) = (me.actor(), state.now());
    let mine = sid == me.0.session.sid;
    state
        .db
        .write(move |c| users::end_session(c, &actor, &sid, now))
        .await?;
    state.kick_logout_delivery();
    if mine {
        let mut resp = ui::see_other("/login?signed_out=1");
        let _ = resp.add_removal_cookie(&ui::removal_cookie(&state, crate::web::session::COOKIE));
        return Ok(resp);
    }
    // Only console pages: never an open redirect.
    let to = match crate::web::return_to::local_path(&state.issuer_url, &back) {
        Some(path)
            if path.starts_with("/admin/")
                && !path.contains("//")
                && !path.contains(['?', '#']) =>
        {
            format!("{path}?done=session")
        }
        _ => "/admin/sessions?done=ended".into(),
    };
    Ok(ui::see_other(&to))
}

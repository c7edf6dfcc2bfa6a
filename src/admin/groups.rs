//! /admin/groups — create, rename, describe and delete groups; members; custom claims and the
//! scope that releases each; whether members must also use a passkey.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminSession;
use super::view::{Chrome, Fields, PER_PAGE, Pager, Problem};
use crate::ops::OpError;
use crate::ops::groups::{self, GroupInput};
use crate::ops::users;
use crate::state::AppState;
use crate::store;
use crate::web::State;
use crate::web::ui::{self, CsrfForm, Page, PageError};

const NAV: &str = "groups";

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "The group is created. Add its members below.",
        "saved" => "Your changes are saved.",
        "deleted" => "The group is deleted.",
        "added" => "The member is added.",
        "removed" => "The member is removed.",
        _ => return None,
    })
}

struct Row {
    id: String,
    name: String,
    description: String,
    members: i64,
    require_passkey: bool,
    claims: usize,
}

#[derive(Template)]
#[template(path = "admin/groups/list.html")]
struct ListPage {
    page: Page,
    admin: Chrome,
    rows: Vec<Row>,
    name: String,
    description: String,
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
    typed: (String, String),
    problem: Problem,
    notice: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let all = state.db.read(store::groups::list_details).await?;
    let status = if problem.0.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(ui::render(
        status,
        &ListPage {
            page: me.page(state, req, "Groups"),
            admin: Chrome::new(NAV).with_notice(notice),
            rows: all
                .into_iter()
                .map(|g| Row {
                    description: g.description.unwrap_or_default(),
                    members: g.members,
                    require_passkey: g.require_passkey,
                    claims: g.claims.len(),
                    id: g.id,
                    name: g.name,
                })
                .collect(),
            name: typed.0,
            description: typed.1,
            problem,
        },
    ))
}

/// GET /admin/groups
pub async fn list(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    render_list(
        &state,
        &req,
        &me,
        (String::new(), String::new()),
        Problem::none(),
        notice(q.done.as_deref()),
    )
    .await
}

/// POST /admin/groups — creates a group and opens it.
pub async fn create(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let f = Fields(form.0);
    let input = GroupInput {
        name: f.get("name"),
        description: f.opt("description"),
        ..Default::default()
    };
    let (actor, now) = (me.actor(), state.now());
    let r = state
        .db
        .try_write(move |c| groups::create(c, &actor, input, now))
        .await;
    match r {
        Ok(g) => Ok(ui::see_other(&format!(
            "/admin/groups/{}?done=created",
            g.id
        ))),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            render_list(
                &state,
                &req,
                &me,
                (f.get("name"), f.get("description")),
                Problem(Some(p)),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

struct ClaimScope {
    claim: String,
    scope: String,
}

struct MemberRow {
    id: String,
    username: String,
    name: String,
    disabled: bool,
}

struct GroupForm {
    name: String,
    description: String,
    claims: String,
    require_passkey: bool,
}

#[derive(Template)]
#[template(path = "admin/groups/show.html")]
struct ShowPage {
    page: Page,
    admin: Chrome,
    id: String,
    title: String,
    is_admins: bool,
    form: GroupForm,
    claim_scopes: Vec<ClaimScope>,
    apps: Vec<String>,
    members: Vec<MemberRow>,
    pager: Pager,
    add_username: String,
    problem: Problem,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    page: Option<u32>,
    done: Option<String>,
}

struct Submitted {
    form: GroupForm,
    scopes: Vec<(String, String)>,
}

/// How to show the group page: after a GET, or again after a refused form.
#[derive(Default)]
struct View<'a> {
    page_no: Option<u32>,
    /// The settings form as submitted (else as stored).
    submitted: Option<Submitted>,
    /// The username typed into the add-member form.
    typed_member: String,
    problem: Problem,
    notice: Option<&'a str>,
}

/// The group and what its page lists, read in one go.
struct Stored {
    group: store::groups::GroupDetail,
    pager: Pager,
    /// This page of members.
    members: Vec<store::groups::Member>,
    /// The applications only this group's members (among others) may use.
    apps: Vec<String>,
    /// Which scope releases each custom claim.
    mapping: Vec<(String, String)>,
}

/// Reads the group and one page of its members (`None`: no such group).
fn read_stored(
    c: &rusqlite::Connection,
    gid: &str,
    page_no: Option<u32>,
) -> Result<Option<Stored>, store::StoreError> {
    let Some(g) = store::groups::detail_by_id(c, gid)? else {
        return Ok(None);
    };
    let pager = Pager::new(
        &format!("/admin/groups/{gid}"),
        page_no,
        g.members,
        String::new(),
    );
    let members = store::groups::members(c, gid, PER_PAGE, pager.offset())?;
    let apps = store::groups::restricting_clients(c, gid)?;
    let mapping = store::users::claim_scopes(c)?;
    Ok(Some(Stored {
        group: g,
        pager,
        members,
        apps,
        mapping,
    }))
}

/// The settings form as stored, with the scope that releases each claim ("" when none).
fn stored_settings(g: &store::groups::GroupDetail, mapping: &[(String, String)]) -> Submitted {
    Submitted {
        form: GroupForm {
            name: g.name.clone(),
            description: g.description.clone().unwrap_or_default(),
            claims: if g.claims.is_empty() {
                String::new()
            } else {
                serde_json::to_string_pretty(&g.claims).unwrap_or_default()
            },
            require_passkey: g.require_passkey,
        },
        scopes: g
            .claims
            .keys()
            .map(|k| {
                let s = mapping
                    .iter()
                    .find(|(c, _)| c == k)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                (k.clone(), s)
            })
            .collect(),
    }
}

/// The members as table rows (the display name, else the username).
fn member_rows(members: Vec<store::groups::Member>) -> Vec<MemberRow> {
    members
        .into_iter()
        .map(|m| MemberRow {
            name: m.display_name.unwrap_or_else(|| m.username.clone()),
            username: m.username,
            disabled: m.disabled,
            id: m.user_id,
        })
        .collect()
}

async fn render_show(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    id: String,
    v: View<'_>,
) -> Result<HttpResponse, PageError> {
    let (page_no, submitted, problem, notice) = (v.page_no, v.submitted, v.problem, v.notice);
    let gid = id.clone();
    let found = state
        .db
        .read(move |c| read_stored(c, &gid, page_no))
        .await?;
    let Some(Stored {
        group: g,
        pager,
        members,
        apps,
        mapping,
    }) = found
    else {
        return Err(PageError::NotFound);
    };
    let sub = submitted.unwrap_or_else(|| stored_settings(&g, &mapping));
    let status = if problem.0.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(ui::render(
        status,
        &ShowPage {
            page: me.page(state, req, &g.name),
            admin: Chrome::new(NAV).with_notice(notice),
            is_admins: g.name.eq_ignore_ascii_case(store::users::ADMIN_GROUP),
            title: g.name,
            id: g.id,
            form: sub.form,
            claim_scopes: sub
                .scopes
                .into_iter()
                .map(|(claim, scope)| ClaimScope { claim, scope })
                .collect(),
            apps,
            members: member_rows(members),
            pager,
            add_username: v.typed_member,
            problem,
        },
    ))
}

/// GET /admin/groups/{id}
pub async fn show(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    q: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    let v = View {
        page_no: q.page,
        notice: notice(q.done.as_deref()),
        ..Default::default()
    };
    render_show(&state, &req, &me, path.into_inner(), v).await
}

/// POST /admin/groups/{id} — name, description, passkey requirement, custom claims and the
/// scope releasing each claim, in one transaction.
pub async fn save(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let f = Fields(form.0);
    let sub = Submitted {
        form: GroupForm {
            name: f.get("name"),
            description: f.get("description"),
            claims: f.raw("claims"),
            require_passkey: f.on("require_passkey"),
        },
        scopes: f.prefixed("scope."),
    };
    let claims = match users::parse_claims(&sub.form.claims) {
        Ok(c) => c,
        Err(p) => {
            let v = View {
                submitted: Some(sub),
                problem: Problem(Some(p)),
                ..Default::default()
            };
            return render_show(&state, &req, &me, id, v).await;
        }
    };
    let input = GroupInput {
        name: f.get("name"),
        description: f.opt("description"),
        claims,
        require_passkey: f.on("require_passkey"),
    };
    let (actor, now, id2, scopes) = (me.actor(), state.now(), id.clone(), sub.scopes.clone());
    let r = state
        .db
        .try_write(move |c| {
            groups::update(c, &actor, &id2, input, now)?;
            users::set_claim_scopes(c, &actor, &scopes, now)
        })
        .await;
    match r {
        Ok(()) => Ok(ui::see_other(&format!("/admin/groups/{id}?done=saved"))),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            let v = View {
                submitted: Some(sub),
                problem: Problem(Some(p)),
                ..Default::default()
            };
            render_show(&state, &req, &me, id, v).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    username: String,
}

/// POST /admin/groups/{id}/members — adds a member by username.
pub async fn add_member(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<MemberForm>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let username = form.0.username.trim().to_string();
    let (actor, now, id2, u2) = (me.actor(), state.now(), id.clone(), username.clone());
    let r = state
        .db
        .try_write(move |c| groups::add_member(c, &actor, &id2, &u2, now))
        .await;
    match r {
        Ok(_) => Ok(ui::see_other(&format!("/admin/groups/{id}?done=added"))),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            let v = View {
                typed_member: username,
                problem: Problem(Some(p)),
                ..Default::default()
            };
            render_show(&state, &req, &me, id, v).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    user_id: String,
}

/// POST /admin/groups/{id}/members/remove
pub async fn remove_member(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<RemoveForm>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let (actor, now, id2, uid) = (me.actor(), state.now(), id.clone(), form.0.user_id);
    let r = state
        .db
        .try_write(move |c| groups::remove_member(c, &actor, &id2, &uid, now))
        .await;
    match r {
        Ok(_) => Ok(ui::see_other(&format!("/admin/groups/{id}?done=removed"))),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            let v = View {
                problem: Problem(Some(p)),
                ..Default::default()
            };
            render_show(&state, &req, &me, id, v).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/groups/delete.html")]
struct DeletePage {
    page: Page,
    admin: Chrome,
    id: String,
    name: String,
    members: i64,
    problem: Problem,
}

async fn render_delete(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    id: String,
    problem: Problem,
) -> Result<HttpResponse, PageError> {
    let Some(g) = state
        .db
        .read(move |c| store::groups::detail_by_id(c, &id))
        .await?
    else {
        return Err(PageError::NotFound);
    };
    let status = if problem.0.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(ui::render(
        status,
        &DeletePage {
            page: me.page(state, req, "Delete group"),
            admin: Chrome::new(NAV),
            id: g.id,
            name: g.name,
            members: g.members,
            problem,
        },
    ))
}

/// GET /admin/groups/{id}/delete — asks first.
pub async fn confirm_delete(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    render_delete(&state, &req, &me, path.into_inner(), Problem::none()).await
}

/// POST /admin/groups/{id}/delete
pub async fn delete(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    if !Fields(form.0).on("confirm") {
        let p = Problem::unconfirmed("delete this group");
        return render_delete(&state, &req, &me, id, p).await;
    }
    let (actor, now, id2) = (me.actor(), state.now(), id.clone());
    let r = state
        .db
        .try_write(move |c| groups::delete(c, &actor, &id2, now))
        .await;
    match r {
        Ok(_) => Ok(ui::see_other("/admin/groups?done=deleted")),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            render_delete(&state, &req, &me, id, Problem(Some(p))).await
        }
        Err(e) => Err(e.into()),
    }
}

//! /admin/apps/{id}/roles — an application's roles tab: define roles, grant them to people
//! and groups, see who holds what, revoke, delete (a role still granted only after a
//! confirmation, then revoked everywhere in the same transaction).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminSession;
use super::view::{Chrome, Fields, Problem, when};
use crate::ops::OpError;
use crate::ops::roles::{self, GranteeRef, RoleInput};
use crate::state::AppState;
use crate::store;
use crate::store::clients::Client;
use crate::store::roles::{GrantRow, Grantee, Role};
use crate::web::State;
use crate::web::ui::{self, CsrfForm, Page, PageError};

const NAV: &str = "apps";
/// Beyond this many people the grant form asks for a username instead of listing everyone.
const PEOPLE_IN_LIST: u32 = 300;

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "added" => "The role is added. Grant it to people or groups below.",
        "granted" => "The role is granted.",
        "revoked" => "The role is revoked.",
        "deleted" => "The role is deleted.",
        "unchanged" => "Nothing changed: they already hold this role.",
        _ => return None,
    })
}

struct Holder {
    /// `user:ID` or `group:ID`, what the revoke form sends.
    value: String,
    name: String,
    /// Their page in the console.
    href: String,
    is_group: bool,
    since: String,
}

struct RoleRow {
    id: String,
    name: String,
    description: String,
    holders: Vec<Holder>,
}

struct Choice {
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "admin/apps/roles.html")]
struct RolesPage {
    page: Page,
    admin: Chrome,
    c: Client,
    roles: Vec<RoleRow>,
    groups: Vec<Choice>,
    people: Vec<Choice>,
    /// Too many people to list: the grant form takes a username.
    people_by_name: bool,
    /// The add-role form as typed.
    name: String,
    description: String,
    problem: Problem,
    /// The role a grant problem concerns (to show the message beside its form).
    problem_role: String,
}

#[derive(Deserialize)]
pub struct RolesQuery {
    done: Option<String>,
}

fn holder(g: GrantRow) -> Holder {
    let (value, href, is_group) = match &g.grantee {
        Grantee::User(id) => (format!("user:{id}"), format!("/admin/users/{id}"), false),
        Grantee::Group(id) => (format!("group:{id}"), format!("/admin/groups/{id}"), true),
    };
    let name = match g.display_name.filter(|d| !d.is_empty() && *d != g.name) {
        Some(d) => format!("{d} ({})", g.name),
        None => g.name,
    };
    Holder {
        value,
        name,
        href,
        is_group,
        since: when(g.created_at),
    }
}

/// Everything the page shows, in one read.
struct Stored {
    client: Client,
    roles: Vec<(Role, Vec<GrantRow>)>,
    groups: Vec<store::groups::Group>,
    people: Vec<store::users::User>,
    people_total: i64,
}

async fn read_stored(state: &AppState, id: String) -> Result<Stored, PageError> {
    state
        .db
        .read(move |c| {
            let Some(client) = store::clients::by_id(c, &id)? else {
                return Ok(None);
            };
            let roles = store::roles::list(c, &id)?
                .into_iter()
                .map(|r| {
                    let g = store::roles::grantees(c, &r.id)?;
                    Ok((r, g))
                })
                .collect::<Result<Vec<_>, store::StoreError>>()?;
            Ok(Some(Stored {
                client,
                roles,
                groups: store::groups::list(c)?,
                people: store::users::list(c, "", PEOPLE_IN_LIST, 0)?,
                people_total: store::users::count(c)?,
            }))
        })
        .await?
        .ok_or(PageError::NotFound)
}

struct Typed {
    name: String,
    description: String,
    problem: Problem,
    problem_role: String,
}

impl Typed {
    fn none() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            problem: Problem::none(),
            problem_role: String::new(),
        }
    }
}

async fn render(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    id: String,
    typed: Typed,
    notice: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let s = read_stored(state, id).await?;
    let status = if typed.problem.0.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let title = format!("Roles of {}", s.client.name);
    Ok(ui::render(
        status,
        &RolesPage {
            page: me.page(state, req, &title),
            admin: Chrome::new(NAV).with_notice(notice),
            roles: s
                .roles
                .into_iter()
                .map(|(r, g)| RoleRow {
                    id: r.id,
                    name: r.name,
                    description: r.description.unwrap_or_default(),
                    holders: g.into_iter().map(holder).collect(),
                })
                .collect(),
            groups: s
                .groups
                .into_iter()
                .map(|g| Choice {
                    value: format!("group:{}", g.id),
                    label: g.name,
                })
                .collect(),
            people_by_name: s.people_total > i64::from(PEOPLE_IN_LIST),
            people: s
                .people
                .into_iter()
                .map(|u| Choice {
                    value: format!("user:{}", u.id),
                    label: if u.shown_name() == u.username {
                        u.username.clone()
                    } else {
                        format!("{} ({})", u.shown_name(), u.username)
                    },
                })
                .collect(),
            c: s.client,
            name: typed.name,
            description: typed.description,
            problem: typed.problem,
            problem_role: typed.problem_role,
        },
    ))
}

/// GET /admin/apps/{id}/roles
pub async fn get(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    q: web::Query<RolesQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = notice(q.done.as_deref());
    render(&state, &req, &me, path.into_inner(), Typed::none(), notice).await
}

fn back(id: &str, done: &str) -> HttpResponse {
    ui::see_other(&format!("/admin/apps/{id}/roles?done={done}"))
}

/// POST /admin/apps/{id}/roles — defines a role.
pub async fn add(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let f = Fields(form.0);
    let input = RoleInput {
        name: f.get("name"),
        description: f.opt("description"),
    };
    let (actor, now, cid) = (me.actor(), state.now(), id.clone());
    let typed = input.clone();
    match state
        .db
        .try_write(move |c| roles::create(c, &actor, &cid, input, now))
        .await
    {
        Ok(_) => Ok(back(&id, "added")),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            let typed = Typed {
                name: typed.name,
                description: typed.description.unwrap_or_default(),
                problem: Problem(Some(p)),
                problem_role: String::new(),
            };
            render(&state, &req, &me, id, typed, None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `user:ID` / `group:ID` from the grant and revoke forms; a typed username when the list of
/// people is too long to show.
fn grantee_of(f: &Fields) -> Option<GranteeRef> {
    let who = f.get("who");
    if let Some(id) = who.strip_prefix("user:") {
        return Some(GranteeRef::User(id.to_string()));
    }
    if let Some(id) = who.strip_prefix("group:") {
        return Some(GranteeRef::Group(id.to_string()));
    }
    f.opt("username").map(GranteeRef::User)
}

async fn change(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    (id, role): (String, String),
    f: Fields,
    grant: bool,
) -> Result<HttpResponse, PageError> {
    let Some(who) = grantee_of(&f) else {
        let typed = Typed {
            problem: Problem(Some(crate::ops::field(
                "who",
                "Choose a person or a group.",
            ))),
            problem_role: role,
            ..Typed::none()
        };
        return render(state, req, me, id, typed, None).await;
    };
    let (actor, now, cid, rid) = (me.actor(), state.now(), id.clone(), role.clone());
    let r = state
        .db
        .try_write(move |c| {
            if grant {
                roles::grant(c, &actor, &cid, &rid, &who, now)
            } else {
                roles::revoke(c, &actor, &cid, &rid, &who, now)
            }
        })
        .await;
    match r {
        Ok((_, true)) => Ok(back(&id, if grant { "granted" } else { "revoked" })),
        Ok((_, false)) => Ok(back(&id, "unchanged")),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            let typed = Typed {
                problem: Problem(Some(p)),
                problem_role: role,
                ..Typed::none()
            };
            render(state, req, me, id, typed, None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /admin/apps/{id}/roles/{role}/grant
pub async fn grant(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<(String, String)>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    change(&state, &req, &me, path.into_inner(), Fields(form.0), true).await
}

/// POST /admin/apps/{id}/roles/{role}/revoke
pub async fn revoke(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<(String, String)>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    change(&state, &req, &me, path.into_inner(), Fields(form.0), false).await
}

#[derive(Template)]
#[template(path = "admin/apps/role_delete.html")]
struct DeletePage {
    page: Page,
    admin: Chrome,
    app_id: String,
    app_name: String,
    role: Role,
    problem: Problem,
}

async fn delete_page(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    (id, role): (String, String),
    problem: Problem,
) -> Result<HttpResponse, PageError> {
    let (cid, rid) = (id.clone(), role);
    let (client, role) = state
        .db
        .read(move |c| {
            let client = store::clients::by_id(c, &cid)?;
            let role = roles::find(c, &cid, &rid)?;
            Ok(client.zip(role))
        })
        .await?
        .ok_or(PageError::NotFound)?;
    let status = if problem.0.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let title = format!("Delete the role {}?", role.name);
    Ok(ui::render(
        status,
        &DeletePage {
            page: me.page(state, req, &title),
            admin: Chrome::new(NAV),
            app_id: client.id,
            app_name: client.name,
            role,
            problem,
        },
    ))
}

/// GET /admin/apps/{id}/roles/{role}/delete — asks first, saying who still holds it.
pub async fn confirm_delete(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    delete_page(&state, &req, &me, path.into_inner(), Problem::none()).await
}

/// POST /admin/apps/{id}/roles/{role}/delete — deletes it and revokes every grant, at once.
pub async fn delete(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<(String, String)>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let (id, role) = path.into_inner();
    if !Fields(form.0).on("confirm") {
        let p = Problem::unconfirmed("delete this role");
        return delete_page(&state, &req, &me, (id, role), p).await;
    }
    let (actor, now, cid) = (me.actor(), state.now(), id.clone());
    state
        .db
        .try_write(move |c| roles::delete(c, &actor, &cid, &role, true, now))
        .await?;
    Ok(back(&id, "deleted"))
}

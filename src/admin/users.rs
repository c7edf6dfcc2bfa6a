//! /admin/users — list and search people, add one (with a password or a set-up link), edit,
//! disable, delete, issue password links, see their sessions, apps, passkeys and linked
//! accounts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminSession;
use super::view::{Chrome, Fields, PER_PAGE, Pager, Problem, ago, enc, when};
use crate::account::describe_device;
use crate::crypto::secret::Secret;
use crate::domain::scope;
use crate::ops::OpError;
use crate::ops::users::{self, LinkKind, UserEdit};
use crate::state::AppState;
use crate::store::{self, StoreError};
use crate::upstream::accounts::UnlinkRefused;
use crate::web::State;
use crate::web::ui::{self, CsrfForm, Page, PageError};

const NAV: &str = "users";

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "The user is added.",
        "saved" => "Your changes are saved.",
        "disabled" => "The user is disabled and signed out everywhere.",
        "enabled" => "The user can sign in again.",
        "deleted" => "The user is deleted.",
        "consent" => "The app no longer has access to this account.",
        "session" => "That session is ended.",
        "unlinked" => "The linked sign-in is removed.",
        _ => return None,
    })
}

// ---- list ----------------------------------------------------------------------------------

struct Row {
    id: String,
    name: String,
    username: String,
    email: String,
    groups: String,
    disabled: bool,
    has_password: bool,
    created: String,
}

#[derive(Template)]
#[template(path = "admin/users/list.html")]
struct ListPage {
    page: Page,
    admin: Chrome,
    q: String,
    rows: Vec<Row>,
    pager: Pager,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    page: Option<u32>,
    done: Option<String>,
}

/// GET /admin/users — 50 at a time, searched by username, email or name.
pub async fn list(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let search = q.q.trim().to_string();
    let keep = if search.is_empty() {
        String::new()
    } else {
        format!("q={}&", enc(&search))
    };
    let page = q.page;
    let s2 = search.clone();
    let (pager, users) = state
        .db
        .read(move |c| {
            let total = store::users::count_matching(c, &s2)?;
            let pager = Pager::new("/admin/users", page, total, keep);
            let users = store::users::list(c, &s2, PER_PAGE, pager.offset())?;
            let mut out = Vec::with_capacity(users.len());
            for u in users {
                let groups = store::users::group_names(c, &u.id)?;
                out.push((u, groups));
            }
            Ok((pager, out))
        })
        .await?;
    let rows = users
        .into_iter()
        .map(|(u, groups)| Row {
            name: u.shown_name().to_string(),
            email: u.email.clone().unwrap_or_default(),
            groups: groups.join(", "),
            disabled: u.disabled,
            has_password: u.password_hash.is_some(),
            created: when(u.created_at),
            username: u.username,
            id: u.id,
        })
        .collect();
    Ok(ui::ok(&ListPage {
        page: me.page(&state, &req, "Users"),
        admin: Chrome::new(NAV).with_notice(notice(q.done.as_deref())),
        q: search,
        rows,
        pager,
    }))
}

// ---- add -----------------------------------------------------------------------------------

struct GroupChoice {
    name: String,
    checked: bool,
}

async fn group_choices(
    state: &AppState,
    checked: Vec<String>,
) -> Result<Vec<GroupChoice>, StoreError> {
    let all = state.db.read(store::groups::list).await?;
    Ok(all
        .into_iter()
        .map(|g| GroupChoice {
            checked: checked.iter().any(|c| c.eq_ignore_ascii_case(&g.name)),
            name: g.name,
        })
        .collect())
}

#[derive(Template)]
#[template(path = "admin/users/new.html")]
struct NewPage {
    page: Page,
    admin: Chrome,
    username: String,
    display_name: String,
    email: String,
    email_verified: bool,
    groups: Vec<GroupChoice>,
    with_password: bool,
    allow_password: bool,
    min_length: u32,
    problem: Problem,
}

/// GET /admin/users/new
pub async fn new(
    state: State,
    req: HttpRequest,
    me: AdminSession,
) -> Result<HttpResponse, PageError> {
    Ok(ui::ok(&NewPage {
        page: me.page(&state, &req, "Add a user"),
        admin: Chrome::new(NAV),
        username: String::new(),
        display_name: String::new(),
        email: String::new(),
        email_verified: true,
        groups: group_choices(&state, Vec::new()).await?,
        with_password: false,
        allow_password: true,
        min_length: state.config.password_min_length,
        problem: Problem::none(),
    }))
}

#[derive(Template)]
#[template(path = "admin/users/link.html")]
struct LinkPage {
    page: Page,
    admin: Chrome,
    user_id: String,
    name: String,
    heading: String,
    explain: String,
    url: String,
    expires: String,
}

fn link_page(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    user: &store::users::User,
    kind: LinkKind,
    token: &str,
    created: bool,
) -> HttpResponse {
    let ttl = state.config.password_reset_ttl.as_secs() as i64;
    let name = user.shown_name().to_string();
    let (heading, explain) = match kind {
        LinkKind::PasswordReset => (
            format!("Password link for {name}"),
            format!("Send this link to {name}. It lets them choose a new password."),
        ),
        LinkKind::Invite { allow_password } => (
            if created {
                format!("{name} is added: send them this link")
            } else {
                format!("Set-up link for {name}")
            },
            if allow_password {
                format!(
                    "Send this link to {name}. There they add a passkey or choose a password, and are signed in."
                )
            } else {
                format!(
                    "Send this link to {name}. There they add a passkey (fingerprint, face or device PIN) and are signed in."
                )
            },
        ),
    };
    ui::ok(&LinkPage {
        page: me.page(state, req, &heading),
        admin: Chrome::new(NAV),
        user_id: user.id.clone(),
        name,
        heading,
        explain,
        url: state.url(&kind.path(token)),
        expires: when(state.now() + ttl),
    })
}

/// POST /admin/users — with a password (checked and hashed first), or without one: then the
/// page shows a one-time set-up link, once.
pub async fn create(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let f = Fields(form.0);
    let with_password = f.get("setup") == "password";
    let allow_password = f.on("allow_password");
    let edit = UserEdit {
        username: f.get("username"),
        display_name: f.opt("display_name"),
        email: f.opt("email"),
        email_verified: f.on("email_verified"),
        groups: f.all("group"),
        ..Default::default()
    };
    let password_hash = if with_password {
        let pw = f.raw("password");
        if let Err(e) = users::validate_password(&pw, state.config.password_min_length) {
            return render_new(&state, &req, &me, &f, e).await;
        }
        Some(
            state
                .hasher
                .hash(Secret::new(pw))
                .await
                .map_err(|_| PageError::Internal)?,
        )
    } else {
        None
    };
    let (actor, now) = (me.actor(), state.now());
    let ttl = state.config.password_reset_ttl.as_secs() as i64;
    let kind = LinkKind::Invite { allow_password };
    let result = state
        .db
        .try_write(move |c| {
            let user = users::create(c, &actor, edit, password_hash, now)?;
            let token = if with_password {
                None
            } else {
                Some(users::issue_link(c, &actor, &user.id, kind, ttl, now)?)
            };
            Ok::<_, OpError>((user, token))
        })
        .await;
    match result {
        Ok((user, None)) => Ok(ui::see_other(&format!(
            "/admin/users/{}?done=created",
            user.id
        ))),
        Ok((user, Some(token))) => Ok(link_page(&state, &req, &me, &user, kind, &token, true)),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            render_new(&state, &req, &me, &f, p).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The add form again, with what was typed (never the password) and the problem.
async fn render_new(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    f: &Fields,
    problem: crate::ops::FieldError,
) -> Result<HttpResponse, PageError> {
    Ok(ui::render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &NewPage {
            page: me.page(state, req, "Add a user"),
            admin: Chrome::new(NAV),
            username: f.get("username"),
            display_name: f.get("display_name"),
            email: f.get("email"),
            email_verified: f.on("email_verified"),
            groups: group_choices(state, f.all("group")).await?,
            with_password: f.get("setup") == "password",
            allow_password: f.on("allow_password"),
            min_length: state.config.password_min_length,
            problem: Problem(Some(problem)),
        },
    ))
}

// ---- show and edit -------------------------------------------------------------------------

struct ClaimScope {
    claim: String,
    scope: String,
}

struct SessionRow {
    sid: String,
    device: String,
    ip: String,
    signed_in: String,
    last_seen: String,
}

struct ConsentRow {
    client_id: String,
    name: String,
    scopes: String,
    granted: String,
}

struct PasskeyRow {
    name: String,
    kind: &'static str,
    created: String,
    last_used: String,
}

struct LinkedRow {
    provider_id: String,
    slug: String,
    provider: String,
    icon: Option<String>,
    subject: String,
    email: String,
    linked: String,
    last_used: String,
}

/// What the profile form shows: stored values, or what was just submitted.
struct UserForm {
    username: String,
    display_name: String,
    given_name: String,
    family_name: String,
    email: String,
    email_verified: bool,
    claims: String,
}

#[derive(Template)]
#[template(path = "admin/users/show.html")]
struct ShowPage {
    page: Page,
    admin: Chrome,
    id: String,
    name: String,
    created: String,
    disabled: bool,
    has_password: bool,
    is_self: bool,
    form: UserForm,
    groups: Vec<GroupChoice>,
    claim_scopes: Vec<ClaimScope>,
    sessions: Vec<SessionRow>,
    consents: Vec<ConsentRow>,
    passkeys: Vec<PasskeyRow>,
    linked: Vec<LinkedRow>,
    roles: Vec<store::roles::HeldRole>,
    problem: Problem,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    done: Option<String>,
}

/// A refused profile form: what was typed, the groups ticked, the claim scopes.
type Submitted = (UserForm, Vec<String>, Vec<(String, String)>);

/// Everything the user page lists, read in one go.
struct Stored {
    groups: Vec<String>,
    sessions: Vec<store::sessions::ActiveSession>,
    consents: Vec<store::consents::Consent>,
    passkeys: Vec<store::passkeys::StoredPasskey>,
    linked: Vec<store::upstream::LinkedWithProvider>,
    roles: Vec<store::roles::HeldRole>,
    /// Which scope releases each custom claim.
    mapping: Vec<(String, String)>,
    user: store::users::User,
}

/// Reads the user and what their page lists (`None`: no such user).
fn read_stored(
    c: &rusqlite::Connection,
    uid: &str,
    now: i64,
    idle: i64,
) -> Result<Option<Stored>, StoreError> {
    let Some(u) = store::users::by_id(c, uid)? else {
        return Ok(None);
    };
    Ok(Some(Stored {
        groups: store::users::group_names(c, uid)?,
        sessions: store::sessions::list_active(c, now, idle, Some(uid), PER_PAGE, 0)?,
        consents: store::consents::list_for_user(c, uid)?,
        passkeys: store::passkeys::list_for_user(c, uid)?,
        linked: store::upstream::links_for_user(c, uid)?,
        roles: store::roles::held_by_user(c, uid)?,
        mapping: store::users::claim_scopes(c)?,
        user: u,
    }))
}

/// Each custom claim with the scope that releases it ("" when none is set).
fn claim_scope_pairs(
    claims: &serde_json::Map<String, serde_json::Value>,
    mapping: &[(String, String)],
) -> Vec<(String, String)> {
    claims
        .keys()
        .map(|k| {
            let s = mapping
                .iter()
                .find(|(c, _)| c == k)
                .map(|(_, s)| s.clone())
                .unwrap_or_default();
            (k.clone(), s)
        })
        .collect()
}

/// The profile form as stored: the user's fields, their groups ticked, the claim scopes.
fn stored_form(
    u: &store::users::User,
    groups: Vec<String>,
    mapping: &[(String, String)],
) -> Submitted {
    let claims = if u.claims.is_empty() {
        String::new()
    } else {
        serde_json::to_string_pretty(&u.claims).unwrap_or_default()
    };
    let scopes = claim_scope_pairs(&u.claims, mapping);
    (
        UserForm {
            username: u.username.clone(),
            display_name: u.display_name.clone().unwrap_or_default(),
            given_name: u.given_name.clone().unwrap_or_default(),
            family_name: u.family_name.clone().unwrap_or_default(),
            email: u.email.clone().unwrap_or_default(),
            email_verified: u.email_verified,
            claims,
        },
        groups,
        scopes,
    )
}

/// The user's live sessions as table rows.
fn session_rows(sessions: Vec<store::sessions::ActiveSession>, now: i64) -> Vec<SessionRow> {
    sessions
        .into_iter()
        .map(|a| SessionRow {
            device: describe_device(a.session.user_agent.as_deref()),
            ip: a.session.ip.clone().unwrap_or_default(),
            signed_in: when(a.session.auth_time),
            last_seen: ago(now, a.session.last_seen_at),
            sid: a.session.sid,
        })
        .collect()
}

/// The apps the user allowed, with their scopes in words.
fn consent_rows(consents: Vec<store::consents::Consent>) -> Vec<ConsentRow> {
    consents
        .into_iter()
        .map(|c| ConsentRow {
            scopes: c
                .scopes
                .iter()
                .filter_map(|s| scope::describe(s))
                .collect::<Vec<_>>()
                .join(", "),
            granted: when(c.granted_at),
            client_id: c.client_id,
            name: c.client_name,
        })
        .collect()
}

/// The user's passkeys as table rows.
fn passkey_rows(passkeys: Vec<store::passkeys::StoredPasskey>, now: i64) -> Vec<PasskeyRow> {
    passkeys
        .into_iter()
        .map(|p| PasskeyRow {
            kind: if p.backup_eligible {
                "synced"
            } else {
                "this device only"
            },
            created: when(p.created_at),
            last_used: p
                .last_used_at
                .map(|t| ago(now, t))
                .unwrap_or_else(|| "never".into()),
            name: p.name,
        })
        .collect()
}

/// The user's sign-ins through other providers as table rows.
fn linked_rows(linked: Vec<store::upstream::LinkedWithProvider>, now: i64) -> Vec<LinkedRow> {
    linked
        .into_iter()
        .map(|l| LinkedRow {
            email: l.link.email.unwrap_or_default(),
            linked: when(l.link.linked_at),
            last_used: l
                .link
                .last_used_at
                .map(|t| ago(now, t))
                .unwrap_or_else(|| "never".into()),
            provider_id: l.link.provider_id,
            subject: l.link.subject,
            slug: l.slug,
            provider: l.display_name,
            icon: l.icon,
        })
        .collect()
}

/// Renders the user page; `submitted` replaces the stored profile after a refused save.
async fn render_show(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    id: String,
    submitted: Option<Submitted>,
    problem: Problem,
    notice: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let now = state.now();
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    let uid = id.clone();
    let found = state
        .db
        .read(move |c| read_stored(c, &uid, now, idle))
        .await?;
    let Some(Stored {
        groups,
        sessions,
        consents,
        passkeys,
        linked,
        roles,
        mapping,
        user: u,
    }) = found
    else {
        return Err(PageError::NotFound);
    };
    let (form, checked, scopes) = match submitted {
        Some(s) => s,
        None => stored_form(&u, groups, &mapping),
    };
    let status = if problem.0.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ShowPage {
        page: me.page(state, req, u.shown_name()),
        admin: Chrome::new(NAV).with_notice(notice),
        id: u.id.clone(),
        name: u.shown_name().to_string(),
        created: when(u.created_at),
        disabled: u.disabled,
        has_password: u.password_hash.is_some(),
        is_self: u.id == me.0.user.id,
        form,
        groups: group_choices(state, checked).await?,
        claim_scopes: scopes
            .into_iter()
            .map(|(claim, scope)| ClaimScope { claim, scope })
            .collect(),
        sessions: session_rows(sessions, now),
        consents: consent_rows(consents),
        passkeys: passkey_rows(passkeys, now),
        linked: linked_rows(linked, now),
        roles,
        problem,
    };
    Ok(ui::render(status, &page))
}

/// GET /admin/users/{id}
pub async fn show(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    q: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    render_show(
        &state,
        &req,
        &me,
        path.into_inner(),
        None,
        Problem::none(),
        notice(q.done.as_deref()),
    )
    .await
}

/// The profile form as typed into the user page.
fn submitted_form(f: &Fields) -> UserForm {
    UserForm {
        username: f.get("username"),
        display_name: f.get("display_name"),
        given_name: f.get("given_name"),
        family_name: f.get("family_name"),
        email: f.get("email"),
        email_verified: f.on("email_verified"),
        claims: f.raw("claims"),
    }
}

/// The user page again after a refused save: what was typed, and why it was refused.
async fn refused_save(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    id: String,
    submitted: Submitted,
    problem: crate::ops::FieldError,
) -> Result<HttpResponse, PageError> {
    render_show(
        state,
        req,
        me,
        id,
        Some(submitted),
        Problem(Some(problem)),
        None,
    )
    .await
}

/// POST /admin/users/{id} — the profile, groups and custom claims (with the scope that
/// releases each claim) in one transaction.
pub async fn save(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let f = Fields(form.0);
    let submitted = submitted_form(&f);
    let groups = f.all("group");
    let scopes = f.prefixed("scope.");
    let claims = match users::parse_claims(&submitted.claims) {
        Ok(c) => c,
        Err(p) => {
            return refused_save(&state, &req, &me, id, (submitted, groups, scopes), p).await;
        }
    };
    let (actor, now) = (me.actor(), state.now());
    let (id2, groups2, scopes2) = (id.clone(), groups.clone(), scopes.clone());
    let edit_fields = (
        f.get("username"),
        f.opt("display_name"),
        f.opt("given_name"),
        f.opt("family_name"),
        f.opt("email"),
        f.on("email_verified"),
    );
    let result = state
        .db
        .try_write(move |c| {
            let cur = store::users::by_id(c, &id2)?.ok_or(OpError::NotFound)?;
            let (username, display_name, given_name, family_name, email, email_verified) =
                edit_fields;
            let edit = UserEdit {
                username,
                display_name,
                given_name,
                family_name,
                email,
                email_verified,
                groups: groups2,
                disabled: cur.disabled,
                claims,
            };
            users::update(c, &actor, &id2, edit, now)?;
            users::set_claim_scopes(c, &actor, &scopes2, now)?;
            Ok::<_, OpError>(())
        })
        .await;
    match result {
        Ok(()) => Ok(ui::see_other(&format!("/admin/users/{id}?done=saved"))),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            refused_save(&state, &req, &me, id, (submitted, groups, scopes), p).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---- actions -------------------------------------------------------------------------------

/// A refused action on the user page (e.g. disabling the last administrator).
async fn refused(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    id: String,
    e: OpError,
) -> Result<HttpResponse, PageError> {
    match e {
        OpError::Invalid(p) | OpError::Conflict(p) => {
            render_show(state, req, me, id, None, Problem(Some(p)), None).await
        }
        e => Err(e.into()),
    }
}

async fn set_disabled(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    id: String,
    disabled: bool,
) -> Result<HttpResponse, PageError> {
    let (actor, now, id2) = (me.actor(), state.now(), id.clone());
    let r = state
        .db
        .try_write(move |c| users::set_disabled(c, &actor, &id2, disabled, now))
        .await;
    match r {
        Ok(_) => {
            state.kick_logout_delivery();
            let done = if disabled { "disabled" } else { "enabled" };
            Ok(ui::see_other(&format!("/admin/users/{id}?done={done}")))
        }
        Err(e) => refused(&state, &req, &me, id, e).await,
    }
}

#[derive(Deserialize)]
pub struct Empty {}

/// POST /admin/users/{id}/disable — signs them out everywhere and revokes their tokens.
pub async fn disable(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    _form: CsrfForm<Empty>,
) -> Result<HttpResponse, PageError> {
    set_disabled(state, req, me, path.into_inner(), true).await
}

/// POST /admin/users/{id}/enable
pub async fn enable(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    _form: CsrfForm<Empty>,
) -> Result<HttpResponse, PageError> {
    set_disabled(state, req, me, path.into_inner(), false).await
}

#[derive(Template)]
#[template(path = "admin/users/delete.html")]
struct DeletePage {
    page: Page,
    admin: Chrome,
    id: String,
    name: String,
    username: String,
    sessions: i64,
    problem: Problem,
}

async fn render_delete(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    id: String,
    problem: Problem,
) -> Result<HttpResponse, PageError> {
    let now = state.now();
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    let found = state
        .db
        .read(move |c| {
            let Some(u) = store::users::by_id(c, &id)? else {
                return Ok(None);
            };
            let n = store::sessions::count_active(c, now, idle, Some(&id))?;
            Ok(Some((u, n)))
        })
        .await?;
    let Some((u, sessions)) = found else {
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
            page: me.page(state, req, "Delete user"),
            admin: Chrome::new(NAV),
            name: u.shown_name().to_string(),
            username: u.username,
            id: u.id,
            sessions,
            problem,
        },
    ))
}

/// GET /admin/users/{id}/delete — asks first.
pub async fn confirm_delete(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    render_delete(&state, &req, &me, path.into_inner(), Problem::none()).await
}

/// POST /admin/users/{id}/delete — needs the confirmation box ticked.
pub async fn delete(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    if !Fields(form.0).on("confirm") {
        let p = Problem::unconfirmed("delete this user");
        return render_delete(&state, &req, &me, id, p).await;
    }
    let (actor, now, id2) = (me.actor(), state.now(), id.clone());
    let r = state
        .db
        .try_write(move |c| users::delete(c, &actor, &id2, now))
        .await;
    match r {
        Ok(_) => {
            state.kick_logout_delivery();
            Ok(ui::see_other("/admin/users?done=deleted"))
        }
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            render_delete(&state, &req, &me, id, Problem(Some(p))).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn issue(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    id: String,
    kind: LinkKind,
) -> Result<HttpResponse, PageError> {
    let (actor, now) = (me.actor(), state.now());
    let ttl = state.config.password_reset_ttl.as_secs() as i64;
    let (user, token) = state
        .db
        .try_write(move |c| {
            let token = users::issue_link(c, &actor, &id, kind, ttl, now)?;
            let user = store::users::by_id(c, &id)?.ok_or(OpError::NotFound)?;
            Ok::<_, OpError>((user, token))
        })
        .await?;
    Ok(link_page(&state, &req, &me, &user, kind, &token, false))
}

/// POST /admin/users/{id}/reset-link — shows a one-time password link, once.
pub async fn reset_link(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    _form: CsrfForm<Empty>,
) -> Result<HttpResponse, PageError> {
    issue(state, req, me, path.into_inner(), LinkKind::PasswordReset).await
}

/// POST /admin/users/{id}/invite-link — shows a one-time set-up link (passkey, or password
/// too when allowed), once.
pub async fn invite_link(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let allow_password = Fields(form.0).on("allow_password");
    issue(
        state,
        req,
        me,
        path.into_inner(),
        LinkKind::Invite { allow_password },
    )
    .await
}

#[derive(Deserialize)]
pub struct ConsentForm {
    client_id: String,
}

/// POST /admin/users/{id}/consents/revoke — withdraws an app's access for this user.
pub async fn revoke_consent(
    state: State,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<ConsentForm>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let (actor, now, id2, cid) = (me.actor(), state.now(), id.clone(), form.0.client_id);
    state
        .db
        .try_write(move |c| users::revoke_consent(c, &actor, &id2, &cid, now))
        .await
        .map_err(PageError::from)?;
    Ok(ui::see_other(&format!("/admin/users/{id}?done=consent")))
}

#[derive(Deserialize)]
pub struct UnlinkForm {
    provider_id: String,
    subject: String,
}

/// POST /admin/users/{id}/identities/unlink — removes a linked sign-in, with the account
/// page's rule (`upstream::accounts::unlink`): never the person's last way to sign in.
pub async fn unlink_identity(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<UnlinkForm>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let f = form.0;
    let (actor, now, id2) = (me.actor().audit_id(), state.now(), id.clone());
    let outcome = state
        .db
        .write(move |c| {
            crate::upstream::accounts::unlink(c, &id2, &f.provider_id, &f.subject, &actor, now)
        })
        .await?;
    match outcome {
        Ok(()) => Ok(ui::see_other(&format!("/admin/users/{id}?done=unlinked"))),
        Err(UnlinkRefused::NotFound) => Err(PageError::NotFound),
        Err(UnlinkRefused::LastSignInMethod) => {
            let p = crate::ops::FieldError {
                field: "unlink",
                message: "This is their only way to sign in, so it cannot be unlinked. Create a set-up link or a password link for them first, or let them add a passkey.".into(),
            };
            render_show(&state, &req, &me, id, None, Problem(Some(p)), None).await
        }
    }
}

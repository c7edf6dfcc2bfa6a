//! /admin/apps — applications (OAuth clients): list, add, see how to connect, edit every
//! setting, regenerate the secret, delete. The secret is shown exactly once, on the page that
//! answers the creation or regeneration (never stored in the clear, never in a URL).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminSession;
use super::guides;
use super::view::{Chrome, Fields, PER_PAGE, Pager, Problem, enc, when};
use crate::domain::scope::KNOWN_SCOPES;
use crate::ops::FieldError;
use crate::ops::OpError;
use crate::ops::clients::{self, ClientInput};
use crate::state::AppState;
use crate::store;
use crate::store::clients::Client;
use crate::web::State;
use crate::web::ui::{self, CsrfForm, Page, PageError};

const NAV: &str = "apps";

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "The application is added. Use the settings below in the app.",
        "saved" => "Your changes are saved.",
        "deleted" => "The application is deleted.",
        _ => return None,
    })
}

// ---- list ----------------------------------------------------------------------------------

struct Row {
    id: String,
    name: String,
    public: bool,
    redirect: String,
    more: usize,
    groups: String,
    warn: bool,
}

#[derive(Template)]
#[template(path = "admin/apps/list.html")]
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

/// GET /admin/apps — 50 at a time, searched by name or client id.
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
    let (page, s2) = (q.page, search.clone());
    let (pager, list) = state
        .db
        .read(move |c| {
            let total = store::clients::count_matching(c, &s2)?;
            let pager = Pager::new("/admin/apps", page, total, keep);
            let list = store::clients::list_page(c, &s2, PER_PAGE, pager.offset())?;
            Ok((pager, list))
        })
        .await?;
    let rows = list
        .into_iter()
        .map(|c| Row {
            warn: !clients::warnings(&c).is_empty(),
            redirect: c.redirect_uris.first().cloned().unwrap_or_default(),
            more: c.redirect_uris.len().saturating_sub(1),
            groups: c.allowed_groups.join(", "),
            public: c.public,
            name: c.name,
            id: c.id,
        })
        .collect();
    Ok(ui::ok(&ListPage {
        page: me.page(&state, &req, "Applications"),
        admin: Chrome::new(NAV).with_notice(notice(q.done.as_deref())),
        q: search,
        rows,
        pager,
    }))
}

// ---- the settings form (add and edit) ------------------------------------------------------

struct GroupChoice {
    name: String,
    checked: bool,
}

/// Another confidential app, offered as one that may exchange tokens for this one.
struct SourceChoice {
    id: String,
    name: String,
    checked: bool,
}

/// Every setting as the form shows it.
struct ClientForm {
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    public: bool,
    auth_method: String,
    require_pkce: bool,
    skip_consent: bool,
    allow_refresh: bool,
    allow_client_credentials: bool,
    allowed_groups: Vec<String>,
    allowed_scopes: String,
    signing_alg: String,
    access_token_ttl: String,
    id_token_ttl: String,
    refresh_token_ttl: String,
    backchannel_logout_uri: String,
    backchannel_logout_session_required: bool,
    frontchannel_logout_uri: String,
    logo_url: String,
    allow_device_code: bool,
    require_role: bool,
    exchange_token_ttl: String,
    exchange_sources: Vec<String>,
}

fn opt_num(v: Option<i64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

impl ClientForm {
    fn of(i: &ClientInput) -> Self {
        Self {
            name: i.name.clone(),
            redirect_uris: i.redirect_uris.join("\n"),
            post_logout_redirect_uris: i.post_logout_redirect_uris.join("\n"),
            public: i.public,
            auth_method: i.auth_method.clone().unwrap_or_default(),
            require_pkce: i.require_pkce,
            skip_consent: i.skip_consent,
            allow_refresh: i.allow_refresh,
            allow_client_credentials: i.allow_client_credentials,
            allowed_groups: i.allowed_groups.clone(),
            allowed_scopes: i.allowed_scopes.clone().unwrap_or_default(),
            signing_alg: i.signing_alg.clone(),
            access_token_ttl: opt_num(i.access_token_ttl),
            id_token_ttl: opt_num(i.id_token_ttl),
            refresh_token_ttl: opt_num(i.refresh_token_ttl),
            backchannel_logout_uri: i.backchannel_logout_uri.clone().unwrap_or_default(),
            backchannel_logout_session_required: i.backchannel_logout_session_required,
            frontchannel_logout_uri: i.frontchannel_logout_uri.clone().unwrap_or_default(),
            logo_url: i.logo_url.clone().unwrap_or_default(),
            allow_device_code: i.allow_device_code,
            require_role: i.require_role,
            exchange_token_ttl: opt_num(i.exchange_token_ttl),
            exchange_sources: i.exchange_sources.clone(),
        }
    }

    fn submitted(f: &Fields) -> Self {
        Self {
            name: f.get("name"),
            redirect_uris: f.raw("redirect_uris"),
            post_logout_redirect_uris: f.raw("post_logout_redirect_uris"),
            public: f.get("type") == "public",
            auth_method: f.get("auth_method"),
            require_pkce: f.on("require_pkce"),
            skip_consent: f.on("skip_consent"),
            allow_refresh: f.on("allow_refresh"),
            allow_client_credentials: f.on("allow_client_credentials"),
            allowed_groups: f.all("allowed_group"),
            allowed_scopes: f.get("allowed_scopes"),
            signing_alg: f.get("signing_alg"),
            access_token_ttl: f.get("access_token_ttl"),
            id_token_ttl: f.get("id_token_ttl"),
            refresh_token_ttl: f.get("refresh_token_ttl"),
            backchannel_logout_uri: f.get("backchannel_logout_uri"),
            backchannel_logout_session_required: f.on("backchannel_logout_session_required"),
            frontchannel_logout_uri: f.get("frontchannel_logout_uri"),
            logo_url: f.get("logo_url"),
            allow_device_code: f.on("allow_device_code"),
            require_role: f.on("require_role"),
            exchange_token_ttl: f.get("exchange_token_ttl"),
            exchange_sources: f.all("exchange_source"),
        }
    }
}

fn ttl(f: &Fields, name: &'static str) -> Result<Option<i64>, FieldError> {
    let v = f.get(name);
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<i64>().map(Some).map_err(|_| FieldError {
        field: name,
        message: "Enter a whole number of seconds, or leave it empty for the default.".into(),
    })
}

/// The submitted form as an input (the settings are validated by `clients::validate`).
fn input_from(f: &Fields) -> Result<ClientInput, FieldError> {
    let public = f.get("type") == "public";
    Ok(ClientInput {
        name: f.get("name"),
        redirect_uris: f.lines("redirect_uris"),
        post_logout_redirect_uris: f.lines("post_logout_redirect_uris"),
        public,
        auth_method: f.opt("auth_method"),
        // A public client always uses PKCE; the box is not shown as changeable then.
        require_pkce: public || f.on("require_pkce"),
        skip_consent: f.on("skip_consent"),
        allow_refresh: f.on("allow_refresh"),
        allow_client_credentials: f.on("allow_client_credentials"),
        allowed_groups: f.all("allowed_group"),
        allowed_scopes: f
            .opt("allowed_scopes")
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")),
        signing_alg: Some(f.get("signing_alg"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "RS256".into()),
        access_token_ttl: ttl(f, "access_token_ttl")?,
        id_token_ttl: ttl(f, "id_token_ttl")?,
        refresh_token_ttl: ttl(f, "refresh_token_ttl")?,
        backchannel_logout_uri: f.opt("backchannel_logout_uri"),
        backchannel_logout_session_required: f.on("backchannel_logout_session_required"),
        frontchannel_logout_uri: f.opt("frontchannel_logout_uri"),
        logo_url: f.opt("logo_url"),
        allow_device_code: f.on("allow_device_code"),
        require_role: f.on("require_role"),
        exchange_token_ttl: ttl(f, "exchange_token_ttl")?,
        exchange_sources: f.all("exchange_source"),
    })
}

#[derive(Template)]
#[template(path = "admin/apps/form_page.html")]
struct FormPage {
    page: Page,
    admin: Chrome,
    heading: String,
    action: String,
    submit: &'static str,
    cancel: String,
    form: ClientForm,
    groups: Vec<GroupChoice>,
    sources: Vec<SourceChoice>,
    device_url: String,
    scopes: String,
    access_default: u64,
    id_default: u64,
    refresh_default: u64,
    problem: Problem,
}

async fn form_page(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    editing: Option<(&str, &str)>,
    form: ClientForm,
    problem: Problem,
) -> Result<HttpResponse, PageError> {
    let (groups, mapping, apps) = state
        .db
        .read(|c| {
            Ok((
                store::groups::list(c)?,
                store::users::claim_scopes(c)?,
                store::clients::list(c)?,
            ))
        })
        .await?;
    let this = editing.map(|(id, _)| id);
    let sources = apps
        .into_iter()
        .filter(|a| !a.public && Some(a.id.as_str()) != this)
        .map(|a| SourceChoice {
            checked: form.exchange_sources.contains(&a.id),
            id: a.id,
            name: a.name,
        })
        .collect();
    let mut scopes: Vec<String> = KNOWN_SCOPES.iter().map(|s| s.to_string()).collect();
    for (_, s) in mapping {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    let (heading, action, submit, cancel) = match editing {
        Some((id, name)) => (
            format!("Settings of {name}"),
            format!("/admin/apps/{id}/edit"),
            "Save changes",
            format!("/admin/apps/{id}"),
        ),
        None => (
            "Add an application".to_string(),
            "/admin/apps".to_string(),
            "Add application",
            "/admin/apps".to_string(),
        ),
    };
    let status = if problem.0.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let c = &state.config;
    Ok(ui::render(
        status,
        &FormPage {
            page: me.page(state, req, &heading),
            admin: Chrome::new(NAV),
            heading,
            action,
            submit,
            cancel,
            groups: groups
                .into_iter()
                .map(|g| GroupChoice {
                    checked: form
                        .allowed_groups
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(&g.name)),
                    name: g.name,
                })
                .collect(),
            sources,
            device_url: state.url("/device"),
            form,
            scopes: scopes.join(" "),
            access_default: c.access_token_ttl.as_secs(),
            id_default: c.id_token_ttl.as_secs(),
            refresh_default: c.refresh_token_ttl.as_secs(),
            problem,
        },
    ))
}

/// GET /admin/apps/new
pub async fn new(
    state: State,
    req: HttpRequest,
    me: AdminSession,
) -> Result<HttpResponse, PageError> {
    let form = ClientForm::of(&ClientInput::default());
    form_page(&state, &req, &me, None, form, Problem::none()).await
}

#[derive(Template)]
#[template(path = "admin/apps/secret.html")]
struct SecretPage {
    page: Page,
    admin: Chrome,
    id: String,
    name: String,
    heading: String,
    secret: Option<String>,
    warnings: Vec<String>,
}

fn secret_page(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    c: &Client,
    secret: Option<String>,
    heading: String,
) -> HttpResponse {
    ui::ok(&SecretPage {
        page: me.page(state, req, &heading),
        admin: Chrome::new(NAV),
        id: c.id.clone(),
        name: c.name.clone(),
        heading,
        secret,
        warnings: clients::warnings(c),
    })
}

/// POST /admin/apps — on success shows the client id and the secret, once; invalid settings
/// come back with the field marked and nothing saved.
pub async fn create(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let f = Fields(form.0);
    let input = match input_from(&f) {
        Ok(i) => i,
        Err(p) => {
            return form_page(
                &state,
                &req,
                &me,
                None,
                ClientForm::submitted(&f),
                Problem(Some(p)),
            )
            .await;
        }
    };
    let (actor, now) = (me.actor(), state.now());
    let r = state
        .db
        .try_write(move |c| clients::create_as(c, &actor, input, now))
        .await;
    match r {
        Ok((c, secret)) => {
            if secret.is_none() && clients::warnings(&c).is_empty() {
                return Ok(ui::see_other(&format!("/admin/apps/{}?done=created", c.id)));
            }
            let heading = format!("{} is added", c.name);
            Ok(secret_page(&state, &req, &me, &c, secret, heading))
        }
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            form_page(
                &state,
                &req,
                &me,
                None,
                ClientForm::submitted(&f),
                Problem(Some(p)),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---- one application -----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/apps/show.html")]
struct ShowPage {
    page: Page,
    admin: Chrome,
    c: Client,
    warnings: Vec<String>,
    issuer: String,
    discovery: String,
    created: String,
    /// The first redirect URI (for the examples), or a placeholder.
    callback: String,
    /// The origin of the first redirect URI, for Grafana's sign-out example.
    app_origin: String,
    sessions: i64,
    /// The app's role names, in order.
    roles: Vec<String>,
    grafana: guides::GrafanaRoles,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    done: Option<String>,
}

async fn load(state: &AppState, id: String) -> Result<Client, PageError> {
    state
        .db
        .read(move |c| store::clients::by_id(c, &id))
        .await?
        .ok_or(PageError::NotFound)
}

/// GET /admin/apps/{id} — the settings, and how to enter them in Immich, Grafana or any app.
pub async fn show(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    q: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let c = load(&state, id.clone()).await?;
    let (sessions, roles) = state
        .db
        .read(move |conn| {
            let roles = store::roles::list(conn, &id)?;
            Ok((store::clients::session_count(conn, &id)?, roles))
        })
        .await?;
    let roles: Vec<String> = roles.into_iter().map(|r| r.name).collect();
    let grafana = guides::grafana(&roles, c.require_role);
    let issuer = state.config.issuer().to_string();
    let callback = c
        .redirect_uris
        .first()
        .cloned()
        .unwrap_or_else(|| "https://app.example.com/callback".into());
    let app_origin = url::Url::parse(&callback)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|| "https://app.example.com".into());
    Ok(ui::ok(&ShowPage {
        page: me.page(&state, &req, &c.name),
        admin: Chrome::new(NAV).with_notice(notice(q.done.as_deref())),
        warnings: clients::warnings(&c),
        discovery: format!("{issuer}/.well-known/openid-configuration"),
        issuer,
        created: when(c.created_at),
        callback,
        app_origin,
        sessions,
        roles,
        grafana,
        c,
    }))
}

/// GET /admin/apps/{id}/edit
pub async fn edit(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let c = load(&state, path.into_inner()).await?;
    let form = ClientForm::of(&clients::input_of(&c));
    form_page(
        &state,
        &req,
        &me,
        Some((&c.id, &c.name)),
        form,
        Problem::none(),
    )
    .await
}

/// POST /admin/apps/{id}/edit — every setting at once; nothing is saved if one is wrong.
pub async fn save(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let f = Fields(form.0);
    let cur = load(&state, id.clone()).await?;
    let input = match input_from(&f) {
        Ok(i) => i,
        Err(p) => {
            let form = ClientForm::submitted(&f);
            return form_page(
                &state,
                &req,
                &me,
                Some((&id, &cur.name)),
                form,
                Problem(Some(p)),
            )
            .await;
        }
    };
    let (actor, now, id2) = (me.actor(), state.now(), id.clone());
    let r = state
        .db
        .try_write(move |c| clients::update(c, &actor, &id2, input, now))
        .await;
    match r {
        Ok((c, Some(secret))) => {
            let heading = format!("{} now has a secret", c.name);
            Ok(secret_page(&state, &req, &me, &c, Some(secret), heading))
        }
        Ok((c, None)) => Ok(ui::see_other(&format!("/admin/apps/{}?done=saved", c.id))),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            let form = ClientForm::submitted(&f);
            form_page(
                &state,
                &req,
                &me,
                Some((&id, &cur.name)),
                form,
                Problem(Some(p)),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/apps/confirm.html")]
struct ConfirmPage {
    page: Page,
    admin: Chrome,
    id: String,
    name: String,
    /// "secret" or "delete".
    what: &'static str,
    problem: Problem,
}

async fn confirm_page(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    id: String,
    what: &'static str,
    problem: Problem,
) -> Result<HttpResponse, PageError> {
    let c = load(state, id).await?;
    let title = if what == "delete" {
        format!("Delete {}?", c.name)
    } else {
        format!("New secret for {}?", c.name)
    };
    let status = if problem.0.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(ui::render(
        status,
        &ConfirmPage {
            page: me.page(state, req, &title),
            admin: Chrome::new(NAV),
            id: c.id,
            name: c.name,
            what,
            problem,
        },
    ))
}

/// GET /admin/apps/{id}/secret — asks first: the current secret stops working.
pub async fn confirm_secret(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    confirm_page(
        &state,
        &req,
        &me,
        path.into_inner(),
        "secret",
        Problem::none(),
    )
    .await
}

/// POST /admin/apps/{id}/secret — shows the new secret, once.
pub async fn regenerate_secret(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    if !Fields(form.0).on("confirm") {
        return confirm_page(&state, &req, &me, id, "secret", Problem::unconfirmed("")).await;
    }
    let (actor, now, id2) = (me.actor(), state.now(), id.clone());
    let r = state
        .db
        .try_write(move |c| {
            let secret = clients::regenerate_secret(c, &actor, &id2, now)?;
            let client = store::clients::by_id(c, &id2)?.ok_or(OpError::NotFound)?;
            Ok::<_, OpError>((client, secret))
        })
        .await;
    match r {
        Ok((c, secret)) => {
            let heading = format!("New secret for {}", c.name);
            Ok(secret_page(&state, &req, &me, &c, Some(secret), heading))
        }
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => {
            confirm_page(&state, &req, &me, id, "secret", Problem(Some(p))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// GET /admin/apps/{id}/delete — asks first.
pub async fn confirm_delete(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    confirm_page(
        &state,
        &req,
        &me,
        path.into_inner(),
        "delete",
        Problem::none(),
    )
    .await
}

/// POST /admin/apps/{id}/delete
pub async fn delete(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    if !Fields(form.0).on("confirm") {
        return confirm_page(&state, &req, &me, id, "delete", Problem::unconfirmed("")).await;
    }
    let (actor, now) = (me.actor(), state.now());
    state
        .db
        .try_write(move |c| clients::delete(c, &actor, &id, now))
        .await?;
    Ok(ui::see_other("/admin/apps?done=deleted"))
}

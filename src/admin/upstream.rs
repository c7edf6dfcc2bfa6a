//! /admin/upstream — sign-in providers: the "Continue with Google / GitHub / …" buttons of the
//! sign-in page. List, add from a preset, change, turn on and off, delete after confirming,
//! and the people linked through each. Thin views on `upstream::providers`, which the CLI and
//! the admin API call too. The client secret is write-only: no page shows it, a refused form
//! does not send it back, and an empty secret field keeps the stored one.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminSession;
use super::view::{Chrome, Fields, PER_PAGE, Pager, Problem, ago, when};
use crate::crypto::secret::Secret;
use crate::ops::FieldError;
use crate::ops::OpError;
use crate::ops::upstream_providers::{self, Preset, ProviderInput, ProviderPatch};
use crate::state::AppState;
use crate::store;
use crate::store::upstream::{Kind, Policy, Provider};
use crate::web::State;
use crate::web::ui::{self, CsrfForm, Page, PageError};

const NAV: &str = "upstream";

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => {
            "The provider is added. Register the redirect URI below at the provider, if you have not yet."
        }
        "saved" => "Your changes are saved.",
        "enabled" => "The provider is on: its button shows on the sign-in page.",
        "disabled" => {
            "The provider is off: its button is hidden and sign-ins through it are refused."
        }
        "deleted" => "The provider is deleted, and the sign-ins linked through it are removed.",
        _ => return None,
    })
}

fn kind_words(k: Kind) -> &'static str {
    match k {
        Kind::Oidc => "OpenID Connect",
        Kind::Github => "GitHub",
    }
}

/// The account policy in a few words (the list; the form explains each in full).
fn policy_words(p: Policy) -> &'static str {
    match p {
        Policy::ExistingOnly => "existing accounts only",
        Policy::LinkVerifiedEmail => "match by email, else new account",
        Policy::Create => "new account for everyone",
    }
}

/// What the issuer column shows (GitHub without a base URL is github.com).
fn issuer_shown(p: &Provider) -> String {
    p.issuer
        .clone()
        .unwrap_or_else(|| upstream_providers::GITHUB_BASE.to_string())
}

// ---- list ----------------------------------------------------------------------------------

struct Row {
    slug: String,
    name: String,
    icon: Option<String>,
    kind: &'static str,
    issuer: String,
    enabled: bool,
    policy: &'static str,
    linked: i64,
}

#[derive(Template)]
#[template(path = "admin/upstream/list.html")]
struct ListPage {
    page: Page,
    admin: Chrome,
    rows: Vec<Row>,
    redirect_uri: String,
}

#[derive(Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

/// GET /admin/upstream — every provider, by name, with how many people are linked through it.
pub async fn list(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let (list, counts) = state
        .db
        .read(|c| {
            Ok((
                store::upstream::list(c, false)?,
                store::upstream::link_counts(c)?,
            ))
        })
        .await?;
    let rows = list
        .into_iter()
        .map(|p| Row {
            linked: counts.get(&p.id).copied().unwrap_or(0),
            issuer: issuer_shown(&p),
            kind: kind_words(p.kind),
            enabled: p.enabled,
            policy: policy_words(p.policy),
            slug: p.slug,
            name: p.display_name,
            icon: p.icon,
        })
        .collect();
    Ok(ui::ok(&ListPage {
        page: me.page(&state, &req, "Sign-in providers"),
        admin: Chrome::new(NAV).with_notice(notice(q.done.as_deref())),
        rows,
        redirect_uri: upstream_providers::callback_url(&state.config.public_url),
    }))
}

// ---- the settings form (add and edit) ------------------------------------------------------

/// The add page's presets: a well-known provider fills what need not be typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Google,
    Github,
    Oidc,
}

impl Choice {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "google" => Some(Choice::Google),
            "github" => Some(Choice::Github),
            "oidc" => Some(Choice::Oidc),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Choice::Google => "google",
            Choice::Github => "github",
            Choice::Oidc => "oidc",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Choice::Github => Kind::Github,
            Choice::Google | Choice::Oidc => Kind::Oidc,
        }
    }

    fn preset(self) -> Option<Preset> {
        match self {
            Choice::Google => Some(Preset::Google),
            Choice::Github => Some(Preset::Github),
            Choice::Oidc => None,
        }
    }
}

struct GroupChoice {
    name: String,
    checked: bool,
}

/// Every setting as the form shows it (never the secret).
struct ProviderForm {
    slug: String,
    name: String,
    icon: String,
    issuer: String,
    client_id: String,
    scopes: String,
    enabled: bool,
    policy: String,
    default_groups: Vec<String>,
    /// `upstream=local`, one per line.
    group_mapping: String,
    remove_secret: bool,
}

impl ProviderForm {
    /// A new provider from a preset: turned on, existing accounts only.
    fn blank(choice: Choice) -> Self {
        let (slug, name, issuer) = match choice {
            Choice::Google => ("google", "Google", upstream_providers::GOOGLE_ISSUER),
            Choice::Github => ("github", "GitHub", ""),
            Choice::Oidc => ("", "", ""),
        };
        Self {
            slug: slug.into(),
            name: name.into(),
            icon: String::new(),
            issuer: issuer.into(),
            client_id: String::new(),
            scopes: String::new(),
            enabled: true,
            policy: Policy::ExistingOnly.as_str().into(),
            default_groups: Vec::new(),
            group_mapping: String::new(),
            remove_secret: false,
        }
    }

    fn of(p: &Provider) -> Self {
        Self {
            slug: p.slug.clone(),
            name: p.display_name.clone(),
            icon: p.icon.clone().unwrap_or_default(),
            issuer: p.issuer.clone().unwrap_or_default(),
            client_id: p.client_id.clone(),
            scopes: p.scopes.clone(),
            enabled: p.enabled,
            policy: p.policy.as_str().into(),
            default_groups: p.default_groups.clone(),
            group_mapping: p
                .group_mapping
                .iter()
                .map(|(upstream, local)| format!("{upstream}={local}"))
                .collect::<Vec<_>>()
                .join("\n"),
            remove_secret: false,
        }
    }

    fn submitted(f: &Fields) -> Self {
        Self {
            slug: f.get("slug"),
            name: f.get("name"),
            icon: f.get("icon"),
            issuer: f.get("issuer"),
            client_id: f.get("client_id"),
            scopes: f.get("scopes"),
            enabled: f.on("enabled"),
            policy: f.get("policy"),
            default_groups: f.all("default_group"),
            group_mapping: f.raw("group_mapping"),
            remove_secret: f.on("remove_secret"),
        }
    }
}

/// `upstream=local` lines. Split at the last `=`: local group names have none, upstream ones
/// may (LDAP-style `cn=staff,ou=groups=editors`).
fn parse_mapping(text: &str) -> Result<BTreeMap<String, String>, FieldError> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.rsplit_once('=') {
            Some((u, l)) if !u.trim().is_empty() && !l.trim().is_empty() => {
                out.insert(u.trim().to_string(), l.trim().to_string());
            }
            _ => {
                return Err(FieldError {
                    field: "group_mapping",
                    message: format!(
                        "Line {}: write one mapping per line as upstream-group=local-group.",
                        n + 1
                    ),
                });
            }
        }
    }
    Ok(out)
}

fn parse_policy(s: &str) -> Result<Policy, FieldError> {
    Policy::parse(s).ok_or_else(|| FieldError {
        field: "policy",
        message: "Choose what happens when someone new signs in.".into(),
    })
}

/// The settings both forms share, parsed (`upstream_providers::validate` checks them).
struct Settings {
    name: String,
    icon: Option<String>,
    issuer: Option<String>,
    client_id: String,
    secret: Option<Secret<String>>,
    scopes: Option<String>,
    policy: Policy,
    default_groups: Vec<String>,
    group_mapping: BTreeMap<String, String>,
}

fn settings_from(f: &Fields) -> Result<Settings, FieldError> {
    Ok(Settings {
        name: f.get("name"),
        icon: f.opt("icon"),
        issuer: f.opt("issuer"),
        client_id: f.get("client_id"),
        // Pasted secrets often carry a stray space or newline; real ones never do.
        secret: f.opt("client_secret").map(Secret::new),
        scopes: f.opt("scopes"),
        policy: parse_policy(&f.get("policy"))?,
        default_groups: f.all("default_group"),
        group_mapping: parse_mapping(&f.raw("group_mapping"))?,
    })
}

/// Existing groups, and the provider's own names that no group has yet (created at the first
/// sign-in), ticked as the form says.
async fn group_choices(
    state: &AppState,
    checked: &[String],
) -> Result<Vec<GroupChoice>, PageError> {
    let all = state.db.read(store::groups::list).await?;
    let mut out: Vec<GroupChoice> = all
        .into_iter()
        .map(|g| GroupChoice {
            checked: checked.iter().any(|c| c.eq_ignore_ascii_case(&g.name)),
            name: g.name,
        })
        .collect();
    for c in checked {
        if !out.iter().any(|g| g.name.eq_ignore_ascii_case(c)) {
            out.push(GroupChoice {
                name: c.clone(),
                checked: true,
            });
        }
    }
    Ok(out)
}

fn status_of(problem: &Problem) -> StatusCode {
    if problem.0.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

// ---- add -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/upstream/new.html")]
struct NewPage {
    page: Page,
    admin: Chrome,
    /// "google", "github", "oidc", or "" for the preset picker.
    preset: &'static str,
    github: bool,
    editing: bool,
    has_secret: bool,
    /// A secret was typed into a refused form (it is not sent back).
    secret_typed: bool,
    form: ProviderForm,
    groups: Vec<GroupChoice>,
    default_scopes: &'static str,
    redirect_uri: String,
    problem: Problem,
}

#[derive(Deserialize)]
pub struct NewQuery {
    preset: Option<String>,
}

async fn new_page(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    choice: Option<Choice>,
    form: ProviderForm,
    secret_typed: bool,
    problem: Problem,
) -> Result<HttpResponse, PageError> {
    let kind = choice.map(Choice::kind).unwrap_or(Kind::Oidc);
    let groups = group_choices(state, &form.default_groups).await?;
    let title = match choice {
        Some(Choice::Google) => "Add Google sign-in",
        Some(Choice::Github) => "Add GitHub sign-in",
        Some(Choice::Oidc) => "Add an OpenID Connect provider",
        None => "Add a sign-in provider",
    };
    Ok(ui::render(
        status_of(&problem),
        &NewPage {
            page: me.page(state, req, title),
            admin: Chrome::new(NAV),
            preset: choice.map(Choice::as_str).unwrap_or(""),
            github: kind == Kind::Github,
            editing: false,
            has_secret: false,
            secret_typed,
            form,
            groups,
            default_scopes: upstream_providers::default_scopes(kind),
            redirect_uri: upstream_providers::callback_url(&state.config.public_url),
            problem,
        },
    ))
}

/// GET /admin/upstream/new[?preset=google|github|oidc] — first the choice of provider, then
/// its form with what the preset knows filled in.
pub async fn new(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    q: web::Query<NewQuery>,
) -> Result<HttpResponse, PageError> {
    let choice = q.preset.as_deref().and_then(Choice::parse);
    let form = ProviderForm::blank(choice.unwrap_or(Choice::Oidc));
    new_page(&state, &req, &me, choice, form, false, Problem::none()).await
}

/// POST /admin/upstream — adds the provider and opens its page; refused settings come back
/// with the field marked and nothing saved.
pub async fn create(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let f = Fields(form.0);
    let choice = Choice::parse(&f.get("preset")).unwrap_or(Choice::Oidc);
    let secret_typed = f.opt("client_secret").is_some();
    let refused = |p: FieldError| {
        let form = ProviderForm::submitted(&f);
        new_page(
            &state,
            &req,
            &me,
            Some(choice),
            form,
            secret_typed,
            Problem(Some(p)),
        )
    };
    let s = match settings_from(&f) {
        Ok(s) => s,
        Err(p) => return refused(p).await,
    };
    let mut input = ProviderInput::new(&f.get("slug"), choice.kind(), &s.name, &s.client_id);
    input.issuer = s.issuer;
    if let Some(preset) = choice.preset() {
        preset.apply(&mut input);
    }
    input.icon = s.icon;
    input.client_secret = s.secret;
    input.scopes = s.scopes;
    input.enabled = f.on("enabled");
    input.policy = s.policy;
    input.default_groups = s.default_groups;
    input.group_mapping = s.group_mapping;
    let (key, actor, now) = (state.master_key.clone(), me.actor().audit_id(), state.now());
    let r = state
        .db
        .try_write(move |c| upstream_providers::create(c, &key, input, Some(&actor), now))
        .await;
    match r {
        Ok(p) => Ok(ui::see_other(&format!(
            "/admin/upstream/{}?done=created",
            p.slug
        ))),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => refused(p).await,
        Err(e) => Err(e.into()),
    }
}

// ---- one provider --------------------------------------------------------------------------

struct LinkedRow {
    user_id: String,
    name: String,
    username: String,
    disabled: bool,
    subject: String,
    email: String,
    linked: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "admin/upstream/show.html")]
struct ShowPage {
    page: Page,
    admin: Chrome,
    /// The stored slug (the page's address), whatever the form says.
    slug: String,
    name: String,
    icon: Option<String>,
    kind: &'static str,
    github: bool,
    editing: bool,
    enabled: bool,
    has_secret: bool,
    secret_typed: bool,
    created: String,
    updated: String,
    form: ProviderForm,
    groups: Vec<GroupChoice>,
    default_scopes: &'static str,
    redirect_uri: String,
    linked: Vec<LinkedRow>,
    pager: Pager,
    problem: Problem,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    page: Option<u32>,
    done: Option<String>,
}

/// How to show the provider page: after a GET, or again after a refused form.
#[derive(Default)]
struct View<'a> {
    page_no: Option<u32>,
    submitted: Option<ProviderForm>,
    secret_typed: bool,
    problem: Problem,
    notice: Option<&'a str>,
}

async fn render_show(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    slug: String,
    v: View<'_>,
) -> Result<HttpResponse, PageError> {
    let page_no = v.page_no;
    let found = state
        .db
        .read(move |c| {
            let Some(p) = store::upstream::by_slug(c, &slug)? else {
                return Ok(None);
            };
            let total = store::upstream::count_links_for_provider(c, &p.id)?;
            let pager = Pager::new(
                &format!("/admin/upstream/{}", p.slug),
                page_no,
                total,
                String::new(),
            );
            let linked = store::upstream::linked_users(c, &p.id, PER_PAGE, pager.offset())?;
            Ok(Some((p, pager, linked)))
        })
        .await?;
    let Some((p, pager, linked)) = found else {
        return Err(PageError::NotFound);
    };
    let form = v.submitted.unwrap_or_else(|| ProviderForm::of(&p));
    let groups = group_choices(state, &form.default_groups).await?;
    let now = state.now();
    Ok(ui::render(
        status_of(&v.problem),
        &ShowPage {
            page: me.page(state, req, &p.display_name),
            admin: Chrome::new(NAV).with_notice(v.notice),
            kind: kind_words(p.kind),
            github: p.kind == Kind::Github,
            editing: true,
            enabled: p.enabled,
            has_secret: p.client_secret_sealed.is_some(),
            secret_typed: v.secret_typed,
            created: when(p.created_at),
            updated: when(p.updated_at),
            form,
            groups,
            default_scopes: upstream_providers::default_scopes(p.kind),
            redirect_uri: upstream_providers::callback_url(&state.config.public_url),
            linked: linked
                .into_iter()
                .map(|u| LinkedRow {
                    name: u
                        .display_name
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| u.username.clone()),
                    username: u.username,
                    disabled: u.disabled,
                    email: u.link.email.unwrap_or_default(),
                    linked: when(u.link.linked_at),
                    last_used: u
                        .link
                        .last_used_at
                        .map(|t| ago(now, t))
                        .unwrap_or_else(|| "never".into()),
                    subject: u.link.subject,
                    user_id: u.link.user_id,
                })
                .collect(),
            pager,
            problem: v.problem,
            slug: p.slug,
            name: p.display_name,
            icon: p.icon,
        },
    ))
}

/// GET /admin/upstream/{slug} — its state, the redirect URI, the settings, who is linked.
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

/// POST /admin/upstream/{slug} — every setting at once; an empty secret keeps the stored one.
pub async fn save(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let slug = path.into_inner();
    let f = Fields(form.0);
    let secret_typed = f.opt("client_secret").is_some();
    let refused = |p: FieldError| {
        let v = View {
            submitted: Some(ProviderForm::submitted(&f)),
            secret_typed,
            problem: Problem(Some(p)),
            ..Default::default()
        };
        render_show(&state, &req, &me, slug.clone(), v)
    };
    let s = match settings_from(&f) {
        Ok(s) => s,
        Err(p) => return refused(p).await,
    };
    let client_secret = if f.on("remove_secret") {
        // An empty secret removes the stored one (`upstream_providers::edit`).
        Some(Secret::new(String::new()))
    } else {
        s.secret
    };
    let patch = ProviderPatch {
        slug: Some(f.get("slug")),
        display_name: Some(s.name),
        icon: Some(s.icon),
        issuer: Some(s.issuer.unwrap_or_default()),
        client_id: Some(s.client_id),
        client_secret,
        scopes: Some(s.scopes.unwrap_or_default()),
        enabled: None,
        policy: Some(s.policy),
        default_groups: Some(s.default_groups),
        group_mapping: Some(s.group_mapping),
    };
    let (key, actor, now, s2) = (
        state.master_key.clone(),
        me.actor().audit_id(),
        state.now(),
        slug.clone(),
    );
    let r = state
        .db
        .try_write(move |c| upstream_providers::edit(c, &key, &s2, patch, Some(&actor), now))
        .await;
    match r {
        Ok(Some(p)) => Ok(ui::see_other(&format!(
            "/admin/upstream/{}?done=saved",
            p.slug
        ))),
        Ok(None) => Err(PageError::NotFound),
        Err(OpError::Invalid(p) | OpError::Conflict(p)) => refused(p).await,
        Err(e) => Err(e.into()),
    }
}

async fn set_enabled(
    state: State,
    me: AdminSession,
    slug: String,
    enabled: bool,
) -> Result<HttpResponse, PageError> {
    let (actor, now, s2) = (me.actor().audit_id(), state.now(), slug.clone());
    state
        .db
        .write(move |c| upstream_providers::set_enabled(c, &s2, enabled, Some(&actor), now))
        .await?
        .ok_or(PageError::NotFound)?;
    let done = if enabled { "enabled" } else { "disabled" };
    Ok(ui::see_other(&format!(
        "/admin/upstream/{slug}?done={done}"
    )))
}

/// POST /admin/upstream/{slug}/enable — the button shows on the sign-in page again.
pub async fn enable(
    state: State,
    me: AdminSession,
    path: web::Path<String>,
    _form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    set_enabled(state, me, path.into_inner(), true).await
}

/// POST /admin/upstream/{slug}/disable — hides the button and refuses sign-ins through it;
/// the links stay, for when it is turned on again.
pub async fn disable(
    state: State,
    me: AdminSession,
    path: web::Path<String>,
    _form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    set_enabled(state, me, path.into_inner(), false).await
}

// ---- delete --------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/upstream/delete.html")]
struct DeletePage {
    page: Page,
    admin: Chrome,
    slug: String,
    name: String,
    linked: i64,
    /// Linked people who have no other way to sign in.
    stranded: i64,
    problem: Problem,
}

async fn render_delete(
    state: &AppState,
    req: &HttpRequest,
    me: &AdminSession,
    slug: String,
    problem: Problem,
) -> Result<HttpResponse, PageError> {
    let found = state
        .db
        .read(move |c| {
            let Some(p) = store::upstream::by_slug(c, &slug)? else {
                return Ok(None);
            };
            let linked = store::upstream::count_links_for_provider(c, &p.id)?;
            let stranded = store::upstream::count_only_linked_through(c, &p.id)?;
            Ok(Some((p, linked, stranded)))
        })
        .await?;
    let Some((p, linked, stranded)) = found else {
        return Err(PageError::NotFound);
    };
    Ok(ui::render(
        status_of(&problem),
        &DeletePage {
            page: me.page(state, req, &format!("Delete {}?", p.display_name)),
            admin: Chrome::new(NAV),
            slug: p.slug,
            name: p.display_name,
            linked,
            stranded,
            problem,
        },
    ))
}

/// GET /admin/upstream/{slug}/delete — asks first, saying who is unlinked.
pub async fn confirm_delete(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    render_delete(&state, &req, &me, path.into_inner(), Problem::none()).await
}

/// POST /admin/upstream/{slug}/delete — needs the confirmation box ticked.
pub async fn delete(
    state: State,
    req: HttpRequest,
    me: AdminSession,
    path: web::Path<String>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let slug = path.into_inner();
    if !Fields(form.0).on("confirm") {
        let p = Problem::unconfirmed("delete this provider");
        return render_delete(&state, &req, &me, slug, p).await;
    }
    let (actor, now) = (me.actor().audit_id(), state.now());
    state
        .db
        .write(move |c| upstream_providers::delete(c, &slug, Some(&actor), now))
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(ui::see_other("/admin/upstream?done=deleted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_mapping_is_one_pair_per_line_split_at_the_last_equals() {
        let m = parse_mapping("staff=editors\n\n cn=admins,ou=groups = admins \n").unwrap();
        assert_eq!(m.get("staff").map(String::as_str), Some("editors"));
        assert_eq!(
            m.get("cn=admins,ou=groups").map(String::as_str),
            Some("admins")
        );
        let e = parse_mapping("staff=editors\njust-a-name").unwrap_err();
        assert_eq!(e.field, "group_mapping");
        assert!(e.message.starts_with("Line 2"), "{}", e.message);
        assert!(parse_mapping("=editors").is_err());
        assert!(parse_mapping("staff=").is_err());
    }
}

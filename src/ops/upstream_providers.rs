//! Upstream provider management shared by the CLI, the console and the admin API: validate
//! once, write once. The client secret is sealed with the master key (context
//! `upstream_secret:<provider id>`) and never shown again.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::crypto::master_key::MasterKey;
use crate::crypto::secret::{Secret, random_id};
use crate::ops::{FieldError, OpError, field};
use crate::store::audit::NewEvent;
use crate::store::upstream::{Kind, Policy, Provider};
use crate::store::{self, StoreError};

/// Google's issuer (the Google preset is plain OpenID Connect by discovery).
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// GitHub's web base; `<base>/login/oauth/authorize` and `<base>/login/oauth/access_token`.
pub const GITHUB_BASE: &str = "https://github.com";
/// GitHub's REST API for github.com; GitHub Enterprise Server serves it at `<base>/api/v3`.
pub const GITHUB_API: &str = "https://api.github.com";

pub const OIDC_SCOPES: &str = "openid email profile";
pub const GITHUB_SCOPES: &str = "read:user user:email";

/// The path every provider sends the browser back to (register `<public_url>` + this upstream).
pub const CALLBACK_PATH: &str = "/login/upstream/callback";

/// The redirect URI to register at the upstream provider.
pub fn callback_url(public_url: &str) -> String {
    format!("{public_url}{CALLBACK_PATH}")
}

/// A new provider as an administrator describes it.
#[derive(Debug, Clone)]
pub struct ProviderInput {
    pub slug: String,
    pub kind: Kind,
    pub display_name: String,
    pub icon: Option<String>,
    /// OIDC: required. GitHub: the web base URL, `https://github.com` when `None`.
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: Option<Secret<String>>,
    /// `None`: the kind's default (`openid email profile`, or `read:user user:email`).
    pub scopes: Option<String>,
    pub enabled: bool,
    pub policy: Policy,
    pub default_groups: Vec<String>,
    pub group_mapping: BTreeMap<String, String>,
}

impl ProviderInput {
    /// An input with the defaults of `kind` (enabled, `existing_only`).
    pub fn new(slug: &str, kind: Kind, display_name: &str, client_id: &str) -> Self {
        Self {
            slug: slug.into(),
            kind,
            display_name: display_name.into(),
            icon: None,
            issuer: None,
            client_id: client_id.into(),
            client_secret: None,
            scopes: None,
            enabled: true,
            policy: Policy::ExistingOnly,
            default_groups: Vec::new(),
            group_mapping: BTreeMap::new(),
        }
    }
}

/// Well-known providers: fills what the administrator need not type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// OpenID Connect with issuer `https://accounts.google.com`.
    Google,
    /// GitHub OAuth app: fixed endpoints, the user and verified-email APIs.
    Github,
}

impl Preset {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "google" => Some(Preset::Google),
            "github" => Some(Preset::Github),
            _ => None,
        }
    }

    /// Applies the preset to the fields left empty.
    pub fn apply(self, input: &mut ProviderInput) {
        match self {
            Preset::Google => {
                input.kind = Kind::Oidc;
                input.issuer.get_or_insert_with(|| GOOGLE_ISSUER.into());
                if input.display_name.trim().is_empty() {
                    input.display_name = "Google".into();
                }
            }
            Preset::Github => {
                input.kind = Kind::Github;
                if input.display_name.trim().is_empty() {
                    input.display_name = "GitHub".into();
                }
            }
        }
    }
}

/// Changes to a provider; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProviderPatch {
    pub slug: Option<String>,
    pub display_name: Option<String>,
    /// `Some(None)` removes the icon.
    pub icon: Option<Option<String>>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret<String>>,
    pub scopes: Option<String>,
    pub enabled: Option<bool>,
    pub policy: Option<Policy>,
    pub default_groups: Option<Vec<String>>,
    pub group_mapping: Option<BTreeMap<String, String>>,
}

/// Lowercase letters, digits and `-`, 1 to 32, starting with a letter or digit; `callback`
/// is the callback path and `new` the console's add page (`/admin/upstream/new`).
pub fn validate_slug(slug: &str) -> Result<(), FieldError> {
    let ok = !slug.is_empty()
        && slug.len() <= 32
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if !ok {
        return Err(field(
            "slug",
            "Use 1 to 32 lowercase letters, digits and -, starting with a letter or digit.",
        ));
    }
    if slug == "callback" || slug == "new" {
        return Err(field(
            "slug",
            format!("{slug} is reserved; choose another slug."),
        ));
    }
    Ok(())
}

/// An issuer or base URL: absolute, without query or fragment; `https` except on loopback
/// (a provider on the same machine, or a test).
pub fn validate_issuer(name: &'static str, issuer: &str) -> Result<(), FieldError> {
    let Ok(u) = url::Url::parse(issuer) else {
        return Err(field(
            name,
            "Enter an absolute URL such as https://id.example.com.",
        ));
    };
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let scheme_ok = u.scheme() == "https" || (u.scheme() == "http" && loopback);
    if !scheme_ok || u.host().is_none() {
        return Err(field(
            name,
            "Use an https:// URL (http:// only for localhost).",
        ));
    }
    if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        return Err(field(
            name,
            "The URL must not have a query, fragment or user name.",
        ));
    }
    if let Err(refused) = crate::outbound::check_url(issuer) {
        return Err(field(name, format!("Not allowed: {refused}.")));
    }
    Ok(())
}

/// The sign-in page may show `https:` and `data:image/` icons and our own paths (CSP
/// `img-src 'self' data: https:`).
pub fn validate_icon(icon: &str) -> Result<(), FieldError> {
    let ok = icon.len() <= 8192
        && (icon.starts_with("https://")
            || icon.starts_with("data:image/")
            || (icon.starts_with('/') && !icon.starts_with("//")))
        && !icon.contains(['"', '<', '>', '\r', '\n']);
    if ok {
        Ok(())
    } else {
        Err(field(
            "icon",
            "Use an https:// image URL, a data:image/ URL or a path on this server.",
        ))
    }
}

fn validate_names(list: &[String], name: &'static str) -> Result<(), FieldError> {
    for g in list {
        if g.trim().is_empty() || g.chars().count() > 64 {
            return Err(field(name, "Group names have 1 to 64 characters."));
        }
    }
    Ok(())
}

/// What a provider of `kind` is asked for when the administrator names no scopes.
pub fn default_scopes(kind: Kind) -> &'static str {
    match kind {
        Kind::Oidc => OIDC_SCOPES,
        Kind::Github => GITHUB_SCOPES,
    }
}

fn normalize_scopes(kind: Kind, scopes: Option<&str>) -> Result<String, FieldError> {
    let given: Vec<&str> = scopes.unwrap_or("").split_whitespace().collect();
    if given.iter().any(|s| {
        s.chars()
            .any(|c| !c.is_ascii_graphic() || c == '"' || c == '\\')
    }) {
        return Err(field("scopes", "Scopes are words separated by spaces."));
    }
    let mut out: Vec<String> = given.iter().map(|s| s.to_string()).collect();
    if out.is_empty() {
        return Ok(default_scopes(kind).to_string());
    }
    // OIDC Core §3.1.2.1: "OpenID Connect requests MUST contain the openid scope value."
    if kind == Kind::Oidc && !out.iter().any(|s| s == "openid") {
        out.insert(0, "openid".into());
    }
    out.dedup();
    Ok(out.join(" "))
}

fn clean_groups(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = list
        .iter()
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .collect();
    out.dedup();
    out
}

/// Checks a provider's settings without touching the database.
pub fn validate(p: &Provider) -> Result<(), FieldError> {
    validate_slug(&p.slug)?;
    let name = p.display_name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(field("name", "Use 1 to 64 characters."));
    }
    match (p.kind, &p.issuer) {
        (Kind::Oidc, None) => {
            return Err(field(
                "issuer",
                "Enter the provider's issuer URL, e.g. https://accounts.google.com.",
            ));
        }
        (_, Some(i)) => validate_issuer("issuer", i)?,
        (Kind::Github, None) => {}
    }
    if p.client_id.trim().is_empty() || p.client_id.len() > 256 {
        return Err(field(
            "client_id",
            "Enter the client id the provider gave you.",
        ));
    }
    if let Some(icon) = &p.icon {
        validate_icon(icon)?;
    }
    validate_names(&p.default_groups, "default_groups")?;
    for (upstream, local) in &p.group_mapping {
        if upstream.trim().is_empty() || upstream.len() > 256 {
            return Err(field("group_mapping", "An upstream group name is empty."));
        }
        validate_names(std::slice::from_ref(local), "group_mapping")?;
    }
    Ok(())
}

fn seal_secret(
    key: &MasterKey,
    provider_id: &str,
    secret: &Secret<String>,
) -> Result<String, OpError> {
    key.seal(
        &format!("upstream_secret:{provider_id}"),
        secret.expose().as_bytes(),
    )
    .map_err(|_| OpError::Sealing)
}

/// How many provider secrets `conn` holds, and how many of them `key` opens.
pub fn sealed_secrets_open(
    conn: &rusqlite::Connection,
    key: &MasterKey,
) -> Result<(usize, usize), StoreError> {
    let sealed: Vec<Provider> = store::upstream::list(conn, false)?
        .into_iter()
        .filter(|p| p.client_secret_sealed.is_some())
        .collect();
    let opened = sealed
        .iter()
        .filter(|p| client_secret(key, p).is_ok())
        .count();
    Ok((sealed.len(), opened))
}

/// The provider's client secret, unsealed.
pub fn client_secret(key: &MasterKey, p: &Provider) -> Result<Option<Secret<String>>, OpError> {
    let Some(sealed) = &p.client_secret_sealed else {
        return Ok(None);
    };
    let bytes = key
        .open(&format!("upstream_secret:{}", p.id), sealed)
        .map_err(|_| OpError::Sealing)?;
    String::from_utf8(bytes)
        .map(|s| Some(Secret::new(s)))
        .map_err(|_| OpError::Sealing)
}

fn audit(
    conn: &rusqlite::Connection,
    kind: &str,
    actor: Option<&str>,
    p: &Provider,
    now: UnixTime,
) -> Result<(), StoreError> {
    store::audit::record(
        conn,
        &NewEvent {
            kind,
            actor_id: actor,
            detail: Some(json!({"provider": p.slug, "provider_id": p.id})),
            ..Default::default()
        },
        now,
    )
}

fn slug_taken(e: StoreError) -> OpError {
    if e.is_unique_violation() {
        OpError::Conflict(field("slug", "Another provider uses this slug."))
    } else {
        e.into()
    }
}

/// Creates a provider inside the caller's transaction.
pub fn create(
    conn: &rusqlite::Connection,
    key: &MasterKey,
    input: ProviderInput,
    actor: Option<&str>,
    now: UnixTime,
) -> Result<Provider, OpError> {
    let id = random_id();
    let issuer = input
        .issuer
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let p = Provider {
        client_secret_sealed: input
            .client_secret
            .as_ref()
            .filter(|s| !s.expose().is_empty())
            .map(|s| seal_secret(key, &id, s))
            .transpose()?,
        id,
        slug: input.slug.trim().to_string(),
        kind: input.kind,
        display_name: input.display_name.trim().to_string(),
        icon: input.icon.filter(|s| !s.trim().is_empty()),
        issuer,
        client_id: input.client_id.trim().to_string(),
        scopes: normalize_scopes(input.kind, input.scopes.as_deref())?,
        enabled: input.enabled,
        policy: input.policy,
        default_groups: clean_groups(&input.default_groups),
        group_mapping: input.group_mapping,
        created_at: now,
        updated_at: now,
    };
    validate(&p)?;
    store::upstream::insert(conn, &p).map_err(slug_taken)?;
    audit(conn, "upstream.provider_created", actor, &p, now)?;
    Ok(p)
}

/// Applies `patch` to the provider `slug`; `None` when there is none.
pub fn edit(
    conn: &rusqlite::Connection,
    key: &MasterKey,
    slug: &str,
    patch: ProviderPatch,
    actor: Option<&str>,
    now: UnixTime,
) -> Result<Option<Provider>, OpError> {
    let Some(mut p) = store::upstream::by_slug(conn, slug)? else {
        return Ok(None);
    };
    if let Some(s) = patch.slug {
        p.slug = s.trim().to_string();
    }
    if let Some(n) = patch.display_name {
        p.display_name = n.trim().to_string();
    }
    if let Some(icon) = patch.icon {
        p.icon = icon.filter(|s| !s.trim().is_empty());
    }
    if let Some(i) = patch.issuer {
        p.issuer = Some(i.trim().to_string()).filter(|s| !s.is_empty());
    }
    if let Some(c) = patch.client_id {
        p.client_id = c.trim().to_string();
    }
    if let Some(s) = patch.client_secret {
        p.client_secret_sealed = if s.expose().is_empty() {
            None
        } else {
            Some(seal_secret(key, &p.id, &s)?)
        };
    }
    if let Some(s) = patch.scopes {
        p.scopes = normalize_scopes(p.kind, Some(&s))?;
    }
    if let Some(e) = patch.enabled {
        p.enabled = e;
    }
    if let Some(pol) = patch.policy {
        p.policy = pol;
    }
    if let Some(g) = patch.default_groups {
        p.default_groups = clean_groups(&g);
    }
    if let Some(m) = patch.group_mapping {
        p.group_mapping = m;
    }
    p.updated_at = now;
    validate(&p)?;
    store::upstream::update(conn, &p).map_err(slug_taken)?;
    audit(conn, "upstream.provider_updated", actor, &p, now)?;
    Ok(Some(p))
}

/// Turns a provider on or off; `None` when there is none.
pub fn set_enabled(
    conn: &rusqlite::Connection,
    slug: &str,
    enabled: bool,
    actor: Option<&str>,
    now: UnixTime,
) -> Result<Option<Provider>, StoreError> {
    let Some(mut p) = store::upstream::by_slug(conn, slug)? else {
        return Ok(None);
    };
    p.enabled = enabled;
    p.updated_at = now;
    store::upstream::update(conn, &p)?;
    let kind = if enabled {
        "upstream.provider_enabled"
    } else {
        "upstream.provider_disabled"
    };
    audit(conn, kind, actor, &p, now)?;
    Ok(Some(p))
}

/// Deletes a provider with its linked identities; returns how many identities were unlinked,
/// `None` when there is no such provider.
pub fn delete(
    conn: &rusqlite::Connection,
    slug: &str,
    actor: Option<&str>,
    now: UnixTime,
) -> Result<Option<i64>, StoreError> {
    let Some(p) = store::upstream::by_slug(conn, slug)? else {
        return Ok(None);
    };
    let links = store::upstream::count_links_for_provider(conn, &p.id)?;
    store::upstream::delete(conn, &p.id)?;
    audit(conn, "upstream.provider_deleted", actor, &p, now)?;
    Ok(Some(links))
}

/// The provider as JSON for the CLI and the admin API (never the secret).
pub fn to_json(p: &Provider, public_url: &str) -> Value {
    json!({
        "id": p.id,
        "slug": p.slug,
        "kind": p.kind.as_str(),
        "name": p.display_name,
        "icon": p.icon,
        "issuer": p.issuer,
        "client_id": p.client_id,
        "has_client_secret": p.client_secret_sealed.is_some(),
        "scopes": p.scopes,
        "enabled": p.enabled,
        "policy": p.policy.as_str(),
        "default_groups": p.default_groups,
        "group_mapping": p.group_mapping,
        "redirect_uri": callback_url(public_url),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

/// GitHub's web base and API base for a provider: github.com's, or a GitHub Enterprise
/// Server's (`<base>` and `<base>/api/v3`), which is also how tests point at a stand-in.
pub fn github_bases(p: &Provider) -> (String, String) {
    match p.issuer.as_deref().map(|s| s.trim_end_matches('/')) {
        None | Some(GITHUB_BASE) => (GITHUB_BASE.to_string(), GITHUB_API.to_string()),
        Some(base) => (base.to_string(), format!("{base}/api/v3")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words() {
        assert!(validate_slug("google").is_ok());
        assert!(validate_slug("my-idp-2").is_ok());
        assert!(validate_slug("Google").is_err());
        assert!(validate_slug("-x").is_err());
        assert!(validate_slug("a b").is_err());
        assert!(validate_slug("").is_err());
        assert!(validate_slug("callback").is_err());
        assert!(validate_slug("new").is_err());
        assert!(validate_slug(&"a".repeat(33)).is_err());
    }

    #[test]
    fn issuers_are_https_except_on_loopback() {
        assert!(validate_issuer("issuer", "https://accounts.google.com").is_ok());
        assert!(validate_issuer("issuer", "http://127.0.0.1:8080").is_ok());
        assert!(validate_issuer("issuer", "http://localhost:3000/oidc").is_ok());
        assert!(validate_issuer("issuer", "http://id.example.com").is_err());
        assert!(validate_issuer("issuer", "https://id.example.com/?x=1").is_err());
        assert!(validate_issuer("issuer", "accounts.google.com").is_err());
    }

    #[test]
    fn oidc_scopes_always_include_openid() {
        assert_eq!(normalize_scopes(Kind::Oidc, None).unwrap(), OIDC_SCOPES);
        assert_eq!(
            normalize_scopes(Kind::Oidc, Some("email groups")).unwrap(),
            "openid email groups"
        );
        assert_eq!(normalize_scopes(Kind::Github, None).unwrap(), GITHUB_SCOPES);
    }

    #[test]
    fn icons_are_limited_to_what_the_csp_allows() {
        assert!(validate_icon("https://example.com/i.svg").is_ok());
        assert!(validate_icon("data:image/svg+xml;base64,AAAA").is_ok());
        assert!(validate_icon("/static/x.svg").is_ok());
        assert!(validate_icon("http://example.com/i.svg").is_err());
        assert!(validate_icon("javascript:alert(1)").is_err());
        assert!(validate_icon("//evil.example/x.svg").is_err());
    }

    #[test]
    fn github_enterprise_and_stand_ins_get_api_v3() {
        let mut p = Provider {
            id: "p".into(),
            slug: "gh".into(),
            kind: Kind::Github,
            display_name: "GitHub".into(),
            icon: None,
            issuer: None,
            client_id: "c".into(),
            client_secret_sealed: None,
            scopes: GITHUB_SCOPES.into(),
            enabled: true,
            policy: Policy::Create,
            default_groups: vec![],
            group_mapping: BTreeMap::new(),
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(github_bases(&p).1, GITHUB_API);
        p.issuer = Some("http://127.0.0.1:9/".into());
        assert_eq!(
            github_bases(&p),
            (
                "http://127.0.0.1:9".into(),
                "http://127.0.0.1:9/api/v3".into()
            )
        );
    }

    #[test]
    fn secrets_are_sealed_per_provider() {
        let (_d, db) = store::test_db();
        let key = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let mut input = ProviderInput::new("google", Kind::Oidc, "", "cid");
        Preset::Google.apply(&mut input);
        input.client_secret = Some(Secret::new("s3cret".into()));
        let p = db
            .try_write_blocking(|c| create(c, &key, input.clone(), None, 1))
            .unwrap();
        assert_eq!(p.issuer.as_deref(), Some(GOOGLE_ISSUER));
        assert_eq!(p.display_name, "Google");
        let sealed = p.client_secret_sealed.clone().unwrap();
        assert!(!sealed.contains("s3cret"));
        assert_eq!(client_secret(&key, &p).unwrap().unwrap().expose(), "s3cret");
        // Moving the sealed value to another provider does not open it.
        let mut other = p.clone();
        other.id = "other".into();
        assert!(client_secret(&key, &other).is_err());
        // The same slug twice is a conflict on the slug.
        let e = db
            .try_write_blocking(|c| create(c, &key, input, None, 1))
            .unwrap_err();
        assert!(matches!(
            e,
            OpError::Conflict(FieldError { field: "slug", .. })
        ));
    }
}

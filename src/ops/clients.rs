//! Application (OAuth client) operations shared by the CLI, console and admin API:
//! validation of every setting, creation with a secret shown once, secret rotation.

use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::crypto::secret::{hash_token, random_id, random_token};
use crate::domain::scope::KNOWN_SCOPES;
use crate::ops::{FieldError, OpError, field};
use crate::store::clients::Client;
use crate::store::{self, StoreError};

#[derive(Debug, Clone)]
pub struct ClientInput {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub auth_method: Option<String>,
    pub require_pkce: bool,
    pub skip_consent: bool,
    pub allow_refresh: bool,
    pub allow_client_credentials: bool,
    pub allowed_groups: Vec<String>,
    pub allowed_scopes: Option<String>,
    pub signing_alg: String,
    pub access_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub frontchannel_logout_uri: Option<String>,
    pub logo_url: Option<String>,
    pub allow_device_code: bool,
    pub require_role: bool,
    pub exchange_token_ttl: Option<i64>,
    /// Client ids of the confidential apps that may exchange tokens for this one.
    pub exchange_sources: Vec<String>,
}

impl Default for ClientInput {
    fn default() -> Self {
        Self {
            name: String::new(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            public: false,
            auth_method: None,
            require_pkce: true,
            skip_consent: false,
            allow_refresh: true,
            allow_client_credentials: false,
            allowed_groups: Vec::new(),
            allowed_scopes: None,
            signing_alg: "RS256".into(),
            access_token_ttl: None,
            id_token_ttl: None,
            refresh_token_ttl: None,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: true,
            frontchannel_logout_uri: None,
            logo_url: None,
            allow_device_code: false,
            require_role: false,
            exchange_token_ttl: None,
            exchange_sources: Vec::new(),
        }
    }
}

/// A redirect URI must be absolute and have no fragment (RFC 6749 §3.1.2). Custom schemes of
/// native apps are valid and kept byte for byte.
pub fn validate_redirect_uri(uri: &str, name: &'static str) -> Result<(), FieldError> {
    if uri != uri.trim() || uri.is_empty() {
        return Err(field(name, "Remove spaces around the address."));
    }
    let parsed = url::Url::parse(uri).map_err(|_| {
        field(
            name,
            format!("{uri:?} is not an absolute URI such as https://app.example.com/callback."),
        )
    })?;
    if uri.contains('#') || parsed.fragment().is_some() {
        return Err(field(
            name,
            format!("{uri:?} must not contain a fragment (#…)."),
        ));
    }
    if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_none_or(str::is_empty) {
        return Err(field(name, format!("{uri:?} has no host.")));
    }
    if matches!(parsed.scheme(), "javascript" | "data" | "file" | "vbscript") {
        return Err(field(
            name,
            format!("{uri:?} uses a scheme that cannot be a redirect target."),
        ));
    }
    Ok(())
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "127.0.0.1"
        || host == "[::1]"
        || host.starts_with("127.")
}

/// Settings that work but deserve a visible warning.
pub fn warnings(c: &Client) -> Vec<String> {
    c.redirect_uris
        .iter()
        .chain(&c.post_logout_redirect_uris)
        .filter_map(|u| url::Url::parse(u).ok())
        .filter(|u| u.scheme() == "http" && u.host_str().is_some_and(|h| !is_loopback_host(h)))
        .map(|u| format!("{u} uses plain http on a non-loopback host: codes and tokens can be intercepted on the network"))
        .collect()
}

/// Checks every setting, in this order: name, redirect URIs, logout URIs, authentication
/// method and PKCE, signing algorithm, scopes, token lifetimes; the first problem is returned.
pub fn validate(input: &ClientInput) -> Result<(), FieldError> {
    if input.name.trim().is_empty() || input.name.chars().count() > 100 {
        return Err(field(
            "name",
            "Give the application a name (up to 100 characters).",
        ));
    }
    validate_redirect_uris(input)?;
    validate_logout_uris(input)?;
    validate_auth_method(input)?;
    if crate::crypto::key_pairs::Alg::parse(&input.signing_alg).is_none() {
        return Err(field("signing_alg", "Choose RS256, ES256 or EdDSA."));
    }
    validate_allowed_scopes(input)?;
    validate_ttls(input)
}

/// At least one redirect URI (unless the client only uses client credentials or device
/// sign-in, neither of which redirects), each valid.
fn validate_redirect_uris(input: &ClientInput) -> Result<(), FieldError> {
    if input.redirect_uris.is_empty() && !input.allow_client_credentials && !input.allow_device_code
    {
        return Err(field(
            "redirect_uris",
            "Add at least one redirect URI (the app's callback address).",
        ));
    }
    for u in &input.redirect_uris {
        validate_redirect_uri(u, "redirect_uris")?;
    }
    Ok(())
}

/// The post-logout redirect URIs, then the back- and front-channel logout URIs: absolute
/// http(s) without a fragment; the back-channel one must also pass the outbound URL check,
/// since Portcullis itself calls it (the browser loads the others).
fn validate_logout_uris(input: &ClientInput) -> Result<(), FieldError> {
    for u in &input.post_logout_redirect_uris {
        validate_redirect_uri(u, "post_logout_redirect_uris")?;
    }
    for (name, u) in [
        ("backchannel_logout_uri", &input.backchannel_logout_uri),
        ("frontchannel_logout_uri", &input.frontchannel_logout_uri),
    ] {
        if let Some(u) = u {
            let ok = url::Url::parse(u)
                .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.fragment().is_none());
            if !ok {
                return Err(field(
                    name,
                    "Enter an absolute http(s) URL without a fragment.",
                ));
            }
            // Portcullis itself calls the back-channel URI (the browser loads the other).
            if name == "backchannel_logout_uri"
                && let Err(refused) = crate::outbound::check_url(u)
            {
                return Err(field(name, format!("Not allowed: {refused}.")));
            }
        }
    }
    Ok(())
}

/// The authentication method fits the client type; public clients must use PKCE and cannot
/// use client credentials.
fn validate_auth_method(input: &ClientInput) -> Result<(), FieldError> {
    match input.auth_method.as_deref() {
        None | Some("client_secret_basic" | "client_secret_post") if !input.public => {}
        None | Some("none") if input.public => {}
        Some(m) => {
            return Err(field(
                "auth_method",
                format!(
                    "{m} does not fit a {} client.",
                    if input.public {
                        "public"
                    } else {
                        "confidential"
                    }
                ),
            ));
        }
        None => {}
    }
    if input.public && !input.require_pkce {
        return Err(field("require_pkce", "Public clients must use PKCE."));
    }
    if input.public && input.allow_client_credentials {
        return Err(field(
            "allow_client_credentials",
            "Public clients cannot use client credentials.",
        ));
    }
    Ok(())
}

/// Each allowed scope is a known scope or a valid scope name.
fn validate_allowed_scopes(input: &ClientInput) -> Result<(), FieldError> {
    if let Some(scopes) = &input.allowed_scopes {
        for s in scopes.split_whitespace() {
            if !KNOWN_SCOPES.contains(&s)
                && !s
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
            {
                return Err(field(
                    "allowed_scopes",
                    format!("{s:?} is not a valid scope name."),
                ));
            }
        }
    }
    Ok(())
}

/// Token lifetimes, when set, are a positive number of seconds.
fn validate_ttls(input: &ClientInput) -> Result<(), FieldError> {
    for (name, ttl) in [
        ("access_token_ttl", input.access_token_ttl),
        ("id_token_ttl", input.id_token_ttl),
        ("refresh_token_ttl", input.refresh_token_ttl),
        ("exchange_token_ttl", input.exchange_token_ttl),
    ] {
        if ttl.is_some_and(|t| t <= 0) {
            return Err(field(name, "Use a positive number of seconds."));
        }
    }
    Ok(())
}

fn build(
    id: String,
    input: ClientInput,
    secret_hash: Option<String>,
    created_at: UnixTime,
    now: UnixTime,
) -> Client {
    Client {
        id,
        name: input.name.trim().to_string(),
        secret_hash,
        public: input.public,
        auth_method: input.auth_method,
        require_pkce: input.require_pkce,
        skip_consent: input.skip_consent,
        allow_refresh: input.allow_refresh,
        allow_client_credentials: input.allow_client_credentials,
        allowed_scopes: input.allowed_scopes.filter(|s| !s.trim().is_empty()),
        signing_alg: input.signing_alg,
        access_token_ttl: input.access_token_ttl,
        id_token_ttl: input.id_token_ttl,
        refresh_token_ttl: input.refresh_token_ttl,
        backchannel_logout_uri: input.backchannel_logout_uri.filter(|s| !s.is_empty()),
        backchannel_logout_session_required: input.backchannel_logout_session_required,
        frontchannel_logout_uri: input.frontchannel_logout_uri.filter(|s| !s.is_empty()),
        logo_url: input.logo_url.filter(|s| !s.is_empty()),
        allow_device_code: input.allow_device_code,
        require_role: input.require_role,
        exchange_token_ttl: input.exchange_token_ttl,
        redirect_uris: input.redirect_uris,
        post_logout_redirect_uris: input.post_logout_redirect_uris,
        allowed_groups: input.allowed_groups,
        exchange_sources: {
            let mut s = input.exchange_sources;
            s.sort();
            s.dedup();
            s
        },
        created_at,
        updated_at: now,
    }
}

/// What the settings name must exist: the allowed groups, and the apps allowed to exchange
/// tokens for this one (confidential apps other than itself: RFC 8693 §2.1 asks the
/// requester to authenticate, and a public app cannot).
fn check_references(
    conn: &rusqlite::Connection,
    id: Option<&str>,
    input: &ClientInput,
) -> Result<(), OpError> {
    for g in &input.allowed_groups {
        if store::groups::id_by_name(conn, g)?.is_none() {
            return Err(field("allowed_groups", format!("There is no group named {g:?}.")).into());
        }
    }
    for source in &input.exchange_sources {
        if Some(source.as_str()) == id {
            return Err(field(
                "exchange_sources",
                "An application does not exchange tokens for itself; name another one.",
            )
            .into());
        }
        match store::clients::by_id(conn, source)? {
            None => {
                return Err(field(
                    "exchange_sources",
                    format!("There is no application with the client id {source:?}."),
                )
                .into());
            }
            Some(c) if c.public => {
                return Err(field(
                    "exchange_sources",
                    format!(
                        "{} is a public application; only apps that keep a secret may exchange tokens.",
                        c.name
                    ),
                )
                .into());
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Creates the client; returns it and, for confidential clients, the secret (shown once).
pub fn create(
    conn: &rusqlite::Connection,
    input: ClientInput,
    now: UnixTime,
) -> Result<(Client, Option<String>), OpError> {
    validate(&input)?;
    check_references(conn, None, &input)?;
    let secret = (!input.public).then(random_token);
    let client = build(
        random_id(),
        input,
        secret.as_deref().map(hash_token),
        now,
        now,
    );
    store::clients::save(conn, &client)?;
    Ok((client, secret))
}

/// A new secret for a confidential client (the old one stops working at once).
pub fn rotate_secret(
    conn: &rusqlite::Connection,
    client_id: &str,
    now: UnixTime,
) -> Result<Option<String>, StoreError> {
    let Some(c) = store::clients::by_id(conn, client_id)? else {
        return Ok(None);
    };
    if c.public {
        return Ok(None);
    }
    let secret = random_token();
    store::clients::set_secret_hash(conn, client_id, &hash_token(&secret), now)?;
    Ok(Some(secret))
}

/// A client as JSON (never the secret hash).
pub fn to_json(c: &Client, issuer: &str) -> Value {
    json!({
        "client_id": c.id,
        "name": c.name,
        "public": c.public,
        "token_endpoint_auth_method": c.auth_method,
        "require_pkce": c.require_pkce,
        "skip_consent": c.skip_consent,
        "allow_refresh": c.allow_refresh,
        "allow_client_credentials": c.allow_client_credentials,
        "allowed_scopes": c.allowed_scopes,
        "allowed_groups": c.allowed_groups,
        "id_token_signed_response_alg": c.signing_alg,
        "access_token_ttl": c.access_token_ttl,
        "id_token_ttl": c.id_token_ttl,
        "refresh_token_ttl": c.refresh_token_ttl,
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "backchannel_logout_session_required": c.backchannel_logout_session_required,
        "frontchannel_logout_uri": c.frontchannel_logout_uri,
        "logo_url": c.logo_url,
        "allow_device_code": c.allow_device_code,
        "require_role": c.require_role,
        "exchange_token_ttl": c.exchange_token_ttl,
        "exchange_sources": c.exchange_sources,
        "issuer": issuer,
        "discovery_url": format!("{issuer}/.well-known/openid-configuration"),
        "created_at": c.created_at,
    })
}

// ---- administration: console, admin API and CLI ---------------------------------------------

/// The settings of a client as an input, to change a few of them.
pub fn input_of(c: &Client) -> ClientInput {
    ClientInput {
        name: c.name.clone(),
        redirect_uris: c.redirect_uris.clone(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        public: c.public,
        auth_method: c.auth_method.clone(),
        require_pkce: c.require_pkce,
        skip_consent: c.skip_consent,
        allow_refresh: c.allow_refresh,
        allow_client_credentials: c.allow_client_credentials,
        allowed_groups: c.allowed_groups.clone(),
        allowed_scopes: c.allowed_scopes.clone(),
        signing_alg: c.signing_alg.clone(),
        access_token_ttl: c.access_token_ttl,
        id_token_ttl: c.id_token_ttl,
        refresh_token_ttl: c.refresh_token_ttl,
        backchannel_logout_uri: c.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: c.backchannel_logout_session_required,
        frontchannel_logout_uri: c.frontchannel_logout_uri.clone(),
        logo_url: c.logo_url.clone(),
        allow_device_code: c.allow_device_code,
        require_role: c.require_role,
        exchange_token_ttl: c.exchange_token_ttl,
        exchange_sources: c.exchange_sources.clone(),
    }
}

fn check_logo(input: &ClientInput) -> Result<(), FieldError> {
    if let Some(u) = input.logo_url.as_deref().filter(|u| !u.is_empty()) {
        let ok = url::Url::parse(u).is_ok_and(|p| p.scheme() == "https" || p.scheme() == "http");
        if !ok {
            return Err(field(
                "logo_url",
                "Enter an absolute http(s) URL of an image.",
            ));
        }
    }
    Ok(())
}

/// Creates a client (as `create`) and records who did it; the secret is returned once.
pub fn create_as(
    conn: &rusqlite::Connection,
    actor: &crate::ops::Actor,
    input: ClientInput,
    now: UnixTime,
) -> Result<(Client, Option<String>), crate::ops::OpError> {
    check_logo(&input)?;
    let (client, secret) = create(conn, input, now)?;
    crate::ops::record(
        conn,
        actor,
        "client.created",
        crate::ops::Subject {
            client_id: Some(&client.id),
            detail: Some(json!({"name": client.name, "public": client.public})),
            ..Default::default()
        },
        now,
    )?;
    Ok((client, secret))
}

/// Saves every setting of an existing client. A client that becomes confidential gets a new
/// secret (returned, shown once); one that becomes public loses its secret.
pub fn update(
    conn: &rusqlite::Connection,
    actor: &crate::ops::Actor,
    id: &str,
    input: ClientInput,
    now: UnixTime,
) -> Result<(Client, Option<String>), crate::ops::OpError> {
    validate(&input)?;
    check_logo(&input)?;
    let cur = store::clients::by_id(conn, id)?.ok_or(crate::ops::OpError::NotFound)?;
    check_references(conn, Some(id), &input)?;
    let (secret_hash, secret) = match (input.public, &cur.secret_hash) {
        (true, _) => (None, None),
        (false, Some(h)) => (Some(h.clone()), None),
        (false, None) => {
            let s = random_token();
            (Some(hash_token(&s)), Some(s))
        }
    };
    let client = build(id.to_string(), input, secret_hash, cur.created_at, now);
    store::clients::save(conn, &client)?;
    let mut changed: Vec<&str> = Vec::new();
    let before = to_json(&cur, "");
    let after = to_json(&client, "");
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, v) in a {
            if b.get(k) != Some(v) {
                changed.push(k);
            }
        }
    }
    if secret.is_some() {
        changed.push("client_secret");
    }
    crate::ops::record(
        conn,
        actor,
        "client.updated",
        crate::ops::Subject {
            client_id: Some(id),
            detail: Some(json!({"name": client.name, "changed": changed})),
            ..Default::default()
        },
        now,
    )?;
    Ok((client, secret))
}

/// Deletes a client and everything issued to it.
pub fn delete(
    conn: &rusqlite::Connection,
    actor: &crate::ops::Actor,
    id: &str,
    now: UnixTime,
) -> Result<Client, crate::ops::OpError> {
    let c = store::clients::by_id(conn, id)?.ok_or(crate::ops::OpError::NotFound)?;
    store::clients::delete(conn, id)?;
    crate::ops::record(
        conn,
        actor,
        "client.deleted",
        crate::ops::Subject {
            client_id: Some(id),
            detail: Some(json!({"name": c.name})),
            ..Default::default()
        },
        now,
    )?;
    Ok(c)
}

/// A new secret (the old one stops working at once), returned once and recorded.
pub fn regenerate_secret(
    conn: &rusqlite::Connection,
    actor: &crate::ops::Actor,
    id: &str,
    now: UnixTime,
) -> Result<String, crate::ops::OpError> {
    let c = store::clients::by_id(conn, id)?.ok_or(crate::ops::OpError::NotFound)?;
    if c.public {
        return Err(crate::ops::conflict(
            "public",
            "A public application has no secret.",
        ));
    }
    let secret = rotate_secret(conn, id, now)?.ok_or(crate::ops::OpError::NotFound)?;
    crate::ops::record(
        conn,
        actor,
        "client.secret_rotated",
        crate::ops::Subject {
            client_id: Some(id),
            detail: Some(json!({"name": c.name})),
            ..Default::default()
        },
        now,
    )?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_custom_schemes_are_valid_and_fragments_are_not() {
        assert!(validate_redirect_uri("app.immich:///oauth-callback", "r").is_ok());
        assert!(validate_redirect_uri("https://app.example.com/cb?x=1", "r").is_ok());
        assert!(validate_redirect_uri("https://app.example.com/cb#frag", "r").is_err());
        assert!(validate_redirect_uri("/relative", "r").is_err());
        assert!(validate_redirect_uri("javascript:alert(1)", "r").is_err());
    }

    #[test]
    fn plain_http_off_loopback_warns() {
        let mk = |u: &str| {
            build(
                "x".into(),
                ClientInput {
                    name: "n".into(),
                    redirect_uris: vec![u.into()],
                    ..Default::default()
                },
                None,
                0,
                0,
            )
        };
        assert_eq!(warnings(&mk("http://192.168.1.5/cb")).len(), 1);
        assert!(warnings(&mk("http://localhost:3000/cb")).is_empty());
        assert!(warnings(&mk("https://a.example/cb")).is_empty());
    }

    #[test]
    fn creation_stores_the_uri_byte_for_byte_and_only_a_secret_hash() {
        let (_d, db) = store::test_db();
        let input = ClientInput {
            name: "Immich".into(),
            redirect_uris: vec!["app.immich:///oauth-callback".into()],
            ..Default::default()
        };
        let (c, secret) = db.try_write_blocking(|c| create(c, input, 0)).unwrap();
        let secret = secret.unwrap();
        let stored = db
            .read_blocking(|x| store::clients::by_id(x, &c.id))
            .unwrap()
            .unwrap();
        assert_eq!(stored.redirect_uris, vec!["app.immich:///oauth-callback"]);
        assert_eq!(stored.secret_hash.unwrap(), hash_token(&secret));
    }

    #[test]
    fn invalid_input_saves_nothing() {
        let (_d, db) = store::test_db();
        let input = ClientInput {
            name: "X".into(),
            redirect_uris: vec!["https://ok.example/cb".into(), "nope".into()],
            ..Default::default()
        };
        let r = db.try_write_blocking(|c| create(c, input, 0));
        assert!(matches!(
            r,
            Err(OpError::Invalid(FieldError {
                field: "redirect_uris",
                ..
            }))
        ));
        assert!(db.read_blocking(store::clients::list).unwrap().is_empty());
    }
}

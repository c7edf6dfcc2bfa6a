//! OAuth clients ("Applications") with their redirect URIs and allowed groups.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub public: bool,
    /// Pinned token endpoint auth method; `None` = basic and post both accepted.
    pub auth_method: Option<String>,
    pub require_pkce: bool,
    pub skip_consent: bool,
    pub allow_refresh: bool,
    pub allow_client_credentials: bool,
    /// `None` = every scope the server knows.
    pub allowed_scopes: Option<String>,
    pub signing_alg: String,
    pub access_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub frontchannel_logout_uri: Option<String>,
    pub logo_url: Option<String>,
    /// RFC 8628: the app may ask for device sign-in (a TV, a command line).
    pub allow_device_code: bool,
    /// Only people holding one of the app's roles may sign in.
    pub require_role: bool,
    /// Lifetime of access tokens exchanged *for* this app (RFC 8693); `None` = 60 s.
    pub exchange_token_ttl: Option<i64>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Group names; empty = everyone may sign in.
    pub allowed_groups: Vec<String>,
    /// Client ids of the apps that may exchange a person's token for one addressed to this
    /// app (RFC 8693), sorted.
    pub exchange_sources: Vec<String>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

const COLUMNS: &str = "id, name, secret_hash, public, auth_method, require_pkce, skip_consent, allow_refresh, \
    allow_client_credentials, allowed_scopes, signing_alg, access_token_ttl, id_token_ttl, refresh_token_ttl, \
    backchannel_logout_uri, backchannel_logout_session_required, frontchannel_logout_uri, logo_url, created_at, updated_at, allow_device_code, require_role, exchange_token_ttl";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Client> {
    Ok(Client {
        id: r.get(0)?,
        name: r.get(1)?,
        secret_hash: r.get(2)?,
        public: r.get(3)?,
        auth_method: r.get(4)?,
        require_pkce: r.get(5)?,
        skip_consent: r.get(6)?,
        allow_refresh: r.get(7)?,
        allow_client_credentials: r.get(8)?,
        allowed_scopes: r.get(9)?,
        signing_alg: r.get(10)?,
        access_token_ttl: r.get(11)?,
        id_token_ttl: r.get(12)?,
        refresh_token_ttl: r.get(13)?,
        backchannel_logout_uri: r.get(14)?,
        backchannel_logout_session_required: r.get(15)?,
        frontchannel_logout_uri: r.get(16)?,
        logo_url: r.get(17)?,
        allow_device_code: r.get(20)?,
        require_role: r.get(21)?,
        exchange_token_ttl: r.get(22)?,
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        allowed_groups: Vec::new(),
        exchange_sources: Vec::new(),
        created_at: r.get(18)?,
        updated_at: r.get(19)?,
    })
}

fn load_lists(conn: &Connection, c: &mut Client) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, uri FROM client_redirect_uris WHERE client_id = ?1 ORDER BY position",
    )?;
    for row in stmt.query_map([&c.id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (kind, uri) = row?;
        if kind == "login" {
            c.redirect_uris.push(uri);
        } else {
            c.post_logout_redirect_uris.push(uri);
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT g.name FROM client_allowed_groups a JOIN groups g ON g.id = a.group_id WHERE a.client_id = ?1 ORDER BY g.name",
    )?;
    c.allowed_groups = stmt
        .query_map([&c.id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT source_client_id FROM client_exchange_sources WHERE client_id = ?1 ORDER BY source_client_id",
    )?;
    c.exchange_sources = stmt
        .query_map([&c.id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(())
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<Client>, StoreError> {
    let Some(mut c) = conn
        .row(
            &format!("SELECT {COLUMNS} FROM clients WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?
    else {
        return Ok(None);
    };
    load_lists(conn, &mut c)?;
    Ok(Some(c))
}

pub fn list(conn: &Connection) -> Result<Vec<Client>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM clients ORDER BY name COLLATE NOCASE"
    ))?;
    let mut out: Vec<Client> = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    for c in &mut out {
        load_lists(conn, c)?;
    }
    Ok(out)
}

/// Inserts or replaces the client with its lists. `allowed_groups` must name existing groups.
pub fn save(conn: &Connection, c: &Client) -> Result<(), StoreError> {
    conn.exec(
        &format!(
            "INSERT INTO clients ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23)
             ON CONFLICT(id) DO UPDATE SET name=excluded.name, secret_hash=excluded.secret_hash, public=excluded.public,
               auth_method=excluded.auth_method, require_pkce=excluded.require_pkce, skip_consent=excluded.skip_consent,
               allow_refresh=excluded.allow_refresh, allow_client_credentials=excluded.allow_client_credentials,
               allowed_scopes=excluded.allowed_scopes, signing_alg=excluded.signing_alg,
               access_token_ttl=excluded.access_token_ttl, id_token_ttl=excluded.id_token_ttl,
               refresh_token_ttl=excluded.refresh_token_ttl, backchannel_logout_uri=excluded.backchannel_logout_uri,
               backchannel_logout_session_required=excluded.backchannel_logout_session_required,
               frontchannel_logout_uri=excluded.frontchannel_logout_uri, logo_url=excluded.logo_url,
               updated_at=excluded.updated_at, allow_device_code=excluded.allow_device_code,
               require_role=excluded.require_role, exchange_token_ttl=excluded.exchange_token_ttl"
        ),
        params![
            c.id,
            c.name,
            c.secret_hash,
            c.public,
            c.auth_method,
            c.require_pkce,
            c.skip_consent,
            c.allow_refresh,
            c.allow_client_credentials,
            c.allowed_scopes,
            c.signing_alg,
            c.access_token_ttl,
            c.id_token_ttl,
            c.refresh_token_ttl,
            c.backchannel_logout_uri,
            c.backchannel_logout_session_required,
            c.frontchannel_logout_uri,
            c.logo_url,
            c.created_at,
            c.updated_at,
            c.allow_device_code,
            c.require_role,
            c.exchange_token_ttl
        ],
    )?;
    conn.exec(
        "DELETE FROM client_redirect_uris WHERE client_id = ?1",
        [&c.id],
    )?;
    let mut ins = conn.prepare_cached(
        "INSERT OR IGNORE INTO client_redirect_uris (client_id, kind, uri, position) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (i, uri) in c.redirect_uris.iter().enumerate() {
        ins.execute(params![c.id, "login", uri, i as i64])?;
    }
    for (i, uri) in c.post_logout_redirect_uris.iter().enumerate() {
        ins.execute(params![c.id, "post_logout", uri, i as i64])?;
    }
    conn.exec(
        "DELETE FROM client_allowed_groups WHERE client_id = ?1",
        [&c.id],
    )?;
    for name in &c.allowed_groups {
        let n = conn.exec(
            "INSERT OR IGNORE INTO client_allowed_groups (client_id, group_id) SELECT ?1, id FROM groups WHERE name = ?2",
            params![c.id, name],
        )?;
        if n == 0 && super::groups::id_by_name(conn, name)?.is_none() {
            return Err(StoreError::Corrupt(format!("no group named {name:?}")));
        }
    }
    conn.exec(
        "DELETE FROM client_exchange_sources WHERE client_id = ?1",
        [&c.id],
    )?;
    let mut ins = conn.prepare_cached(
        "INSERT OR IGNORE INTO client_exchange_sources (client_id, source_client_id) VALUES (?1, ?2)",
    )?;
    for source in &c.exchange_sources {
        ins.execute(params![c.id, source])?;
    }
    Ok(())
}

pub fn set_secret_hash(
    conn: &Connection,
    id: &str,
    hash: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    Ok(conn.exec(
        "UPDATE clients SET secret_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, hash, now],
    )? == 1)
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.exec("DELETE FROM clients WHERE id = ?1", [id])? == 1)
}

/// Origins (scheme://host:port) of every registered redirect URI, for CORS.
pub fn redirect_origins(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT uri FROM client_redirect_uris")?;
    let uris: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<String> = uris
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.origin().ascii_serialization())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

// ---- administration (console, admin API, CLI) ----------------------------------------------

const CLIENT_SEARCH: &str = "?1 = '%%' OR name LIKE ?1 OR id LIKE ?1";

/// A page of clients by name (with their lists), optionally matching `search`.
pub fn list_page(
    conn: &Connection,
    search: &str,
    limit: u32,
    offset: u32,
) -> Result<Vec<Client>, StoreError> {
    let pattern = format!("%{}%", search.trim().replace(['%', '_'], ""));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM clients WHERE {CLIENT_SEARCH} ORDER BY name COLLATE NOCASE, id LIMIT ?2 OFFSET ?3"
    ))?;
    let mut out: Vec<Client> = stmt
        .query_map(params![pattern, limit, offset], from_row)?
        .collect::<Result<_, _>>()?;
    for c in &mut out {
        load_lists(conn, c)?;
    }
    Ok(out)
}

pub fn count_matching(conn: &Connection, search: &str) -> Result<i64, StoreError> {
    let pattern = format!("%{}%", search.trim().replace(['%', '_'], ""));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT count(*) FROM clients WHERE {CLIENT_SEARCH}"
    ))?;
    Ok(stmt.query_row([pattern], |r| r.get(0))?)
}

/// How many live browser sessions have used the client.
pub fn session_count(conn: &Connection, client_id: &str) -> Result<i64, StoreError> {
    Ok(conn.row(
        "SELECT count(*) FROM session_clients WHERE client_id = ?1",
        [client_id],
        |r| r.get(0),
    )?)
}

/// The longest access or ID token lifetime any client overrides to (seconds), if any.
pub fn longest_token_ttl(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.row(
        "SELECT max(coalesce(max(access_token_ttl), 0), coalesce(max(id_token_ttl), 0)) FROM clients",
        [],
        |r| r.get(0),
    )?)
}

/// Whether any application lets `client_id` exchange tokens for it (RFC 8693).
pub fn is_exchange_source(conn: &Connection, client_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM client_exchange_sources WHERE source_client_id = ?1 LIMIT 1",
        )?
        .exists([client_id])?)
}

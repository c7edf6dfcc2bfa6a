//! Users, their group names and custom claims.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Map, Value};

use super::{CachedSql, StoreError, json_col};
use crate::clock::UnixTime;

/// The group whose members may use the admin console.
pub const ADMIN_GROUP: &str = "admins";

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub require_passkey: bool,
    pub claims: Map<String, Value>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl User {
    /// What pages call the person.
    pub fn shown_name(&self) -> &str {
        self.display_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.username)
    }
}

const COLUMNS: &str = "id, username, email, email_verified, display_name, given_name, family_name, picture, \
                       password_hash, disabled, require_passkey, claims, created_at, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(User, String)> {
    Ok((
        User {
            id: r.get(0)?,
            username: r.get(1)?,
            email: r.get(2)?,
            email_verified: r.get(3)?,
            display_name: r.get(4)?,
            given_name: r.get(5)?,
            family_name: r.get(6)?,
            picture: r.get(7)?,
            password_hash: r.get(8)?,
            disabled: r.get(9)?,
            require_passkey: r.get(10)?,
            claims: Map::new(),
            created_at: r.get(12)?,
            updated_at: r.get(13)?,
        },
        r.get(11)?,
    ))
}

fn finish((mut u, claims): (User, String)) -> Result<User, StoreError> {
    u.claims = json_col(&claims)?;
    Ok(u)
}

pub fn insert(conn: &Connection, u: &User) -> Result<(), StoreError> {
    conn.exec(
        &format!("INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
        params![
            u.id,
            u.username,
            u.email,
            u.email_verified,
            u.display_name,
            u.given_name,
            u.family_name,
            u.picture,
            u.password_hash,
            u.disabled,
            u.require_passkey,
            Value::Object(u.claims.clone()).to_string(),
            u.created_at,
            u.updated_at
        ],
    )?;
    Ok(())
}

pub fn update_profile(conn: &Connection, u: &User, now: UnixTime) -> Result<bool, StoreError> {
    let n = conn.exec(
        "UPDATE users SET username = ?2, email = ?3, email_verified = ?4, display_name = ?5, given_name = ?6,
                family_name = ?7, picture = ?8, disabled = ?9, require_passkey = ?10, claims = ?11, updated_at = ?12
         WHERE id = ?1",
        params![
            u.id,
            u.username,
            u.email,
            u.email_verified,
            u.display_name,
            u.given_name,
            u.family_name,
            u.picture,
            u.disabled,
            u.require_passkey,
            Value::Object(u.claims.clone()).to_string(),
            now
        ],
    )?;
    Ok(n == 1)
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<User>, StoreError> {
    conn.row(
        &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?
    .map(finish)
    .transpose()
}

pub fn by_username(conn: &Connection, username: &str) -> Result<Option<User>, StoreError> {
    conn.row(
        &format!("SELECT {COLUMNS} FROM users WHERE username = ?1"),
        [username],
        from_row,
    )
    .optional()?
    .map(finish)
    .transpose()
}

/// Finds a user by username or email, case-insensitively.
pub fn by_login(conn: &Connection, login: &str) -> Result<Option<User>, StoreError> {
    conn.row(
        &format!("SELECT {COLUMNS} FROM users WHERE username = ?1 OR email = ?1 ORDER BY username = ?1 DESC LIMIT 1"),
        [login],
        from_row,
    )
    .optional()?
    .map(finish)
    .transpose()
}

pub fn list(
    conn: &Connection,
    search: &str,
    limit: u32,
    offset: u32,
) -> Result<Vec<User>, StoreError> {
    let pattern = format!("%{}%", search.replace(['%', '_'], ""));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE ?1 = '%%' OR username LIKE ?1 OR email LIKE ?1 OR display_name LIKE ?1
         ORDER BY username LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(params![pattern, limit, offset], from_row)?;
    rows.map(|r| finish(r?)).collect()
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

pub fn set_password_hash(
    conn: &Connection,
    id: &str,
    hash: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, hash, now],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.exec("DELETE FROM users WHERE id = ?1", [id])? == 1)
}

/// Names of the groups the user belongs to, sorted.
pub fn group_names(conn: &Connection, user_id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ?1 ORDER BY g.name",
    )?;
    let rows = stmt.query_map([user_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Custom claim values of the user's groups (in group-name order; later groups win).
pub fn group_claims(conn: &Connection, user_id: &str) -> Result<Map<String, Value>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.claims FROM groups g JOIN group_members m ON m.group_id = g.id
         WHERE m.user_id = ?1 AND g.claims != '{}' ORDER BY g.name",
    )?;
    let mut out = Map::new();
    for text in stmt.query_map([user_id], |r| r.get::<_, String>(0))? {
        let map: Map<String, Value> = json_col(&text?)?;
        out.extend(map);
    }
    Ok(out)
}

pub fn is_admin(conn: &Connection, user_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .row(
            "SELECT 1 FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ?1 AND g.name = ?2",
            params![user_id, ADMIN_GROUP],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn any_admin(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .row(
            "SELECT 1 FROM group_members m JOIN groups g ON g.id = m.group_id
             JOIN users u ON u.id = m.user_id WHERE g.name = ?1 AND u.disabled = 0 LIMIT 1",
            [ADMIN_GROUP],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Custom claims and the scope that releases each (`claim_scopes`), ordered by claim name.
pub fn claim_scopes(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT claim, scope FROM claim_scopes ORDER BY claim")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- administration (console, admin API, CLI) ----------------------------------------------

const SEARCH: &str = "?1 = '%%' OR username LIKE ?1 OR email LIKE ?1 OR display_name LIKE ?1";

fn search_pattern(search: &str) -> String {
    format!("%{}%", search.trim().replace(['%', '_'], ""))
}

/// How many users `list(conn, search, …)` pages through.
pub fn count_matching(conn: &Connection, search: &str) -> Result<i64, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT count(*) FROM users WHERE {SEARCH}"))?;
    Ok(stmt.query_row([search_pattern(search)], |r| r.get(0))?)
}

pub fn set_disabled(
    conn: &Connection,
    id: &str,
    disabled: bool,
    now: UnixTime,
) -> Result<bool, StoreError> {
    Ok(conn.exec(
        "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, disabled, now],
    )? == 1)
}

/// Enabled members of the administrators group.
pub fn active_admin_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.row(
        "SELECT count(*) FROM group_members m JOIN groups g ON g.id = m.group_id
         JOIN users u ON u.id = m.user_id WHERE g.name = ?1 AND u.disabled = 0",
        [ADMIN_GROUP],
        |r| r.get(0),
    )?)
}

/// Sets (or, with an empty scope, removes) the scope that releases a custom claim.
pub fn set_claim_scope(conn: &Connection, claim: &str, scope: &str) -> Result<(), StoreError> {
    if scope.is_empty() {
        conn.exec("DELETE FROM claim_scopes WHERE claim = ?1", [claim])?;
    } else {
        conn.exec(
            "INSERT INTO claim_scopes (claim, scope) VALUES (?1, ?2)
             ON CONFLICT(claim) DO UPDATE SET scope = excluded.scope",
            params![claim, scope],
        )?;
    }
    Ok(())
}

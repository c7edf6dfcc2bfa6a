//! Admin API keys: only the SHA-256 of the key is stored; revoked keys stay listed.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_by: Option<String>,
    /// Username of the creator, when listed (None for keys made with the CLI).
    pub created_by_name: Option<String>,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
}

const SELECT: &str =
    "SELECT k.id, k.name, k.created_by, u.username, k.created_at, k.last_used_at, k.revoked_at
    FROM api_keys k LEFT JOIN users u ON u.id = k.created_by";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        name: r.get(1)?,
        created_by: r.get(2)?,
        created_by_name: r.get(3)?,
        created_at: r.get(4)?,
        last_used_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

pub fn insert(
    conn: &Connection,
    id: &str,
    name: &str,
    key_hash: &str,
    created_by: Option<&str>,
    now: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO api_keys (id, name, key_hash, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, name, key_hash, created_by, now],
    )?;
    Ok(())
}

/// The key with this hash, revoked or not.
pub fn by_hash(conn: &Connection, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
    Ok(conn
        .row(
            &format!("{SELECT} WHERE k.key_hash = ?1"),
            [key_hash],
            from_row,
        )
        .optional()?)
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<ApiKey>, StoreError> {
    Ok(conn
        .row(&format!("{SELECT} WHERE k.id = ?1"), [id], from_row)
        .optional()?)
}

/// Every key, newest first (keys are few).
pub fn list(conn: &Connection) -> Result<Vec<ApiKey>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY k.created_at DESC, k.id"))?;
    Ok(stmt.query_map([], from_row)?.collect::<Result<_, _>>()?)
}

pub fn revoke(conn: &Connection, id: &str, now: UnixTime) -> Result<bool, StoreError> {
    Ok(conn.exec(
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )? == 1)
}

/// Records use (at most once a minute, to keep writes rare).
pub fn touch(conn: &Connection, id: &str, now: UnixTime) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2 - 60)",
        params![id, now],
    )?;
    Ok(())
}

/// Revokes every key a person made (they are being deleted).
pub fn revoke_created_by(
    conn: &Connection,
    user_id: &str,
    now: UnixTime,
) -> Result<usize, StoreError> {
    Ok(conn.exec(
        "UPDATE api_keys SET revoked_at = ?2 WHERE created_by = ?1 AND revoked_at IS NULL",
        params![user_id, now],
    )?)
}

//! Pending authorization requests waiting for sign-in or consent, bound to the browser.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

pub fn insert(
    conn: &Connection,
    id_hash: &str,
    client_id: &str,
    browser: &str,
    params_json: &str,
    now: UnixTime,
    expires_at: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO auth_requests (id_hash, client_id, browser, params, created_at, expires_at) VALUES (?1,?2,?3,?4,?5,?6)",
        params![id_hash, client_id, browser, params_json, now, expires_at],
    )?;
    Ok(())
}

/// The stored parameters, if the request exists, is unexpired and belongs to this browser.
pub fn get(
    conn: &Connection,
    id_hash: &str,
    browser: &str,
    now: UnixTime,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .row(
            "SELECT params FROM auth_requests WHERE id_hash = ?1 AND browser = ?2 AND expires_at > ?3",
            params![id_hash, browser, now],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn delete(conn: &Connection, id_hash: &str) -> Result<(), StoreError> {
    conn.exec("DELETE FROM auth_requests WHERE id_hash = ?1", [id_hash])?;
    Ok(())
}

pub fn delete_expired(conn: &Connection, now: UnixTime) -> Result<usize, StoreError> {
    Ok(conn.exec("DELETE FROM auth_requests WHERE expires_at <= ?1", [now])?)
}

/// Replaces the stored parameters (e.g. to record that consent was just given).
pub fn update_params(
    conn: &Connection,
    id_hash: &str,
    params_json: &str,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE auth_requests SET params = ?2 WHERE id_hash = ?1",
        params![id_hash, params_json],
    )?;
    Ok(())
}

/// Binds a pending request to the browser's new id (given at sign-in).
pub fn rebind(conn: &Connection, id_hash: &str, browser: &str) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE auth_requests SET browser = ?2 WHERE id_hash = ?1",
        params![id_hash, browser],
    )?;
    Ok(())
}

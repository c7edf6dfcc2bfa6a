//! Small server facts in the `settings` table, shared by every process on the database.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

pub fn get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

pub fn put(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Claims a periodic task whose next run time is kept under `key`: true (and the next run
/// set to `next`) when it was due at `now` or never ran; false when another process claimed
/// it first. Call inside a write transaction.
pub fn claim_due(
    conn: &Connection,
    key: &str,
    now: UnixTime,
    next: UnixTime,
) -> Result<bool, StoreError> {
    let due = match get(conn, key)? {
        None => true,
        Some(v) => v.parse::<UnixTime>().map_or(true, |at| at <= now),
    };
    if due {
        put(conn, key, &next.to_string())?;
    }
    Ok(due)
}

//! Remembered consents: per user and client, the set of scopes granted.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct Consent {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub granted_at: UnixTime,
}

pub fn scopes(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let text: Option<String> = conn
        .row(
            "SELECT scopes FROM consents WHERE user_id = ?1 AND client_id = ?2",
            params![user_id, client_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text.map(|t| t.split_whitespace().map(str::to_string).collect()))
}

/// Records consent to `scopes`, merged with what was granted before.
pub fn grant(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: UnixTime,
) -> Result<(), StoreError> {
    let mut all = self::scopes(conn, user_id, client_id)?.unwrap_or_default();
    all.extend(scopes.iter().cloned());
    all.sort();
    all.dedup();
    conn.exec(
        "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        params![user_id, client_id, all.join(" "), now],
    )?;
    Ok(())
}

pub fn list_for_user(conn: &Connection, user_id: &str) -> Result<Vec<Consent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.client_id, k.name, c.scopes, c.granted_at FROM consents c JOIN clients k ON k.id = c.client_id
         WHERE c.user_id = ?1 ORDER BY k.name COLLATE NOCASE",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        Ok(Consent {
            client_id: r.get(0)?,
            client_name: r.get(1)?,
            scopes: r
                .get::<_, String>(2)?
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            granted_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes the consent and revokes that client's tokens for the user.
pub fn revoke(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let n = conn.exec(
        "DELETE FROM consents WHERE user_id = ?1 AND client_id = ?2",
        params![user_id, client_id],
    )?;
    conn.exec(
        "UPDATE refresh_tokens SET revoked_at = ?3 WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL",
        params![user_id, client_id, now],
    )?;
    conn.exec(
        "UPDATE access_tokens SET revoked_at = ?3 WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL",
        params![user_id, client_id, now],
    )?;
    Ok(n == 1)
}

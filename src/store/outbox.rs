//! The back-channel logout outbox: one row per (ended session, client with a
//! `backchannel_logout_uri`), written by `sessions::end` and drained by
//! `oidc::backchannel`.

use rusqlite::{Connection, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

/// A delivery that is due, with what the sender needs from its client.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub client_id: String,
    pub user_id: String,
    pub sid: Option<String>,
    pub attempts: i64,
    pub uri: String,
    pub alg: String,
    pub session_required: bool,
}

pub fn due(conn: &Connection, now: UnixTime) -> Result<Vec<Due>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.client_id, o.user_id, o.sid, o.attempts, c.backchannel_logout_uri, c.signing_alg,
                c.backchannel_logout_session_required
         FROM logout_outbox o JOIN clients c ON c.id = o.client_id
         WHERE o.next_attempt_at <= ?1 AND c.backchannel_logout_uri IS NOT NULL
         ORDER BY o.next_attempt_at LIMIT 32",
    )?;
    let rows = stmt.query_map([now], |r| {
        Ok(Due {
            id: r.get(0)?,
            client_id: r.get(1)?,
            user_id: r.get(2)?,
            sid: r.get(3)?,
            attempts: r.get(4)?,
            uri: r.get(5)?,
            alg: r.get(6)?,
            session_required: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The delivery succeeded or was given up.
pub fn remove(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.exec("DELETE FROM logout_outbox WHERE id = ?1", [id])?;
    Ok(())
}

/// The delivery failed; try again at `next_attempt_at`.
pub fn retry_later(
    conn: &Connection,
    id: i64,
    next_attempt_at: UnixTime,
    error: &str,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE logout_outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
        params![id, next_attempt_at, error],
    )?;
    Ok(())
}

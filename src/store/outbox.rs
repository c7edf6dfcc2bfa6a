//! The back-channel logout outbox: one row per (ended session, client with a
//! `backchannel_logout_uri`), written by `sessions::end` and drained by
//! `ops::backchannel_logout`. A sender claims the rows it sends (`claim_due`) by moving their
//! next attempt past a lease, in one transaction: a second process (or a second pass) does
//! not send them too; if the sender dies, they are due again once the lease is over.

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

/// Whether any delivery is due (a read: the worker asks before it claims).
pub fn any_due(conn: &Connection, now: UnixTime) -> Result<bool, StoreError> {
    Ok(conn.row(
        "SELECT EXISTS (SELECT 1 FROM logout_outbox o JOIN clients c ON c.id = o.client_id
                        WHERE o.next_attempt_at <= ?1 AND c.backchannel_logout_uri IS NOT NULL)",
        [now],
        |r| r.get(0),
    )?)
}

/// Claims up to 32 due deliveries for `lease` seconds (their next attempt moves past it) and
/// returns them: call inside a write transaction.
pub fn claim_due(conn: &Connection, now: UnixTime, lease: i64) -> Result<Vec<Due>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.client_id, o.user_id, o.sid, o.attempts, c.backchannel_logout_uri, c.signing_alg,
                c.backchannel_logout_session_required
         FROM logout_outbox o JOIN clients c ON c.id = o.client_id
         WHERE o.next_attempt_at <= ?1 AND c.backchannel_logout_uri IS NOT NULL
         ORDER BY o.next_attempt_at LIMIT 32",
    )?;
    let due = stmt
        .query_map([now], due_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut claim =
        conn.prepare_cached("UPDATE logout_outbox SET next_attempt_at = ?2 WHERE id = ?1")?;
    for d in &due {
        claim.execute(params![d.id, now.saturating_add(lease)])?;
    }
    Ok(due)
}

fn due_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Due> {
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

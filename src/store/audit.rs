//! The audit log: sign-ins, consents, revocations, admin changes.

use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    pub at: UnixTime,
    pub kind: String,
    pub actor_id: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: Value,
}

/// What to record; `kind` is a stable dotted name such as `login.failed`.
#[derive(Debug, Clone, Default)]
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub actor_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: Option<Value>,
}

pub fn record(conn: &Connection, e: &NewEvent<'_>, now: UnixTime) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit_events (at, kind, actor_id, user_id, client_id, ip, detail) VALUES (?1,?2,?3,?4,?5,?6,?7)",
        params![
            now,
            e.kind,
            e.actor_id,
            e.user_id,
            e.client_id,
            e.ip,
            e.detail.as_ref().map(Value::to_string).unwrap_or_else(|| "{}".into())
        ],
    )?;
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub kind_prefix: Option<String>,
    pub since: Option<UnixTime>,
    pub until: Option<UnixTime>,
    pub after_id: Option<i64>,
}

/// Newest first (or, with `after_id`, oldest first after that id, for `audit tail --follow`).
pub fn list(
    conn: &Connection,
    f: &Filter,
    limit: u32,
    offset: u32,
) -> Result<Vec<Event>, StoreError> {
    let order = if f.after_id.is_some() { "ASC" } else { "DESC" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, at, kind, actor_id, user_id, client_id, ip, detail FROM audit_events
         WHERE (?1 IS NULL OR user_id = ?1 OR actor_id = ?1) AND (?2 IS NULL OR client_id = ?2)
           AND (?3 IS NULL OR kind = ?3 OR kind LIKE ?3 || '.%') AND (?4 IS NULL OR at >= ?4)
           AND (?5 IS NULL OR at <= ?5) AND (?6 IS NULL OR id > ?6)
         ORDER BY id {order} LIMIT ?7 OFFSET ?8"
    ))?;
    let rows = stmt.query_map(
        params![
            f.user_id,
            f.client_id,
            f.kind_prefix,
            f.since,
            f.until,
            f.after_id,
            limit,
            offset
        ],
        |r| {
            Ok(Event {
                id: r.get(0)?,
                at: r.get(1)?,
                kind: r.get(2)?,
                actor_id: r.get(3)?,
                user_id: r.get(4)?,
                client_id: r.get(5)?,
                ip: r.get(6)?,
                detail: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or(Value::Null),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete_older_than(conn: &Connection, cutoff: UnixTime) -> Result<usize, StoreError> {
    Ok(conn.execute("DELETE FROM audit_events WHERE at < ?1", [cutoff])?)
}

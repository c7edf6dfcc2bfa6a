//! The audit log: sign-ins, consents, revocations, admin changes.

use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::Value;

use super::{CachedSql, StoreError};
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
    conn.prepare_cached(
        "INSERT INTO audit_events (at, kind, actor_id, user_id, client_id, ip, detail) VALUES (?1,?2,?3,?4,?5,?6,?7)")?
        .execute(params![
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

/// Whether an event of `kind` by `actor_id` about `user_id` and `client_id` was recorded at
/// or after `since` (the user index, then a few rows).
pub fn recorded_since(
    conn: &Connection,
    kind: &str,
    actor_id: &str,
    user_id: &str,
    client_id: &str,
    since: UnixTime,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM audit_events WHERE user_id = ?1 AND at >= ?2 AND kind = ?3
               AND actor_id = ?4 AND client_id = ?5 LIMIT 1",
        )?
        .exists(rusqlite::params![user_id, since, kind, actor_id, client_id])?)
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub kind_prefix: Option<String>,
    /// A pattern over kinds with `*` and `?` (SQLite GLOB, case-sensitive), e.g. `role.*`.
    pub kind_glob: Option<String>,
    pub since: Option<UnixTime>,
    pub until: Option<UnixTime>,
    pub after_id: Option<i64>,
}

impl Filter {
    /// Sets the kind condition from what a person typed: a pattern with `*`, `?` or `[` is a
    /// GLOB (`role.*`, `*.denied_*`); anything else a kind or a prefix of kinds (`role`).
    pub fn with_kind(mut self, pattern: Option<String>) -> Self {
        match pattern.filter(|p| !p.is_empty()) {
            Some(p) if p.contains(['*', '?', '[']) => self.kind_glob = Some(p),
            other => self.kind_prefix = other,
        }
        self
    }
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
           AND (?9 IS NULL OR kind GLOB ?9)
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
            offset,
            f.kind_glob
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
    Ok(conn.exec("DELETE FROM audit_events WHERE at < ?1", [cutoff])?)
}

// ---- administration (console, admin API, CLI) ----------------------------------------------

/// An event with the names of the people and application it mentions (for the console).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedEvent {
    #[serde(flatten)]
    pub event: Event,
    pub actor_name: Option<String>,
    /// The name of the API key that acted (actor `apikey:<id>`).
    pub actor_key: Option<String>,
    pub user_name: Option<String>,
    pub client_name: Option<String>,
}

/// Newest first, `limit` events older than `before` (an event id; keyset pagination), matching
/// `f`. Only the conditions in use are written into the query, so SQLite can pick an index for
/// each: the user filter is a union of the `user_id` and `actor_id` indexes, the kind prefix
/// a range on `kind`, the dates a range on `at`.
pub fn search(
    conn: &Connection,
    f: &Filter,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<NamedEvent>, StoreError> {
    use rusqlite::types::Value as Sql;
    let (conds, mut args) = search_conditions(f, before);
    args.push(Sql::Integer(i64::from(limit)));
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    // The page's ids first (from indexes alone), then the rows and names for those 50 only.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT e.id, e.at, e.kind, e.actor_id, e.user_id, e.client_id, e.ip, e.detail,
                a.username, u.username, c.name, k.name
         FROM (SELECT e.id FROM audit_events e {filter} ORDER BY e.id DESC LIMIT ?) page
         JOIN audit_events e ON e.id = page.id
         LEFT JOIN users a ON a.id = e.actor_id
         LEFT JOIN users u ON u.id = e.user_id
         LEFT JOIN clients c ON c.id = e.client_id
         LEFT JOIN api_keys k ON e.actor_id LIKE 'apikey:%' AND k.id = substr(e.actor_id, 8)
         ORDER BY e.id DESC"
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), named_event)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The WHERE conditions `search` uses, only those in use, with their arguments in order.
fn search_conditions(
    f: &Filter,
    before: Option<i64>,
) -> (Vec<&'static str>, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as Sql;
    let mut conds: Vec<&str> = Vec::new();
    let mut args: Vec<Sql> = Vec::new();
    if let Some(u) = &f.user_id {
        conds.push(
            "e.id IN (SELECT id FROM audit_events WHERE user_id = ? \
             UNION SELECT id FROM audit_events WHERE actor_id = ?)",
        );
        args.push(Sql::Text(u.clone()));
        args.push(Sql::Text(u.clone()));
    }
    if let Some(c) = &f.client_id {
        conds.push("e.client_id = ?");
        args.push(Sql::Text(c.clone()));
    }
    if let Some(k) = &f.kind_prefix {
        conds.push("(e.kind = ? OR (e.kind >= ? AND e.kind < ?))");
        args.push(Sql::Text(k.clone()));
        args.push(Sql::Text(format!("{k}.")));
        args.push(Sql::Text(format!("{k}/")));
    }
    if let Some(g) = &f.kind_glob {
        conds.push("e.kind GLOB ?");
        args.push(Sql::Text(g.clone()));
    }
    if let Some(t) = f.since {
        conds.push("e.at >= ?");
        args.push(Sql::Integer(t));
    }
    if let Some(t) = f.until {
        conds.push("e.at <= ?");
        args.push(Sql::Integer(t));
    }
    if let Some(id) = before {
        conds.push("e.id < ?");
        args.push(Sql::Integer(id));
    }
    if let Some(id) = f.after_id {
        conds.push("e.id > ?");
        args.push(Sql::Integer(id));
    }
    (conds, args)
}

/// A row of `search`'s query: the event and the names it mentions.
fn named_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<NamedEvent> {
    Ok(NamedEvent {
        event: Event {
            id: r.get(0)?,
            at: r.get(1)?,
            kind: r.get(2)?,
            actor_id: r.get(3)?,
            user_id: r.get(4)?,
            client_id: r.get(5)?,
            ip: r.get(6)?,
            detail: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or(Value::Null),
        },
        actor_name: r.get(8)?,
        actor_key: r.get(11)?,
        user_name: r.get(9)?,
        client_name: r.get(10)?,
    })
}

/// The id of the newest event (0 when the log is empty), for `audit tail --follow`.
pub fn latest_id(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.row("SELECT coalesce(max(id), 0) FROM audit_events", [], |r| {
            r.get(0)
        })?,
    )
}

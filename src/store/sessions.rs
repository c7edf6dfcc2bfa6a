//! Browser sessions. The cookie holds a random 256-bit value; only its hash is stored.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{CachedSql, StoreError, json_col};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id_hash: String,
    pub sid: String,
    pub user_id: String,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub expires_at: UnixTime,
}

const COLUMNS: &str = "id_hash, sid, user_id, auth_time, amr, acr, user_agent, ip, created_at, last_seen_at, expires_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(Session, String)> {
    Ok((
        Session {
            id_hash: r.get(0)?,
            sid: r.get(1)?,
            user_id: r.get(2)?,
            auth_time: r.get(3)?,
            amr: Vec::new(),
            acr: r.get(5)?,
            user_agent: r.get(6)?,
            ip: r.get(7)?,
            created_at: r.get(8)?,
            last_seen_at: r.get(9)?,
            expires_at: r.get(10)?,
        },
        r.get(4)?,
    ))
}

fn finish((mut s, amr): (Session, String)) -> Result<Session, StoreError> {
    s.amr = json_col(&amr)?;
    Ok(s)
}

pub fn insert(conn: &Connection, s: &Session) -> Result<(), StoreError> {
    conn.exec(
        &format!("INSERT INTO sessions ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"),
        params![
            s.id_hash,
            s.sid,
            s.user_id,
            s.auth_time,
            serde_json::to_string(&s.amr).unwrap_or_else(|_| "[]".into()),
            s.acr,
            s.user_agent,
            s.ip,
            s.created_at,
            s.last_seen_at,
            s.expires_at
        ],
    )?;
    Ok(())
}

/// The live session for a cookie hash: not past its absolute lifetime nor idle too long,
/// and its user not disabled.
pub fn live(
    conn: &Connection,
    id_hash: &str,
    now: UnixTime,
    idle_timeout: i64,
) -> Result<Option<Session>, StoreError> {
    conn.row(
        &format!(
            "SELECT {} FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?2 - ?3 AND u.disabled = 0",
            COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ")
        ),
        params![id_hash, now, idle_timeout],
        from_row,
    )
    .optional()?
    .map(finish)
    .transpose()
}

/// The `sid` of the session whose cookie hashes to `id_hash` (live or not).
pub fn sid_by_hash(conn: &Connection, id_hash: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT sid FROM sessions WHERE id_hash = ?1")?
        .query_row([id_hash], |r| r.get(0))
        .optional()?)
}

pub fn by_sid(conn: &Connection, sid: &str) -> Result<Option<Session>, StoreError> {
    conn.row(
        &format!("SELECT {COLUMNS} FROM sessions WHERE sid = ?1"),
        [sid],
        from_row,
    )
    .optional()?
    .map(finish)
    .transpose()
}

/// Marks the session used (at most once a minute, to keep writes rare).
pub fn touch(conn: &Connection, id_hash: &str, now: UnixTime) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id_hash = ?1 AND last_seen_at < ?2 - 60",
        params![id_hash, now],
    )?;
    Ok(())
}

/// Adds an authentication method to a live session (e.g. a passkey after the password).
pub fn update_auth(
    conn: &Connection,
    sid: &str,
    amr: &[String],
    auth_time: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE sessions SET amr = ?2, auth_time = ?3 WHERE sid = ?1",
        params![
            sid,
            serde_json::to_string(amr).unwrap_or_else(|_| "[]".into()),
            auth_time
        ],
    )?;
    Ok(())
}

pub fn list_for_user(
    conn: &Connection,
    user_id: &str,
    now: UnixTime,
) -> Result<Vec<Session>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = ?1 AND expires_at > ?2 ORDER BY last_seen_at DESC"
    ))?;
    let rows = stmt.query_map(params![user_id, now], from_row)?;
    rows.map(|r| finish(r?)).collect()
}

pub fn list_all(conn: &Connection, now: UnixTime, limit: u32) -> Result<Vec<Session>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE expires_at > ?1 ORDER BY last_seen_at DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, limit], from_row)?;
    rows.map(|r| finish(r?)).collect()
}

/// Records that `client_id` received tokens within the session (logout fan-out).
pub fn record_client(
    conn: &Connection,
    sid: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "INSERT OR IGNORE INTO session_clients (sid, client_id, first_at)
         SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM sessions WHERE sid = ?1)",
        params![sid, client_id, now],
    )?;
    Ok(())
}

pub fn clients_of(conn: &Connection, sid: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT client_id FROM session_clients WHERE sid = ?1 ORDER BY first_at")?;
    Ok(stmt
        .query_map([sid], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Deletes the session and revokes the refresh and access tokens bound to it that are not
/// offline. Returns the ended session.
pub fn end(conn: &Connection, sid: &str, now: UnixTime) -> Result<Option<Session>, StoreError> {
    let Some(s) = by_sid(conn, sid)? else {
        return Ok(None);
    };
    // Back-channel logout: one outbox row per client of the session that asked for it,
    // written in the same transaction so no ended session goes unannounced.
    conn.exec(
        "INSERT INTO logout_outbox (client_id, user_id, sid, next_attempt_at, created_at)
         SELECT sc.client_id, ?2, ?1, ?3, ?3 FROM session_clients sc JOIN clients c ON c.id = sc.client_id
         WHERE sc.sid = ?1 AND c.backchannel_logout_uri IS NOT NULL",
        params![sid, s.user_id, now],
    )?;
    // The session's families through their first tokens (the only ones indexed by sid).
    conn.exec(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE revoked_at IS NULL AND family_id IN
           (SELECT family_id FROM refresh_tokens WHERE sid = ?1 AND code_hash IS NOT NULL AND offline = 0)",
        params![sid, now],
    )?;
    conn.exec(
        "UPDATE access_tokens SET revoked_at = ?2 WHERE sid = ?1 AND revoked_at IS NULL
           AND (family_id IS NULL OR family_id NOT IN (SELECT family_id FROM refresh_tokens WHERE offline = 1))",
        params![sid, now],
    )?;
    conn.exec("DELETE FROM sessions WHERE sid = ?1", [sid])?;
    Ok(Some(s))
}

/// Every live session id of the user, optionally but one.
pub fn sids_of_user(
    conn: &Connection,
    user_id: &str,
    except_sid: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT sid FROM sessions WHERE user_id = ?1 AND sid != ?2")?;
    Ok(stmt
        .query_map(params![user_id, except_sid.unwrap_or("")], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

pub fn delete_expired(
    conn: &Connection,
    now: UnixTime,
    idle_timeout: i64,
) -> Result<usize, StoreError> {
    Ok(conn.exec(
        "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?1 - ?2",
        params![now, idle_timeout],
    )?)
}

// ---- administration (console, admin API, CLI) ----------------------------------------------

/// A live session with the name of its user, for the console and admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveSession {
    pub session: Session,
    pub username: String,
}

/// Live sessions (not expired, not idle too long), most recently used first; all users or one.
pub fn list_active(
    conn: &Connection,
    now: UnixTime,
    idle_timeout: i64,
    user_id: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<Vec<ActiveSession>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {}, u.username FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.expires_at > ?1 AND s.last_seen_at > ?1 - ?2 AND (?3 IS NULL OR s.user_id = ?3)
         ORDER BY s.last_seen_at DESC LIMIT ?4 OFFSET ?5",
        COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let rows = stmt.query_map(params![now, idle_timeout, user_id, limit, offset], |r| {
        Ok((from_row(r)?, r.get::<_, String>(11)?))
    })?;
    rows.map(|r| {
        let (s, username) = r?;
        Ok(ActiveSession {
            session: finish(s)?,
            username,
        })
    })
    .collect()
}

pub fn count_active(
    conn: &Connection,
    now: UnixTime,
    idle_timeout: i64,
    user_id: Option<&str>,
) -> Result<i64, StoreError> {
    Ok(conn.row(
        "SELECT count(*) FROM sessions
         WHERE expires_at > ?1 AND last_seen_at > ?1 - ?2 AND (?3 IS NULL OR user_id = ?3)",
        params![now, idle_timeout, user_id],
        |r| r.get(0),
    )?)
}

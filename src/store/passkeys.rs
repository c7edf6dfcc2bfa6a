//! Passkeys (WebAuthn credentials) and server-side ceremony state.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredPasskey {
    pub id: String,
    pub user_id: String,
    pub credential_id: String,
    pub name: String,
    /// webauthn-rs `Passkey`, JSON.
    pub passkey: String,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

const COLUMNS: &str = "id, user_id, credential_id, name, passkey, sign_count, backup_eligible, backup_state, created_at, last_used_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<StoredPasskey> {
    Ok(StoredPasskey {
        id: r.get(0)?,
        user_id: r.get(1)?,
        credential_id: r.get(2)?,
        name: r.get(3)?,
        passkey: r.get(4)?,
        sign_count: r.get(5)?,
        backup_eligible: r.get(6)?,
        backup_state: r.get(7)?,
        created_at: r.get(8)?,
        last_used_at: r.get(9)?,
    })
}

pub fn insert(conn: &Connection, p: &StoredPasskey) -> Result<(), StoreError> {
    conn.exec(
        &format!("INSERT INTO passkeys ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"),
        params![
            p.id,
            p.user_id,
            p.credential_id,
            p.name,
            p.passkey,
            p.sign_count,
            p.backup_eligible,
            p.backup_state,
            p.created_at,
            p.last_used_at
        ],
    )?;
    Ok(())
}

pub fn list_for_user(conn: &Connection, user_id: &str) -> Result<Vec<StoredPasskey>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM passkeys WHERE user_id = ?1 ORDER BY created_at"
    ))?;
    Ok(stmt
        .query_map([user_id], from_row)?
        .collect::<Result<_, _>>()?)
}

pub fn by_credential_id(
    conn: &Connection,
    credential_id: &str,
) -> Result<Option<StoredPasskey>, StoreError> {
    Ok(conn
        .row(
            &format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = ?1"),
            [credential_id],
            from_row,
        )
        .optional()?)
}

/// Records a successful use: the updated credential, counter and backup flags.
pub fn record_use(
    conn: &Connection,
    id: &str,
    passkey: &str,
    sign_count: i64,
    backup_eligible: bool,
    backup_state: bool,
    now: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE passkeys SET passkey = ?2, sign_count = ?3, backup_eligible = ?4, backup_state = ?5, last_used_at = ?6
         WHERE id = ?1",
        params![id, passkey, sign_count, backup_eligible, backup_state, now],
    )?;
    Ok(())
}

pub fn rename(conn: &Connection, user_id: &str, id: &str, name: &str) -> Result<bool, StoreError> {
    Ok(conn.exec(
        "UPDATE passkeys SET name = ?3 WHERE id = ?2 AND user_id = ?1",
        params![user_id, id, name],
    )? == 1)
}

pub fn delete(conn: &Connection, user_id: &str, id: &str) -> Result<bool, StoreError> {
    Ok(conn.exec(
        "DELETE FROM passkeys WHERE id = ?2 AND user_id = ?1",
        params![user_id, id],
    )? == 1)
}

pub fn count_for_user(conn: &Connection, user_id: &str) -> Result<i64, StoreError> {
    Ok(conn.row(
        "SELECT count(*) FROM passkeys WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?)
}

/// Whether the user must confirm sign-in with a passkey (own setting or a group's policy).
pub fn required_for(conn: &Connection, user_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .row(
            "SELECT (SELECT require_passkey FROM users WHERE id = ?1)
             OR EXISTS (SELECT 1 FROM group_members m JOIN groups g ON g.id = m.group_id
                        WHERE m.user_id = ?1 AND g.require_passkey = 1)",
            [user_id],
            |r| r.get::<_, Option<bool>>(0),
        )?
        .unwrap_or(false))
}

// ---- ceremonies ----------------------------------------------------------------------------

pub fn put_ceremony(
    conn: &Connection,
    id_hash: &str,
    kind: &str,
    user_id: Option<&str>,
    state_json: &str,
    now: UnixTime,
    expires_at: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO webauthn_ceremonies (id_hash, kind, user_id, state, created_at, expires_at) VALUES (?1,?2,?3,?4,?5,?6)",
        params![id_hash, kind, user_id, state_json, now, expires_at],
    )?;
    Ok(())
}

/// Takes (deletes and returns) a ceremony: every challenge is single use.
pub fn take_ceremony(
    conn: &Connection,
    id_hash: &str,
    kind: &str,
    now: UnixTime,
) -> Result<Option<(Option<String>, String)>, StoreError> {
    Ok(conn
        .row(
            "DELETE FROM webauthn_ceremonies WHERE id_hash = ?1 AND kind = ?2 AND expires_at > ?3 RETURNING user_id, state",
            params![id_hash, kind, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Reads a ceremony without using it up (the second-factor marker).
pub fn peek_ceremony(
    conn: &Connection,
    id_hash: &str,
    kind: &str,
    now: UnixTime,
) -> Result<Option<(Option<String>, String)>, StoreError> {
    Ok(conn
        .row(
            "SELECT user_id, state FROM webauthn_ceremonies WHERE id_hash = ?1 AND kind = ?2 AND expires_at > ?3",
            params![id_hash, kind, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

pub fn delete_expired_ceremonies(conn: &Connection, now: UnixTime) -> Result<usize, StoreError> {
    Ok(conn.exec(
        "DELETE FROM webauthn_ceremonies WHERE expires_at <= ?1",
        [now],
    )?)
}

/// Sets the user's own "confirm sign-in with a passkey" setting.
pub fn set_user_requirement(
    conn: &Connection,
    user_id: &str,
    on: bool,
    now: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE users SET require_passkey = ?2, updated_at = ?3 WHERE id = ?1",
        rusqlite::params![user_id, on, now],
    )?;
    Ok(())
}

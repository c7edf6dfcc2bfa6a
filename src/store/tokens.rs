//! Refresh token families and the server-side record of access tokens.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{CachedSql, StoreError, json_col};
use crate::clock::UnixTime;

/// What a refresh token family grants.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshGrant {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: Option<String>,
    pub scope: String,
    pub claims: Option<String>,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub offline: bool,
    /// The code the family came from; stored with the family's first token only.
    pub code_hash: Option<String>,
    pub family_expires_at: UnixTime,
}

/// A family's first token (from the code exchange): it keeps the family's `code_hash`, which
/// puts it in the partial index that finds a session's families (migrations/0005).
pub fn insert_refresh(
    conn: &Connection,
    token_hash: &str,
    g: &RefreshGrant,
    now: UnixTime,
    expires_at: UnixTime,
) -> Result<(), StoreError> {
    insert_row(conn, token_hash, g, g.code_hash.as_deref(), now, expires_at)
}

/// A rotation's successor: no `code_hash`, so the rotation adds no entry to the session index.
pub fn insert_successor(
    conn: &Connection,
    token_hash: &str,
    g: &RefreshGrant,
    now: UnixTime,
    expires_at: UnixTime,
) -> Result<(), StoreError> {
    insert_row(conn, token_hash, g, None, now, expires_at)
}

fn insert_row(
    conn: &Connection,
    token_hash: &str,
    g: &RefreshGrant,
    code_hash: Option<&str>,
    now: UnixTime,
    expires_at: UnixTime,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, sid, scope, claims, auth_time, amr, acr,
            offline, code_hash, created_at, expires_at, family_expires_at)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)")?
        .execute(params![
            token_hash,
            g.family_id,
            g.client_id,
            g.user_id,
            g.sid,
            g.scope,
            g.claims,
            g.auth_time,
            serde_json::to_string(&g.amr).unwrap_or_else(|_| "[]".into()),
            g.acr,
            g.offline,
            code_hash,
            now,
            expires_at.min(g.family_expires_at),
            g.family_expires_at
        ],
    )?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRecord {
    pub grant: RefreshGrant,
    pub expires_at: UnixTime,
    pub rotated_at: Option<UnixTime>,
    pub successor_sealed: Option<String>,
    pub revoked_at: Option<UnixTime>,
}

fn refresh_from_row(r: &Row<'_>) -> rusqlite::Result<(RefreshRecord, String)> {
    Ok((
        RefreshRecord {
            grant: RefreshGrant {
                family_id: r.get(0)?,
                client_id: r.get(1)?,
                user_id: r.get(2)?,
                sid: r.get(3)?,
                scope: r.get(4)?,
                claims: r.get(5)?,
                auth_time: r.get(6)?,
                amr: Vec::new(),
                acr: r.get(8)?,
                offline: r.get(9)?,
                code_hash: r.get(10)?,
                family_expires_at: r.get(11)?,
            },
            expires_at: r.get(12)?,
            rotated_at: r.get(13)?,
            successor_sealed: r.get(14)?,
            revoked_at: r.get(15)?,
        },
        r.get(7)?,
    ))
}

pub fn refresh_by_hash(
    conn: &Connection,
    token_hash: &str,
) -> Result<Option<RefreshRecord>, StoreError> {
    let row = conn
        .row(
            "SELECT family_id, client_id, user_id, sid, scope, claims, auth_time, amr, acr, offline, code_hash,
                    family_expires_at, expires_at, rotated_at, successor_sealed, revoked_at
             FROM refresh_tokens WHERE token_hash = ?1",
            [token_hash],
            refresh_from_row,
        )
        .optional()?;
    let Some((mut rec, amr)) = row else {
        return Ok(None);
    };
    rec.grant.amr = json_col(&amr)?;
    Ok(Some(rec))
}

/// Marks `old` rotated (only if it still is not), keeping the sealed successor for the grace
/// window. Returns false if another request rotated it first.
pub fn mark_rotated(
    conn: &Connection,
    old_hash: &str,
    successor_hash: &str,
    successor_sealed: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE refresh_tokens SET rotated_at = ?2, successor_hash = ?3, successor_sealed = ?4
         WHERE token_hash = ?1 AND rotated_at IS NULL AND revoked_at IS NULL",
        )?
        .execute(params![old_hash, now, successor_hash, successor_sealed])?
        == 1)
}

/// Revokes every refresh token of the family and the access tokens minted from it.
pub fn revoke_family(conn: &Connection, family_id: &str, now: UnixTime) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE refresh_tokens SET revoked_at = ?2, successor_sealed = NULL WHERE family_id = ?1 AND revoked_at IS NULL",
        params![family_id, now],
    )?;
    conn.exec(
        "UPDATE access_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
        params![family_id, now],
    )?;
    Ok(())
}

pub fn revoke_issued_from_code(
    conn: &Connection,
    code_hash: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    let families: Vec<String> = conn
        .prepare_cached("SELECT DISTINCT family_id FROM refresh_tokens WHERE code_hash = ?1")?
        .query_map([code_hash], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for f in families {
        revoke_family(conn, &f, now)?;
    }
    conn.exec(
        "UPDATE access_tokens SET revoked_at = ?2 WHERE code_hash = ?1 AND revoked_at IS NULL",
        params![code_hash, now],
    )?;
    Ok(())
}

/// Revokes every token the user holds (disabled or deleted user, admin action).
pub fn revoke_all_for_user(
    conn: &Connection,
    user_id: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now],
    )?;
    conn.exec(
        "UPDATE access_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now],
    )?;
    Ok(())
}

/// The server-side record of an access token.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRecord {
    pub jti: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub family_id: Option<String>,
    pub code_hash: Option<String>,
    pub sid: Option<String>,
    pub scope: String,
    pub claims: Option<String>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

pub fn insert_access(conn: &Connection, a: &AccessRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO access_tokens (jti, client_id, user_id, family_id, code_hash, sid, scope, claims, issued_at, expires_at)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)")?
        .execute(params![a.jti, a.client_id, a.user_id, a.family_id, a.code_hash, a.sid, a.scope, a.claims, a.issued_at, a.expires_at],
    )?;
    Ok(())
}

pub fn access_by_jti(conn: &Connection, jti: &str) -> Result<Option<AccessRecord>, StoreError> {
    Ok(conn
        .row(
            "SELECT jti, client_id, user_id, family_id, code_hash, sid, scope, claims, issued_at, expires_at, revoked_at
             FROM access_tokens WHERE jti = ?1",
            [jti],
            |r| {
                Ok(AccessRecord {
                    jti: r.get(0)?,
                    client_id: r.get(1)?,
                    user_id: r.get(2)?,
                    family_id: r.get(3)?,
                    code_hash: r.get(4)?,
                    sid: r.get(5)?,
                    scope: r.get(6)?,
                    claims: r.get(7)?,
                    issued_at: r.get(8)?,
                    expires_at: r.get(9)?,
                    revoked_at: r.get(10)?,
                })
            },
        )
        .optional()?)
}

pub fn revoke_access(conn: &Connection, jti: &str, now: UnixTime) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE access_tokens SET revoked_at = ?2 WHERE jti = ?1 AND revoked_at IS NULL",
        params![jti, now],
    )?;
    Ok(())
}

/// Deletes expired tokens, and forgets sealed successors once `reuse_grace` has passed since
/// their rotation (the only time they can be handed out again).
pub fn delete_expired(
    conn: &Connection,
    now: UnixTime,
    reuse_grace: i64,
) -> Result<usize, StoreError> {
    let a = conn.exec("DELETE FROM access_tokens WHERE expires_at <= ?1", [now])?;
    let r = conn.exec(
        "DELETE FROM refresh_tokens WHERE family_expires_at <= ?1",
        [now],
    )?;
    conn.exec(
        "UPDATE refresh_tokens SET successor_sealed = NULL
         WHERE successor_sealed IS NOT NULL AND rotated_at < ?1 - ?2",
        params![now, reuse_grace],
    )?;
    Ok(a + r)
}

/// Records the revocation of an access token that had no issuance row (a client's token for
/// itself): a row born revoked, kept until the token would have expired.
pub fn record_revoked_access(
    conn: &Connection,
    a: &AccessRecord,
    now: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO access_tokens (jti, client_id, user_id, family_id, code_hash, sid, scope, claims, issued_at, expires_at, revoked_at)
         VALUES (?1,?2,NULL,NULL,NULL,NULL,?3,NULL,?4,?5,?6)
         ON CONFLICT(jti) DO UPDATE SET revoked_at = coalesce(revoked_at, excluded.revoked_at)",
        params![a.jti, a.client_id, a.scope, a.issued_at, a.expires_at, now],
    )?;
    Ok(())
}

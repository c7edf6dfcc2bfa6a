//! Authorization codes: stored hashed, single use by an atomic UPDATE … RETURNING.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CachedSql, StoreError, json_col};
use crate::clock::UnixTime;

/// What a code grants, fixed when it is issued.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeGrant {
    pub client_id: String,
    pub user_id: String,
    pub sid: Option<String>,
    pub redirect_uri: String,
    /// Whether the authorization request named `redirect_uri` (else the only registered one
    /// was used, and the token request may leave it out too).
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// The `claims` request parameter, as JSON text.
    pub claims: Option<String>,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub acr: Option<String>,
}

pub fn insert(
    conn: &Connection,
    code_hash: &str,
    g: &CodeGrant,
    now: UnixTime,
    expires_at: UnixTime,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO authorization_codes (code_hash, client_id, user_id, sid, redirect_uri, scope, nonce, code_challenge,
            challenge_method, claims, auth_time, amr, acr, created_at, expires_at, redirect_uri_sent)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8, CASE WHEN ?8 IS NULL THEN NULL ELSE 'S256' END, ?9,?10,?11,?12,?13,?14,?15)")?
        .execute(params![
            code_hash,
            g.client_id,
            g.user_id,
            g.sid,
            g.redirect_uri,
            g.scope,
            g.nonce,
            g.code_challenge,
            g.claims,
            g.auth_time,
            serde_json::to_string(&g.amr).unwrap_or_else(|_| "[]".into()),
            g.acr,
            now,
            expires_at,
            g.redirect_uri_sent
        ],
    )?;
    Ok(())
}

#[derive(Debug, PartialEq)]
pub enum Consumed {
    /// First use: the grant, now marked consumed.
    Fresh(Box<CodeGrant>),
    /// Used before: everything issued from it has just been revoked.
    Replayed,
    /// Unknown, expired, or issued to another client.
    Invalid,
}

/// Consumes the code for `client_id` atomically. A second use revokes the tokens the first
/// use issued (RFC 6749 §4.1.2: "…SHOULD revoke (when possible) all tokens previously issued
/// based on that authorization code").
pub fn consume(
    conn: &Connection,
    code_hash: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<Consumed, StoreError> {
    let row = conn
        .row(
            "UPDATE authorization_codes SET consumed_at = ?3
             WHERE code_hash = ?1 AND client_id = ?2 AND consumed_at IS NULL AND expires_at > ?3
             RETURNING client_id, user_id, sid, redirect_uri, scope, nonce, code_challenge, claims, auth_time, amr, acr,
                       redirect_uri_sent",
            params![code_hash, client_id, now],
            |r| {
                Ok((
                    CodeGrant {
                        client_id: r.get(0)?,
                        user_id: r.get(1)?,
                        sid: r.get(2)?,
                        redirect_uri: r.get(3)?,
                        redirect_uri_sent: r.get(11)?,
                        scope: r.get(4)?,
                        nonce: r.get(5)?,
                        code_challenge: r.get(6)?,
                        claims: r.get(7)?,
                        auth_time: r.get(8)?,
                        amr: Vec::new(),
                        acr: r.get(10)?,
                    },
                    r.get::<_, String>(9)?,
                ))
            },
        )
        .optional()?;
    if let Some((mut grant, amr)) = row {
        grant.amr = json_col(&amr)?;
        return Ok(Consumed::Fresh(Box::new(grant)));
    }
    let consumed: Option<Option<i64>> = conn
        .row(
            "SELECT consumed_at FROM authorization_codes WHERE code_hash = ?1",
            [code_hash],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(Some(_)) = consumed {
        super::tokens::revoke_issued_from_code(conn, code_hash, now)?;
        return Ok(Consumed::Replayed);
    }
    Ok(Consumed::Invalid)
}

/// Codes are kept a while after expiry so a late replay is still recognised and revokes.
pub fn delete_expired(conn: &Connection, now: UnixTime) -> Result<usize, StoreError> {
    Ok(conn.exec(
        "DELETE FROM authorization_codes WHERE expires_at <= ?1 - 86400",
        [now],
    )?)
}

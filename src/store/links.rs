//! One-time links (first-run setup, password reset, invite): stored hashed, single use.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Setup,
    PasswordReset,
    Invite,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Setup => "setup",
            Purpose::PasswordReset => "password_reset",
            Purpose::Invite => "invite",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub user_id: Option<String>,
    pub allow_password: bool,
    pub expires_at: UnixTime,
}

pub fn insert(
    conn: &Connection,
    token_hash: &str,
    purpose: Purpose,
    user_id: Option<&str>,
    allow_password: bool,
    now: UnixTime,
    expires_at: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO one_time_links (token_hash, purpose, user_id, allow_password, created_at, expires_at)
         VALUES (?1,?2,?3,?4,?5,?6)",
        params![token_hash, purpose.as_str(), user_id, allow_password, now, expires_at],
    )?;
    Ok(())
}

/// The link if it is unused and unexpired (does not use it).
pub fn peek(
    conn: &Connection,
    token_hash: &str,
    purpose: Purpose,
    now: UnixTime,
) -> Result<Option<Link>, StoreError> {
    Ok(conn
        .row(
            "SELECT user_id, allow_password, expires_at FROM one_time_links
             WHERE token_hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3",
            params![token_hash, purpose.as_str(), now],
            |r| {
                Ok(Link {
                    user_id: r.get(0)?,
                    allow_password: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Uses the link atomically; `None` if it was unknown, used or expired.
pub fn consume(
    conn: &Connection,
    token_hash: &str,
    purpose: Purpose,
    now: UnixTime,
) -> Result<Option<Link>, StoreError> {
    Ok(conn
        .row(
            "UPDATE one_time_links SET used_at = ?3
             WHERE token_hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3
             RETURNING user_id, allow_password, expires_at",
            params![token_hash, purpose.as_str(), now],
            |r| {
                Ok(Link {
                    user_id: r.get(0)?,
                    allow_password: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Earlier unused links of the same purpose for the user stop working when a new one is made.
pub fn invalidate_for_user(
    conn: &Connection,
    user_id: &str,
    purpose: Purpose,
    now: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE one_time_links SET used_at = ?3 WHERE user_id = ?1 AND purpose = ?2 AND used_at IS NULL",
        params![user_id, purpose.as_str(), now],
    )?;
    Ok(())
}

/// Forgets one-time links a day after they expired (kept that long so a late click still
/// gets "this link has expired" rather than "unknown link").
pub fn delete_expired(conn: &Connection, now: UnixTime) -> Result<usize, StoreError> {
    Ok(conn.exec(
        "DELETE FROM one_time_links WHERE expires_at <= ?1 - 86400",
        [now],
    )?)
}

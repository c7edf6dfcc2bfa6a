//! Signing keys: private parts sealed with the master key, public JWK in the clear.

use rusqlite::{Connection, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub private_sealed: String,
    pub public_jwk: String,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
    pub retired_at: Option<UnixTime>,
    pub prune_after: Option<UnixTime>,
}

pub fn insert(conn: &Connection, k: &StoredKey) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO signing_keys (kid, alg, private_sealed, public_jwk, created_at, activates_at, retired_at, prune_after)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
        params![k.kid, k.alg, k.private_sealed, k.public_jwk, k.created_at, k.activates_at, k.retired_at, k.prune_after],
    )?;
    Ok(())
}

/// Every key not yet pruned, oldest first.
pub fn all(conn: &Connection) -> Result<Vec<StoredKey>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kid, alg, private_sealed, public_jwk, created_at, activates_at, retired_at, prune_after
         FROM signing_keys ORDER BY activates_at, created_at",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredKey {
            kid: r.get(0)?,
            alg: r.get(1)?,
            private_sealed: r.get(2)?,
            public_jwk: r.get(3)?,
            created_at: r.get(4)?,
            activates_at: r.get(5)?,
            retired_at: r.get(6)?,
            prune_after: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn retire(
    conn: &Connection,
    kid: &str,
    at: UnixTime,
    prune_after: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE signing_keys SET retired_at = ?2, prune_after = ?3 WHERE kid = ?1 AND retired_at IS NULL",
        params![kid, at, prune_after],
    )?;
    Ok(())
}

pub fn delete_pruned(conn: &Connection, now: UnixTime) -> Result<usize, StoreError> {
    Ok(conn.exec(
        "DELETE FROM signing_keys WHERE prune_after IS NOT NULL AND prune_after <= ?1",
        [now],
    )?)
}

/// Drops keys of `alg` published but not yet signing (a rotation replaces a pending next key
/// rather than queueing another).
pub fn delete_pending(conn: &Connection, alg: &str, now: UnixTime) -> Result<usize, StoreError> {
    Ok(conn.exec(
        "DELETE FROM signing_keys WHERE alg = ?1 AND activates_at > ?2 AND retired_at IS NULL",
        rusqlite::params![alg, now],
    )?)
}

/// What identifies the set of keys and their states: changes with every insert, retirement,
/// activation time and prune (cheap: a few rows).
pub fn fingerprint(conn: &Connection) -> Result<String, StoreError> {
    Ok(conn.row(
        "SELECT coalesce(group_concat(kid || ':' || activates_at || ':' || coalesce(retired_at, ''), ','), '')
         FROM (SELECT kid, activates_at, retired_at FROM signing_keys ORDER BY kid)",
        [],
        |r| r.get(0),
    )?)
}

/// The `settings` row where a running server says which key set it serves (for the CLI).
const SERVED: &str = "signing_keys_served";

/// Records that this process now serves the key set `fingerprint`.
pub fn mark_served(conn: &Connection, fingerprint: &str) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![SERVED, fingerprint],
    )?;
    Ok(())
}

/// The key set a running server last said it serves.
pub fn served(conn: &Connection) -> Result<Option<String>, StoreError> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .row("SELECT value FROM settings WHERE key = ?1", [SERVED], |r| {
            r.get(0)
        })
        .optional()?)
}

//! Admin API keys: made in the console or with `portcullis apikey create`, shown once, stored
//! as a SHA-256 hash (the key has 256 random bits), revocable. A key acts with the powers of
//! an administrator; a key made by a person stops working when that person is no longer one.

use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::crypto::secret::{hash_token, random_id, random_token};
use crate::ops::{self, Actor, OpError, Subject};
use crate::store::api_keys::ApiKey;
use crate::store::{self, StoreError};

/// Keys start with this, so they are easy to recognise (and to scan for in leaked text).
pub const PREFIX: &str = "pck_";

/// Creates a key; returns it and the key text, shown once.
pub fn create(
    conn: &rusqlite::Connection,
    actor: &Actor,
    name: &str,
    now: UnixTime,
) -> Result<(ApiKey, String), OpError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ops::invalid(
            "name",
            "Name the key after what uses it (1 to 64 characters), e.g. \"ansible\".",
        ));
    }
    let key = format!("{PREFIX}{}", random_token());
    let id = random_id();
    store::api_keys::insert(conn, &id, name, &hash_token(&key), actor.user_id(), now)?;
    ops::record(
        conn,
        actor,
        "apikey.created",
        Subject {
            detail: Some(json!({"key_id": id, "name": name})),
            ..Default::default()
        },
        now,
    )?;
    let stored = store::api_keys::by_id(conn, &id)?.ok_or(OpError::NotFound)?;
    Ok((stored, key))
}

pub fn revoke(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: &str,
    now: UnixTime,
) -> Result<ApiKey, OpError> {
    let key = store::api_keys::by_id(conn, id)?.ok_or(OpError::NotFound)?;
    if store::api_keys::revoke(conn, id, now)? {
        ops::record(
            conn,
            actor,
            "apikey.revoked",
            Subject {
                detail: Some(json!({"key_id": id, "name": key.name})),
                ..Default::default()
            },
            now,
        )?;
    }
    Ok(store::api_keys::by_id(conn, id)?.unwrap_or(key))
}

/// The outcome of presenting a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Valid(ApiKey),
    Unknown,
    Revoked,
    /// The person who made it is no longer an enabled administrator.
    CreatorNotAdmin,
}

/// Checks a presented key (looked up by its hash) and records its use.
pub fn check(
    conn: &rusqlite::Connection,
    presented: &str,
    now: UnixTime,
) -> Result<Check, StoreError> {
    let Some(key) = store::api_keys::by_hash(conn, &hash_token(presented))? else {
        return Ok(Check::Unknown);
    };
    if key.revoked_at.is_some() {
        return Ok(Check::Revoked);
    }
    if let Some(creator) = &key.created_by {
        let still_admin = store::users::by_id(conn, creator)?.is_some_and(|u| !u.disabled)
            && store::users::is_admin(conn, creator)?;
        if !still_admin {
            return Ok(Check::CreatorNotAdmin);
        }
    }
    store::api_keys::touch(conn, &key.id, now)?;
    Ok(Check::Valid(key))
}

pub fn to_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "created_by": k.created_by_name,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
        "revoked_at": k.revoked_at,
    })
}

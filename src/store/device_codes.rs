//! Device authorizations (RFC 8628): a device code the device polls with, a user code the
//! person types, and the decision the person took. Both codes arrive here already hashed
//! (the device code with SHA-256 like every token, the user code keyed with a key derived
//! from the master key); a row moves pending → approved | denied, and approved → used once.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{CachedSql, StoreError, json_col};
use crate::clock::UnixTime;

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Used,
}

impl Status {
    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "denied" => Status::Denied,
            "used" => Status::Used,
            other => return Err(StoreError::Corrupt(format!("device code status {other:?}"))),
        })
    }
}

/// What a device asked for, fixed when the codes are issued.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeviceCode<'a> {
    pub device_code_hash: &'a str,
    pub user_code_hash: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub device_ip: Option<&'a str>,
    pub device_agent: Option<&'a str>,
    pub interval_secs: i64,
    pub expires_at: UnixTime,
}

/// A device authorization as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCode {
    pub device_code_hash: String,
    pub client_id: String,
    pub scope: String,
    pub status: Status,
    pub user_id: Option<String>,
    pub sid: Option<String>,
    pub auth_time: Option<UnixTime>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub device_ip: Option<String>,
    pub device_agent: Option<String>,
    pub interval_secs: i64,
    pub last_polled_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub decided_at: Option<UnixTime>,
}

impl DeviceCode {
    pub fn is_expired(&self, now: UnixTime) -> bool {
        self.expires_at <= now
    }
}

/// The person's decision on a pending code.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval<'a> {
    pub user_id: &'a str,
    pub sid: Option<&'a str>,
    pub auth_time: UnixTime,
    pub amr: &'a [String],
    pub acr: Option<&'a str>,
}

const COLUMNS: &str = "device_code_hash, client_id, scope, status, user_id, sid, auth_time, amr, acr, \
    device_ip, device_agent, interval_secs, last_polled_at, created_at, expires_at, decided_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(DeviceCode, String, String)> {
    Ok((
        DeviceCode {
            device_code_hash: r.get(0)?,
            client_id: r.get(1)?,
            scope: r.get(2)?,
            status: Status::Pending,
            user_id: r.get(4)?,
            sid: r.get(5)?,
            auth_time: r.get(6)?,
            amr: Vec::new(),
            acr: r.get(8)?,
            device_ip: r.get(9)?,
            device_agent: r.get(10)?,
            interval_secs: r.get(11)?,
            last_polled_at: r.get(12)?,
            created_at: r.get(13)?,
            expires_at: r.get(14)?,
            decided_at: r.get(15)?,
        },
        r.get(3)?,
        r.get(7)?,
    ))
}

fn finish(row: Option<(DeviceCode, String, String)>) -> Result<Option<DeviceCode>, StoreError> {
    let Some((mut d, status, amr)) = row else {
        return Ok(None);
    };
    d.status = Status::parse(&status)?;
    d.amr = json_col(&amr)?;
    Ok(Some(d))
}

pub fn insert(conn: &Connection, d: &NewDeviceCode<'_>, now: UnixTime) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO device_codes (device_code_hash, user_code_hash, client_id, scope, device_ip, device_agent,
            interval_secs, created_at, expires_at)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    )?
    .execute(params![
        d.device_code_hash,
        d.user_code_hash,
        d.client_id,
        d.scope,
        d.device_ip,
        d.device_agent,
        d.interval_secs,
        now,
        d.expires_at
    ])?;
    Ok(())
}

/// Whether a user code hash is taken (by any row, live or not: the column is unique).
pub fn user_code_taken(conn: &Connection, user_code_hash: &str) -> Result<bool, StoreError> {
    Ok(conn
        .row(
            "SELECT 1 FROM device_codes WHERE user_code_hash = ?1",
            [user_code_hash],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The client's codes still waiting for a person (the flood limit counts these).
pub fn pending_count(conn: &Connection, client_id: &str, now: UnixTime) -> Result<i64, StoreError> {
    Ok(conn.row(
        "SELECT count(*) FROM device_codes WHERE client_id = ?1 AND status = 'pending' AND expires_at > ?2",
        params![client_id, now],
        |r| r.get(0),
    )?)
}

pub fn by_user_code_hash(
    conn: &Connection,
    user_code_hash: &str,
) -> Result<Option<DeviceCode>, StoreError> {
    let row = conn
        .row(
            &format!("SELECT {COLUMNS} FROM device_codes WHERE user_code_hash = ?1"),
            [user_code_hash],
            from_row,
        )
        .optional()?;
    finish(row)
}

pub fn by_device_code_hash(
    conn: &Connection,
    device_code_hash: &str,
) -> Result<Option<DeviceCode>, StoreError> {
    let row = conn
        .row(
            &format!("SELECT {COLUMNS} FROM device_codes WHERE device_code_hash = ?1"),
            [device_code_hash],
            from_row,
        )
        .optional()?;
    finish(row)
}

/// pending → approved, for the person who approved and their sign-in. False when the code is
/// no longer pending or has expired (nothing changed).
pub fn approve(
    conn: &Connection,
    device_code_hash: &str,
    a: &Approval<'_>,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let amr = serde_json::to_string(a.amr).unwrap_or_else(|_| "[]".into());
    Ok(conn.exec(
        "UPDATE device_codes SET status = 'approved', user_id = ?2, sid = ?3, auth_time = ?4, amr = ?5,
            acr = ?6, decided_at = ?7
         WHERE device_code_hash = ?1 AND status = 'pending' AND expires_at > ?7",
        params![device_code_hash, a.user_id, a.sid, a.auth_time, amr, a.acr, now],
    )? == 1)
}

/// pending → denied, remembering who denied. False when the code is no longer pending or has
/// expired.
pub fn deny(
    conn: &Connection,
    device_code_hash: &str,
    user_id: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    Ok(conn.exec(
        "UPDATE device_codes SET status = 'denied', user_id = ?2, decided_at = ?3
         WHERE device_code_hash = ?1 AND status = 'pending' AND expires_at > ?3",
        params![device_code_hash, user_id, now],
    )? == 1)
}

/// Records a poll of the device code at `now`, with the interval the device must keep from
/// now on (raised after a `slow_down`).
pub fn poll(
    conn: &Connection,
    device_code_hash: &str,
    interval_secs: i64,
    now: UnixTime,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE device_codes SET last_polled_at = ?2, interval_secs = ?3 WHERE device_code_hash = ?1",
        params![device_code_hash, now, interval_secs],
    )?;
    Ok(())
}

/// approved → used, atomically: of two parallel exchanges only one sees `true`.
pub fn mark_used(
    conn: &Connection,
    device_code_hash: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    Ok(conn.exec(
        "UPDATE device_codes SET status = 'used', last_polled_at = ?2
         WHERE device_code_hash = ?1 AND status = 'approved' AND expires_at > ?2",
        params![device_code_hash, now],
    )? == 1)
}

/// Codes are kept an hour after expiry, so a late poll still hears `expired_token`.
pub fn delete_expired(conn: &Connection, now: UnixTime) -> Result<usize, StoreError> {
    Ok(conn.exec(
        "DELETE FROM device_codes WHERE expires_at <= ?1 - 3600",
        [now],
    )?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn client(c: &Connection) {
        c.execute(
            "INSERT INTO clients (id, name, public, signing_alg, created_at, updated_at)
             VALUES ('tv', 'TV', 1, 'RS256', 0, 0)",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO users (id, username, created_at, updated_at) VALUES ('u', 'ann', 0, 0)",
            [],
        )
        .unwrap();
    }

    fn new<'a>(dc: &'a str, uc: &'a str) -> NewDeviceCode<'a> {
        NewDeviceCode {
            device_code_hash: dc,
            user_code_hash: uc,
            client_id: "tv",
            scope: "openid",
            device_ip: Some("192.0.2.1"),
            device_agent: Some("curl/8"),
            interval_secs: 5,
            expires_at: 700,
        }
    }

    #[test]
    fn a_code_is_decided_once_and_used_once() {
        let (_d, db) = crate::store::test_db();
        db.write_blocking(|c| {
            client(c);
            insert(c, &new("d1", "u1"), 100)?;
            assert!(user_code_taken(c, "u1")?);
            assert_eq!(pending_count(c, "tv", 100)?, 1);
            let row = by_user_code_hash(c, "u1")?.unwrap();
            assert_eq!((row.status, row.interval_secs), (Status::Pending, 5));
            assert!(!mark_used(c, "d1", 110)?, "a pending code cannot be used");
            let amr = vec!["pwd".to_string()];
            let a = Approval {
                user_id: "u",
                sid: Some("s"),
                auth_time: 90,
                amr: &amr,
                acr: None,
            };
            assert!(approve(c, "d1", &a, 120)?);
            assert!(!approve(c, "d1", &a, 121)?, "decided once");
            assert!(!deny(c, "d1", "u", 121)?);
            let row = by_device_code_hash(c, "d1")?.unwrap();
            assert_eq!(row.status, Status::Approved);
            assert_eq!(row.amr, amr);
            assert!(mark_used(c, "d1", 130)?);
            assert!(!mark_used(c, "d1", 131)?, "single use");
            assert_eq!(by_device_code_hash(c, "d1")?.unwrap().status, Status::Used);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn expired_codes_cannot_be_decided_and_are_swept_later() {
        let (_d, db) = crate::store::test_db();
        db.write_blocking(|c| {
            client(c);
            insert(c, &new("d2", "u2"), 100)?;
            assert!(!deny(c, "d2", "u", 700)?);
            assert_eq!(pending_count(c, "tv", 700)?, 0);
            poll(c, "d2", 10, 650)?;
            let row = by_device_code_hash(c, "d2")?.unwrap();
            assert_eq!((row.last_polled_at, row.interval_secs), (Some(650), 10));
            assert_eq!(delete_expired(c, 700 + 3599)?, 0);
            assert_eq!(delete_expired(c, 700 + 3600)?, 1);
            Ok(())
        })
        .unwrap();
    }
}

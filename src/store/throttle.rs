//! Sign-in throttling: failure counts per account and per client IP with growing delays.
//! A temporary slow-down, never a permanent lock an attacker could use to shut a user out.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CachedSql, StoreError};
use crate::clock::UnixTime;

/// Failures older than this are forgotten.
const WINDOW: i64 = 24 * 3600;

/// Until when `key` must wait (0 or past = free to try).
pub fn blocked_until(conn: &Connection, key: &str, now: UnixTime) -> Result<UnixTime, StoreError> {
    let until: Option<(i64, i64)> = conn
        .row(
            "SELECT blocked_until, first_at FROM login_failures WHERE key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match until {
        Some((until, first_at)) if now - first_at < WINDOW => until,
        _ => 0,
    })
}

/// Counts a failure; once `threshold` is reached each further failure doubles the wait
/// (1 s, 2 s, 4 s … up to `max_delay`). Returns the number of failures and the new block.
pub fn record_failure(
    conn: &Connection,
    key: &str,
    now: UnixTime,
    threshold: u32,
    max_delay: i64,
) -> Result<(u32, UnixTime), StoreError> {
    let failures: u32 = conn.row(
        "INSERT INTO login_failures (key, failures, first_at, blocked_until) VALUES (?1, 1, ?2, 0)
         ON CONFLICT(key) DO UPDATE SET
           failures = CASE WHEN ?2 - first_at >= ?3 THEN 1 ELSE failures + 1 END,
           first_at = CASE WHEN ?2 - first_at >= ?3 THEN ?2 ELSE first_at END
         RETURNING failures",
        params![key, now, WINDOW],
        |r| r.get(0),
    )?;
    let until = if failures >= threshold {
        let exp = (failures - threshold).min(30);
        now + (1i64 << exp).min(max_delay.max(1))
    } else {
        0
    };
    conn.exec(
        "UPDATE login_failures SET blocked_until = ?2 WHERE key = ?1",
        params![key, until],
    )?;
    Ok((failures, until))
}

/// An attempt counted before it is decided (see `reserve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub key: String,
    pub failures: u32,
    /// The block this attempt set, and the one it replaced (restored by `release`).
    until: UnixTime,
    previous_until: UnixTime,
}

/// Counts an attempt as a failure before its password is checked, so that parallel attempts
/// cannot all pass one check of the count (call `wait`-check and this in one transaction).
pub fn reserve(
    conn: &Connection,
    key: &str,
    now: UnixTime,
    threshold: u32,
    max_delay: i64,
) -> Result<Reserved, StoreError> {
    let previous_until: UnixTime = conn
        .row(
            "SELECT blocked_until FROM login_failures WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let (failures, until) = record_failure(conn, key, now, threshold, max_delay)?;
    Ok(Reserved {
        key: key.to_string(),
        failures,
        until,
        previous_until,
    })
}

/// Gives back a reservation whose attempt succeeded: one failure fewer and, unless another
/// attempt has moved the block since, the block as it was before.
pub fn release(conn: &Connection, r: &Reserved) -> Result<(), StoreError> {
    let restored = conn.exec(
        "UPDATE login_failures SET failures = max(failures - 1, 0), blocked_until = ?3
         WHERE key = ?1 AND blocked_until = ?2",
        params![r.key, r.until, r.previous_until],
    )?;
    if restored == 0 {
        conn.exec(
            "UPDATE login_failures SET failures = max(failures - 1, 0) WHERE key = ?1",
            [&r.key],
        )?;
    }
    Ok(())
}

pub fn clear(conn: &Connection, key: &str) -> Result<(), StoreError> {
    conn.exec("DELETE FROM login_failures WHERE key = ?1", [key])?;
    Ok(())
}

pub fn delete_stale(conn: &Connection, now: UnixTime) -> Result<usize, StoreError> {
    Ok(conn.exec(
        "DELETE FROM login_failures WHERE first_at <= ?1 - ?2 AND blocked_until <= ?1",
        params![now, WINDOW],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_the_threshold_and_are_temporary() {
        let (_d, db) = crate::store::test_db();
        db.write_blocking(|c| {
            for _ in 0..4 {
                assert_eq!(record_failure(c, "user:a", 100, 5, 900)?.1, 0);
            }
            assert_eq!(record_failure(c, "user:a", 100, 5, 900)?.1, 101);
            assert_eq!(record_failure(c, "user:a", 100, 5, 900)?.1, 102);
            assert_eq!(record_failure(c, "user:a", 100, 5, 900)?.1, 104);
            for _ in 0..40 {
                record_failure(c, "user:a", 100, 5, 900)?;
            }
            assert_eq!(
                blocked_until(c, "user:a", 100)?,
                1000,
                "capped at max_delay"
            );
            assert_eq!(
                blocked_until(c, "user:a", 100 + WINDOW)?,
                0,
                "forgotten after the window"
            );
            clear(c, "user:a")?;
            assert_eq!(blocked_until(c, "user:a", 100)?, 0);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_released_reservation_puts_the_count_and_block_back() {
        let (_d, db) = crate::store::test_db();
        db.write_blocking(|c| {
            for _ in 0..5 {
                record_failure(c, "ip:x", 100, 5, 900)?;
            }
            assert_eq!(blocked_until(c, "ip:x", 100)?, 101);
            let r = reserve(c, "ip:x", 200, 5, 900)?;
            assert_eq!(r.failures, 6);
            assert_eq!(
                blocked_until(c, "ip:x", 200)?,
                202,
                "reserved like a failure"
            );
            release(c, &r)?;
            assert_eq!(blocked_until(c, "ip:x", 200)?, 101);
            let again = reserve(c, "ip:x", 200, 5, 900)?;
            assert_eq!(again.failures, 6, "the released attempt no longer counts");
            Ok(())
        })
        .unwrap();
    }
}

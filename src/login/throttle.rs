//! Brute-force protection for sign-in: failures are counted per account and per client IP;
//! after `login_throttle_threshold` failures each further attempt must wait a doubling delay
//! (up to `login_throttle_max_delay`). A slow-down, never a lock-out an attacker could use to
//! shut a user out for good.

use crate::app::AppState;
use crate::clock::UnixTime;
use crate::store::{self, StoreError};

pub fn user_key(login: &str) -> String {
    format!("user:{}", login.trim().to_lowercase())
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// Seconds to wait before another attempt is accepted (0 = go ahead); a read, so the caller
/// can fold it into the read it makes anyway.
pub fn wait_seconds(
    conn: &rusqlite::Connection,
    keys: &[String],
    now: UnixTime,
) -> Result<i64, StoreError> {
    let mut until: UnixTime = 0;
    for k in keys {
        until = until.max(store::throttle::blocked_until(conn, k, now)?);
    }
    Ok((until - now).max(0))
}

/// Records a failure for each key (inside the caller's transaction).
pub fn record_failure(
    conn: &rusqlite::Connection,
    state: &AppState,
    keys: &[String],
    now: UnixTime,
) -> Result<u32, StoreError> {
    let mut most = 0;
    for k in keys {
        let (n, _) = store::throttle::record_failure(
            conn,
            k,
            now,
            state.config.login_throttle_threshold,
            state.config.login_throttle_max_delay.as_secs() as i64,
        )?;
        most = most.max(n);
    }
    Ok(most)
}

//! Brute-force protection for sign-in: failures are counted per account and per client IP;
//! after `login_throttle_threshold` failures each further attempt must wait a doubling delay
//! (up to `login_throttle_max_delay`). A slow-down, never a lock-out an attacker could use to
//! shut a user out for good. Every place a password is verified (sign-in, the account page's
//! current password) is admitted here first.

use crate::clock::UnixTime;
use crate::config::Config;
use crate::store::{self, StoreError};

pub fn user_key(login: &str) -> String {
    format!("user:{}", login.trim().to_lowercase())
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// Seconds to wait before another attempt is accepted (0 = go ahead).
fn wait_seconds(
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

/// The answer to "may this attempt check a password now?".
pub enum Admission {
    /// Go ahead: the attempt is already counted as a failure under every key.
    Go(Reservation),
    /// Refused: wait this many seconds.
    Wait(i64),
}

/// An admitted attempt, counted in advance: settle it with [`succeeded`] when the password
/// was right; a wrong one needs nothing more.
#[derive(Debug, Clone)]
pub struct Reservation {
    held: Vec<store::throttle::Reserved>,
}

impl Reservation {
    /// The largest failure count among the keys, this attempt included.
    pub fn failures(&self) -> u32 {
        self.held.iter().map(|r| r.failures).max().unwrap_or(0)
    }
}

/// Checks every key and, when none must wait, reserves the attempt under each, in the
/// caller's (write) transaction: N parallel guesses are N counted attempts before the first
/// argon2 hash starts, never N guesses past one check. `keys[0]` is the account's key.
pub fn admit(
    conn: &rusqlite::Connection,
    config: &Config,
    keys: &[String],
    now: UnixTime,
) -> Result<Admission, StoreError> {
    let wait = wait_seconds(conn, keys, now)?;
    if wait > 0 {
        return Ok(Admission::Wait(wait));
    }
    let threshold = config.login_throttle_threshold;
    let max_delay = i64::try_from(config.login_throttle_max_delay.as_secs()).unwrap_or(0);
    let mut held = Vec::with_capacity(keys.len());
    for k in keys {
        held.push(store::throttle::reserve(
            conn, k, now, threshold, max_delay,
        )?);
    }
    Ok(Admission::Go(Reservation { held }))
}

/// The password was right: the account's failures are forgotten, and the attempt no longer
/// counts against the other keys (the client IP).
pub fn succeeded(conn: &rusqlite::Connection, r: &Reservation) -> Result<(), StoreError> {
    let mut held = r.held.iter();
    if let Some(account) = held.next() {
        store::throttle::clear(conn, &account.key)?;
    }
    for other in held {
        store::throttle::release(conn, other)?;
    }
    Ok(())
}

/// Guesses of device user codes at /device (RFC 8628 §5.1: the user code has little entropy,
/// so the verification page must limit guessing). Rejected codes are counted per client IP,
/// per signed-in person and over the whole server; after `threshold` rejections under a key,
/// each further one doubles the wait (1 s, 2 s, 4 s …) up to `max_delay` seconds.
pub struct CodeGuessLimit {
    pub key: String,
    pub threshold: u32,
    pub max_delay: i64,
}

/// Rejections per client IP, per person, and for everyone before the waits begin.
pub const CODE_GUESSES_PER_IP: u32 = 5;
pub const CODE_GUESSES_PER_USER: u32 = 10;
pub const CODE_GUESSES_GLOBAL: u32 = 1000;

/// The limits a code entry from `ip` by `user_id` is held to.
pub fn code_guess_limits(config: &Config, ip: &str, user_id: &str) -> Vec<CodeGuessLimit> {
    let max = i64::try_from(config.login_throttle_max_delay.as_secs()).unwrap_or(900);
    vec![
        CodeGuessLimit {
            key: format!("device-ip:{ip}"),
            threshold: CODE_GUESSES_PER_IP,
            max_delay: max,
        },
        CodeGuessLimit {
            key: format!("device-user:{user_id}"),
            threshold: CODE_GUESSES_PER_USER,
            max_delay: max,
        },
        // Everyone shares this one: a short wait, so that guessing spread over many
        // addresses and accounts is slowed without shutting people out for long.
        CodeGuessLimit {
            key: "device-all".into(),
            threshold: CODE_GUESSES_GLOBAL,
            max_delay: 60,
        },
    ]
}

/// Seconds to wait before another code may be tried (0 = go ahead).
pub fn code_guess_wait(
    conn: &rusqlite::Connection,
    limits: &[CodeGuessLimit],
    now: UnixTime,
) -> Result<i64, StoreError> {
    let keys: Vec<String> = limits.iter().map(|l| l.key.clone()).collect();
    wait_seconds(conn, &keys, now)
}

/// Counts a rejected code under every limit.
pub fn code_guess_failed(
    conn: &rusqlite::Connection,
    limits: &[CodeGuessLimit],
    now: UnixTime,
) -> Result<(), StoreError> {
    for l in limits {
        store::throttle::record_failure(conn, &l.key, now, l.threshold, l.max_delay)?;
    }
    Ok(())
}

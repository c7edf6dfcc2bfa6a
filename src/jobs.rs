//! Periodic work as plain functions: expiry of sessions, codes and tokens, audit retention,
//! signing-key rotation, scheduled backups. `spawn` runs them every minute while the server runs.

use std::sync::Arc;

use crate::ops::backchannel_logout::{self, Delivery};
use crate::state::AppState;
use crate::store::{self, StoreError};

/// Deletes what has expired. Returns the number of rows removed.
pub fn collect_garbage(state: &AppState, now: i64) -> Result<usize, StoreError> {
    let idle = state.config.session_idle_timeout.as_secs() as i64;
    let retention = state.config.audit_retention.as_secs() as i64;
    let grace = i64::try_from(state.config.refresh_token_reuse_grace.as_secs()).unwrap_or(0);
    state.db.write_blocking(|c| {
        Ok(store::sessions::delete_expired(c, now, idle)?
            + store::auth_requests::delete_expired(c, now)?
            + store::codes::delete_expired(c, now)?
            + store::device_codes::delete_expired(c, now)?
            + store::tokens::delete_expired(c, now, grace)?
            + store::throttle::delete_stale(c, now)?
            + store::audit::delete_older_than(c, now - retention)?
            + store::links::delete_expired(c, now)?
            + store::passkeys::delete_expired_ceremonies(c, now)?
            + store::upstream::delete_expired_logins(c, now)?)
    })
}

pub fn run_once(state: &AppState) {
    let now = state.now();
    // Keeps the query planner's statistics fresh as tables grow (cheap when nothing changed).
    if let Err(e) = state
        .db
        .write_blocking(|c| Ok(c.execute_batch("PRAGMA optimize")?))
    {
        tracing::debug!(error = %e, "PRAGMA optimize failed");
    }
    if let Err(e) = collect_garbage(state, now) {
        tracing::warn!(error = %e, "expiry job failed");
    }
    if let Err(e) = state.keys.maintain(now) {
        tracing::error!(error = %e, "key rotation job failed");
    }
    if let Some(schedule) = backup_schedule(&state.config) {
        let (key_file, _) = crate::crypto::master_key::MasterKey::locate(
            &state.config.master_key_file,
            &state.config.data_dir,
        );
        if let Err(e) = crate::ops::backup::run_scheduled(&state.db, &key_file, &schedule, now) {
            tracing::error!(error = %e, "scheduled backup could not run");
        }
    }
}

/// The configured backup schedule, if any.
pub fn backup_schedule(config: &crate::config::Config) -> Option<crate::ops::backup::Schedule> {
    (!config.backup_dir.is_empty()).then(|| crate::ops::backup::Schedule {
        dir: config.backup_dir.clone().into(),
        interval: i64::try_from(config.backup_interval.as_secs()).unwrap_or(i64::MAX),
        keep: usize::try_from(config.backup_keep).unwrap_or(usize::MAX),
    })
}

/// One pass of back-channel logout deliveries (what the worker runs after each kick).
pub async fn deliver_logouts(state: &AppState) -> Result<usize, StoreError> {
    backchannel_logout::deliver_due(&Delivery {
        db: &state.db,
        keys: &state.keys,
        outbound: &state.outbound,
        issuer: state.config.issuer(),
        clock: state.clock.as_ref(),
    })
    .await
}

/// Starts the periodic jobs: maintenance every minute, back-channel logout deliveries as
/// soon as a sign-out asks (and every few seconds for retries), and a look every second for
/// signing keys changed by another process. Aborting the handle stops them all.
pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    if state.config.is_standby() {
        // A standby writes nothing: it only follows the replica's signing keys.
        return tokio::spawn(async move { follow_signing_keys(&state).await });
    }
    tokio::spawn(async move {
        let maintenance = async {
            // Start-up has just done this work (`server::build_state`): the first run is a
            // minute from now, not at once (racing what tests do with their fixed clock).
            let minute = std::time::Duration::from_secs(60);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + minute, minute);
            loop {
                tick.tick().await;
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || run_once(&s)).await;
            }
        };
        let deliveries = async {
            loop {
                if let Err(e) = deliver_logouts(&state).await {
                    tracing::warn!(error = %e, "back-channel logout delivery failed");
                }
                state
                    .wait_for_logouts(std::time::Duration::from_secs(5))
                    .await;
            }
        };
        tokio::join!(maintenance, deliveries, follow_signing_keys(&state));
    })
}

/// A key change made by another process (the CLI, or the primary of a standby) is served
/// within a second.
async fn follow_signing_keys(state: &Arc<AppState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let s = state.clone();
        let checked = tokio::task::spawn_blocking(move || s.keys.refresh_if_changed(s.now())).await;
        if let Ok(Err(e)) = checked {
            tracing::warn!(error = %e, "signing key check failed");
        }
    }
}

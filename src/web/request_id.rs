//! Request ids: taken from `X-Request-Id` when sane, else made here; set for the whole
//! request by the middleware, shown on error pages and in every log line.

use std::sync::OnceLock;

tokio::task_local! {
    pub(super) static REQUEST_ID: String;
}

/// The current request's id (for error pages and logs), or "-" outside a request.
pub fn current() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "-".into())
}

/// Request ids: a random per-process prefix and a counter (unique, and cheap on hot paths).
pub fn next() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix =
        PREFIX.get_or_init(|| crate::crypto::secret::random_id().chars().take(8).collect());
    format!(
        "{prefix}-{:x}",
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

//! How the store fails, and the two questions callers ask of a failure.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database task failed: {0}")]
    Join(String),
    #[error("{0}")]
    Migration(String),
    #[error("the transaction could not be committed: {0}")]
    Commit(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// A write on a standby, which only reads.
    #[error("this server is a standby: it does not write")]
    ReadOnly,
}

impl StoreError {
    /// SQLITE_BUSY/LOCKED after busy_timeout: the caller may say "temporarily unavailable".
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::ReadOnly)
            || matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    }

    /// A UNIQUE or PRIMARY KEY constraint failed.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    }
}

/// What a surface answers for a store failure: `Busy` (503, "try again in a moment") or
/// `Internal` (500). Every surface's error type asks `StoreError::answer` and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Busy,
    Internal,
}

impl StoreError {
    /// The one classification of a store failure, which also logs it (once, here: the
    /// request's span carries its id).
    pub fn answer(&self) -> Answer {
        tracing::error!(error = %self, "store error");
        if self.is_busy() {
            Answer::Busy
        } else {
            Answer::Internal
        }
    }
}

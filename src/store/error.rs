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
}

impl StoreError {
    /// SQLITE_BUSY/LOCKED after busy_timeout: the caller may say "temporarily unavailable".
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    }

    /// A UNIQUE or PRIMARY KEY constraint failed.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    }
}

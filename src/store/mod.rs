//! The only module with SQL. `Db` wraps an r2d2 pool of SQLite connections; `read` and `write`
//! run a closure on a blocking thread. `write` is one `BEGIN IMMEDIATE` transaction that
//! commits only on `Ok` (a deferred transaction upgrading in WAL mode fails with SQLITE_BUSY
//! whatever the busy_timeout). Nothing inside a closure awaits, hashes or calls the network.
//! Repositories are plain functions over `&Connection`, one file per aggregate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2::{CustomizeConnection, Pool};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

pub mod api_keys;
pub mod audit;
pub mod auth_requests;
pub mod clients;
pub mod codes;
pub mod consents;
pub mod device_codes;
mod error;
pub mod groups;
pub mod links;
mod lock;
pub mod migrate;
pub mod outbox;
pub mod passkeys;
pub mod roles;
pub mod sessions;
pub mod settings;
pub mod signing_keys;
pub mod throttle;
pub mod tokens;
pub mod upstream;
pub mod users;
mod writer;

pub use error::{Answer, StoreError};
pub use lock::{DataDirLock, LOCK_FILE};

#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<Connection, rusqlite::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA foreign_keys = ON;
             PRAGMA synchronous = NORMAL;
             PRAGMA temp_store = MEMORY;",
        )?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(())
    }
}

/// A standby's connections: they only read (`query_only` refuses any write).
#[derive(Debug)]
struct ReadOnlyPragmas;

impl CustomizeConnection<Connection, rusqlite::Error> for ReadOnlyPragmas {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA temp_store = MEMORY;")?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(())
    }
}

#[derive(Clone)]
pub struct Db {
    pool: Pool<SqliteConnectionManager>,
    path: PathBuf,
    /// The one writer of this process (see `writer.rs`: a thread with group commit); none
    /// for a standby, which never writes.
    writer: Option<writer::Writer>,
}

impl Db {
    /// Opens (creating if absent) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // Check the file directly first: a pool retries a broken file until its timeout.
        {
            let probe = Connection::open(path)?;
            migrate::current_version(&probe)?;
            probe
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(|e| {
                    StoreError::Migration(format!("the database file cannot be read: {e}"))
                })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let pool = pool(path, flags, Box::new(Pragmas))?;
        let db = Self {
            pool,
            path: path.to_path_buf(),
            writer: Some(writer::Writer::start(
                open_writer(path)?,
                open_writer(path)?,
            )?),
        };
        {
            let mut conn = db.pool.get()?;
            migrate::migrate(&mut conn)?;
        }
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Runs `f` in one IMMEDIATE transaction on a blocking thread; commits only on `Ok`.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.try_write(f).await
    }

    /// `write` with a domain error type: any `Err` rolls back everything the closure wrote.
    pub async fn try_write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer()?.submit(Box::new(writer::Typed {
            f,
            deliver: move |r| drop(tx.send(r)),
        }))?;
        rx.await
            .map_err(|_| E::from(StoreError::Join("the database writer has stopped".into())))?
    }

    /// `write` for synchronous callers (CLI, benchmarks, background threads).
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.writer()?.now(f)
    }

    /// `try_write` for synchronous callers: one transaction on the calling thread.
    pub fn try_write_blocking<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.writer()?.now(f)
    }

    fn writer(&self) -> Result<&writer::Writer, StoreError> {
        self.writer.as_ref().ok_or(StoreError::ReadOnly)
    }

    /// Whether this is a read-only handle (`open_read_only`).
    pub fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    /// Opens an existing database without ever writing to it (a standby following a
    /// replica): no writer, no migrations, connections with `query_only`. Refused when its
    /// schema is not this binary's.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let pool = pool(path, flags, Box::new(ReadOnlyPragmas))?;
        let db = Self {
            pool,
            path: path.to_path_buf(),
            writer: None,
        };
        let (current, latest) = (
            db.read_blocking(migrate::current_version)?,
            migrate::latest_version(),
        );
        if current != latest {
            return Err(StoreError::Migration(format!(
                "the database is at schema version {current} and this binary's is {latest}: a standby runs the same version as its primary"
            )));
        }
        Ok(db)
    }

    /// `read` for synchronous callers.
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.pool.get()?;
        f(&conn)
    }

    /// A cheap end-to-end check for /health: a connection answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| {
            Ok(c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?)
        })
        .await?;
        Ok(())
    }

    /// Checkpoints the WAL into the main file and empties it (clean shutdown). A long-lived
    /// reader may be in the way: then it gives up after a moment (the WAL is kept, and the
    /// next start carries on from it) and says so.
    pub fn checkpoint(&self) {
        if self.is_read_only() {
            return;
        }
        let Ok(conn) = self.pool.get() else {
            return;
        };
        let _ = conn.busy_timeout(writer::RESTART_WAIT);
        match writer::checkpoint(&conn, "TRUNCATE") {
            Ok(c) if c.busy => tracing::warn!(
                wal_frames = c.log,
                copied = c.checkpointed,
                "final WAL checkpoint could not complete (a reader holds the log); the next start carries on from it"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "final WAL checkpoint failed"),
        }
        let _ = conn.busy_timeout(Duration::from_secs(5));
    }
}

/// The pool of reader connections on `path`, each set up by `customizer`.
fn pool(
    path: &Path,
    flags: OpenFlags,
    customizer: Box<dyn CustomizeConnection<Connection, rusqlite::Error>>,
) -> Result<Pool<SqliteConnectionManager>, StoreError> {
    Pool::builder()
        .max_size(8)
        .min_idle(Some(1))
        // Opening connections and reaping idle ones is rare work: one helper thread, not
        // r2d2's default three (each thread costs idle memory).
        .thread_pool(std::sync::Arc::new(
            scheduled_thread_pool::ScheduledThreadPool::builder()
                .num_threads(1)
                .thread_name_pattern("r2d2-{}")
                .build(),
        ))
        .connection_customizer(customizer)
        .connection_timeout(Duration::from_secs(10))
        // Connections are local files: checking each one on checkout costs a query.
        .test_on_check_out(false)
        .build(SqliteConnectionManager::file(path).with_flags(flags))
        .map_err(|e| {
            StoreError::Migration(format!("cannot open database {}: {}", path.display(), e))
        })
}

/// The writer's own connection, with the same pragmas as the pool's.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    Pragmas.on_acquire(&mut conn)?;
    Ok(conn)
}

/// Reads a JSON text column.
/// `query_row` and `execute` through the connection's statement cache. Every store function
/// runs the same few SQL texts over and over; compiling one again costs more than the indexed
/// lookup it performs (the hot paths of the token endpoint make several per request).
pub(crate) trait CachedSql {
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl CachedSql for Connection {
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

pub(crate) fn json_col<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
pub(crate) fn test_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let db = Db::open(&dir.path().join("t.db")).unwrap_or_else(|e| unreachable!("{e}"));
    (dir, db)
}

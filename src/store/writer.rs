//! The single writer: one thread owns one connection and runs every write closure of this
//! process, with group commit.
//!
//! SQLite allows one writer at a time. Writers that contend sleep in the busy handler
//! (milliseconds each), and every commit rewrites the B-tree pages it touched. So writes queue
//! here instead: the thread takes what is waiting (up to `MAX_BATCH`), runs each closure inside
//! its own SAVEPOINT of one `BEGIN IMMEDIATE` transaction — a closure that returns `Err` is
//! rolled back alone — and commits once. Callers get their result only after that COMMIT, so
//! "one closure = one transaction that commits only on Ok" holds for each caller, while
//! pages shared by a burst of inserts (index roots, interior pages) are written once.
//!
//! Checkpoints (copying the WAL back into the database file, with its fsyncs) run on a thread
//! of their own, never inside a commit: SQLite's automatic checkpoint would stall every queued
//! writer behind the disk every thousand pages.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use rusqlite::Connection;

use super::error::StoreError;

/// A queued write: run it inside the batch, or fail it without running.
pub trait Job: Send {
    /// Runs the closure; returns whether it succeeded and how to deliver its result once the
    /// batch's COMMIT is known (`Some(error)` when the commit failed).
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish);
    /// Delivers `error` without running (the transaction could not begin).
    fn fail(self: Box<Self>, error: &StoreError);
}

pub type Finish = Box<dyn FnOnce(Option<&StoreError>) + Send>;

const MAX_BATCH: usize = 64;

/// The checkpointer copies what accumulated at most this often while writes keep coming.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(250);

/// A WAL longer than this (frames of 4 KiB: 64 MiB) is reset even if writers must wait: under
/// unbroken write load a passive checkpoint may never catch up with the end of the log.
const WAL_LIMIT_FRAMES: i64 = 16_384;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    /// The write connection: the thread holds it per batch; synchronous callers (CLI, jobs)
    /// take it directly for their one transaction.
    conn: Arc<Mutex<Connection>>,
    /// Tells the checkpointer that something was committed (a full slot is enough).
    committed: mpsc::SyncSender<()>,
}

impl Writer {
    /// Starts the writer thread on `conn` and the checkpointer on `checkpoint_conn` (both
    /// already configured with the connection pragmas).
    pub fn start(conn: Connection, checkpoint_conn: Connection) -> Result<Self, StoreError> {
        let spawn_error =
            |e: std::io::Error| StoreError::Join(format!("cannot start the database writer: {e}"));
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let (committed, wake) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn, &wake))
            .map_err(spawn_error)?;
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let conn = Arc::new(Mutex::new(conn));
        let shared = conn.clone();
        let kick = committed.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&shared, queue, &kick))
            .map_err(spawn_error)?;
        Ok(Self {
            jobs,
            conn,
            committed,
        })
    }

    /// One transaction on the calling thread (synchronous callers), committed only on `Ok`.
    pub fn now<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        // A poisoned lock only means a closure panicked; its transaction was rolled back.
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)?;
        match f(&conn) {
            Ok(v) => match conn.execute_batch("COMMIT") {
                Ok(()) => {
                    let _ = self.committed.try_send(());
                    Ok(v)
                }
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(E::from(StoreError::from(e)))
                }
            },
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    pub fn submit(&self, job: Box<dyn Job>) -> Result<(), StoreError> {
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Join("the database writer has stopped".into()))
    }
}

/// A closure and where its result goes.
pub struct Typed<F, D> {
    pub f: F,
    pub deliver: D,
}

impl<T, E, F, D> Job for Typed<F, D>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    D: FnOnce(Result<T, E>) + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish) {
        let Typed { f, deliver } = *self;
        let result = f(conn);
        let ok = result.is_ok();
        let finish: Finish = Box::new(move |commit_error: Option<&StoreError>| {
            deliver(match (result, commit_error) {
                (Ok(_), Some(e)) => Err(E::from(StoreError::Commit(e.to_string()))),
                (r, _) => r,
            })
        });
        (ok, finish)
    }

    fn fail(self: Box<Self>, error: &StoreError) {
        (self.deliver)(Err(E::from(StoreError::Commit(error.to_string()))));
    }
}

fn run(conn: &Mutex<Connection>, queue: mpsc::Receiver<Box<dyn Job>>, kick: &mpsc::SyncSender<()>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        commit_batch(&conn, batch);
        let _ = kick.try_send(());
    }
}

/// Copies committed pages from the WAL into the database file after commits, at most every
/// `CHECKPOINT_PAUSE`; sleeps while nothing is written. A passive checkpoint never blocks the
/// writer or readers; SQLite starts the WAL over once a checkpoint has caught up.
///
/// Over `WAL_LIMIT_FRAMES` a restarting checkpoint tries to start the WAL over; it waits for
/// readers, and writers wait for it, so it gives up after `RESTART_WAIT` — a long-lived reader
/// (a backup, a replication tool such as Litestream) then keeps the WAL growing, which is
/// logged (once a minute), instead of stalling every write for seconds.
fn checkpoint_loop(conn: &Connection, wake: &mpsc::Receiver<()>) {
    let _ = conn.busy_timeout(RESTART_WAIT);
    let mut last_warned: Option<std::time::Instant> = None;
    // After a restart found a reader in the way, the next waits `RESTART_BACKOFF`.
    let mut held_since: Option<std::time::Instant> = None;
    while wake.recv().is_ok() {
        let may_restart = held_since.is_none_or(|t| t.elapsed() > RESTART_BACKOFF);
        match checkpoint(conn, "PASSIVE") {
            Ok(c) if c.log > WAL_LIMIT_FRAMES && may_restart => match checkpoint(conn, "RESTART") {
                Ok(r) if r.busy => {
                    held_since = Some(std::time::Instant::now());
                    if last_warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!(
                            wal_frames = r.log,
                            copied = r.checkpointed,
                            "WAL checkpoint could not complete: a long-lived reader (a backup, a replication tool) holds the log; it keeps growing until the reader lets go"
                        );
                        last_warned = Some(std::time::Instant::now());
                    }
                }
                Ok(_) => held_since = None,
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint (restart) failed"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
}

/// How long a restarting or truncating checkpoint waits for readers before it gives up.
pub const RESTART_WAIT: Duration = Duration::from_millis(100);

/// How long after a restart that found a reader in the way the next is tried.
const RESTART_BACKOFF: Duration = Duration::from_secs(10);

/// What `PRAGMA wal_checkpoint(MODE)` answers.
#[derive(Debug, Clone, Copy)]
pub struct Checkpointed {
    /// The checkpoint could not complete (a reader or writer was in the way).
    pub busy: bool,
    /// Frames in the WAL, and how many of them are now in the database file.
    pub log: i64,
    pub checkpointed: i64,
}

pub fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<Checkpointed> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok(Checkpointed {
            busy: r.get::<_, i64>(0)? != 0,
            log: r.get(1)?,
            checkpointed: r.get(2)?,
        })
    })
}

/// A statement from the connection's cache (these run for every queued write).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

fn commit_batch(conn: &Connection, batch: Vec<Box<dyn Job>>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        // Nothing ran: every caller learns why (e.g. another process held the lock too long).
        let e = StoreError::from(e);
        batch.into_iter().for_each(|job| job.fail(&e));
        return;
    }
    let mut finishes = Vec::with_capacity(batch.len());
    for job in batch {
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            job.fail(&StoreError::from(e));
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| job.run(conn))) {
            Ok((true, finish)) => {
                let _ = exec(conn, "RELEASE job");
                finishes.push(finish);
            }
            Ok((false, finish)) => {
                let _ = exec(conn, "ROLLBACK TO job").and_then(|_| exec(conn, "RELEASE job"));
                finishes.push(finish);
            }
            Err(_) => {
                // A panicking closure is rolled back; its caller sees "writer stopped".
                let _ = exec(conn, "ROLLBACK TO job").and_then(|_| exec(conn, "RELEASE job"));
            }
        }
    }
    match exec(conn, "COMMIT") {
        Ok(_) => finishes.into_iter().for_each(|f| f(None)),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let e = StoreError::from(e);
            finishes.into_iter().for_each(|f| f(Some(&e)));
        }
    }
}

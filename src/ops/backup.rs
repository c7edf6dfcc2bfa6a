//! Backups that always finish and always restore.
//!
//! A backup is a directory with three files: `portcullis.db` (a consistent copy made in one
//! step by `VACUUM INTO`: one read transaction, so writers never make it start over, as
//! SQLite's page-by-page online backup does under load), `master.key` (the key that seals
//! signing keys and provider secrets: without it the copy is useless) and `manifest.json`
//! (format, version, schema, time, SHA-256 and size of each file). It is written into a
//! hidden `.NAME.partial` sibling and renamed into place only when complete, so a killed
//! backup leaves no half-written backup under the real name (and the next run clears the
//! leftover). The directory is 0700 and its files 0600: it holds the master key, so it must be
//! kept as safe as the server itself.
//!
//! `check` verifies a backup without touching any data dir: the manifest's checksums, SQLite's
//! integrity check, a schema this binary understands, and that the key opens every sealed
//! value. `restore` checks first, then replaces the database (and the key) of a data dir no
//! server is running on.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::UnixTime;
use crate::crypto::master_key::MasterKey;
use crate::store::{self, Db};

pub const DATABASE: &str = "portcullis.db";
pub const KEY: &str = "master.key";
pub const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "portcullis-backup 1";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

fn refused(message: impl Into<String>) -> BackupError {
    BackupError::Refused(message.into())
}

/// One file of a backup, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: String,
    pub schema: u32,
    pub created_at: UnixTime,
    pub files: BTreeMap<String, FileSum>,
}

/// What `create` wrote.
#[derive(Debug, Clone)]
pub struct Made {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub seconds: f64,
}

/// Writes a backup of `db` and the key file `key_file` into the new directory `dest`.
pub fn create(db: &Db, key_file: &Path, dest: &Path, now: UnixTime) -> Result<Made, BackupError> {
    let started = Instant::now();
    if dest.exists() {
        return Err(refused(format!(
            "{} already exists; choose a new name (a dated one, for example)",
            dest.display()
        )));
    }
    let partial = partial_path(dest)?;
    if partial.exists() {
        // Left by a backup that was killed: never a backup, only in the way.
        std::fs::remove_dir_all(&partial).map_err(io(format!("removing {}", partial.display())))?;
    }
    private_dir(&partial)?;
    let written = write_into(db, key_file, &partial, now);
    let manifest = match written {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, dest).map_err(io(format!("renaming into {}", dest.display())))?;
    sync_dir(dest.parent().unwrap_or(Path::new(".")));
    Ok(Made {
        dir: dest.to_path_buf(),
        manifest,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The database, the key and the manifest, into `dir`.
fn write_into(
    db: &Db,
    key_file: &Path,
    dir: &Path,
    now: UnixTime,
) -> Result<Manifest, BackupError> {
    let db_copy = dir.join(DATABASE);
    let target = db_copy.to_string_lossy().into_owned();
    db.read_blocking(move |c| {
        c.execute("VACUUM INTO ?1", [&target])?;
        Ok(())
    })?;
    let key = std::fs::read(key_file).map_err(io(format!(
        "reading the master key {} (a backup without it could not be restored)",
        key_file.display()
    )))?;
    write_private(&dir.join(KEY), &key)?;
    let schema = {
        let c = open_read_only(&db_copy)?;
        store::migrate::current_version(&c)?
    };
    let mut files = BTreeMap::new();
    for name in [DATABASE, KEY] {
        files.insert(name.to_string(), sum(&dir.join(name))?);
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        schema,
        created_at: now,
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| refused(format!("the manifest could not be written: {e}")))?;
    write_private(&dir.join(MANIFEST), &text)?;
    for name in [DATABASE, KEY, MANIFEST] {
        if let Ok(f) = std::fs::File::open(dir.join(name)) {
            let _ = f.sync_all();
        }
    }
    sync_dir(dir);
    Ok(manifest)
}

/// What `check` found.
#[derive(Debug, Clone)]
pub struct Checked {
    pub manifest: Manifest,
    /// Sealed values (signing keys, provider secrets) the backup's key opened.
    pub sealed_values: usize,
}

/// Verifies the backup in `dir`: manifest, checksums, integrity, schema, and that its key
/// opens every sealed value of its database.
pub fn check(dir: &Path) -> Result<Checked, BackupError> {
    let text = std::fs::read(dir.join(MANIFEST)).map_err(io(format!(
        "{} is not a Portcullis backup (no {MANIFEST})",
        dir.display()
    )))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| refused(format!("{MANIFEST} cannot be read: {e}")))?;
    if manifest.format != FORMAT {
        return Err(refused(format!(
            "{MANIFEST} is of format {:?}, which this binary does not know",
            manifest.format
        )));
    }
    for name in [DATABASE, KEY] {
        let expected = manifest
            .files
            .get(name)
            .ok_or_else(|| refused(format!("{MANIFEST} lists no {name}")))?;
        if &sum(&dir.join(name))? != expected {
            return Err(refused(format!(
                "{name} does not match its checksum in {MANIFEST}: the backup is damaged"
            )));
        }
    }
    let conn = open_read_only(&dir.join(DATABASE))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(store::StoreError::from)?;
    if integrity != "ok" {
        return Err(refused(format!(
            "{DATABASE} fails SQLite's integrity check: {integrity}"
        )));
    }
    let schema = store::migrate::current_version(&conn)?;
    let latest = store::migrate::latest_version();
    if schema > latest {
        return Err(refused(format!(
            "the backup's database is at schema version {schema}, newer than this binary understands ({latest}); restore it with a newer Portcullis"
        )));
    }
    let key = MasterKey::load_or_create(&dir.join(KEY), false)
        .map_err(|e| refused(format!("{KEY}: {e}")))?;
    let sealed_values = sealed_values_open(&conn, &key)?;
    Ok(Checked {
        manifest,
        sealed_values,
    })
}

/// Counts the sealed values of the database and refuses unless `key` opens every one.
fn sealed_values_open(conn: &Connection, key: &MasterKey) -> Result<usize, BackupError> {
    let (total, opened) = crate::ops::signing_keys::sealed_keys_open(conn, key)?;
    let (t2, o2) = crate::ops::upstream_providers::sealed_secrets_open(conn, key)?;
    if opened < total || o2 < t2 {
        return Err(refused(format!(
            "the backup's {KEY} does not open {} of the {} sealed values of its database",
            total + t2 - opened - o2,
            total + t2
        )));
    }
    Ok(total + t2)
}

/// What `restore` did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub checked: Checked,
    pub database: PathBuf,
    /// Where the key went (`None`: the target's key was already this one).
    pub key_written: Option<PathBuf>,
    /// The database that was there before, kept beside it.
    pub previous: Option<PathBuf>,
}

/// Restores the backup `dir` into `data_dir` (whose key lives at `key_path`; `key_writable`
/// false when it is provided from elsewhere, such as a systemd credential): checks it, then
/// replaces the database (the previous one is kept as `portcullis.db.before-restore-TIME`)
/// and writes the key. Refused while a server runs on `data_dir` (its lock is held).
pub fn restore(
    dir: &Path,
    data_dir: &Path,
    key_path: &Path,
    key_writable: bool,
    now: UnixTime,
) -> Result<Restored, BackupError> {
    let checked = check(dir)?;
    std::fs::create_dir_all(data_dir).map_err(io(format!("creating {}", data_dir.display())))?;
    let _lock = store::DataDirLock::exclusive(data_dir).map_err(refused)?;
    let backup_key = std::fs::read(dir.join(KEY)).map_err(io(format!("reading {KEY}")))?;
    let key_written = match std::fs::read(key_path) {
        Ok(existing) if existing == backup_key => None,
        _ if !key_writable => {
            return Err(refused(format!(
                "the master key at {} is not the backup's, and it is provided from outside the data dir: replace it with the backup's {KEY} first",
                key_path.display()
            )));
        }
        _ => Some(key_path.to_path_buf()),
    };
    let database = data_dir.join(DATABASE);
    let staged = data_dir.join(format!("{DATABASE}.restoring"));
    std::fs::copy(dir.join(DATABASE), &staged)
        .map_err(io(format!("copying into {}", staged.display())))?;
    let previous = if database.exists() {
        let kept = data_dir.join(format!("{DATABASE}.before-restore-{now}"));
        std::fs::rename(&database, &kept).map_err(io(format!("keeping {}", database.display())))?;
        Some(kept)
    } else {
        None
    };
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(data_dir.join(format!("{DATABASE}{side}")));
    }
    std::fs::rename(&staged, &database)
        .map_err(io(format!("moving into {}", database.display())))?;
    if let Some(k) = &key_written {
        write_private(k, &backup_key)?;
    }
    sync_dir(data_dir);
    Ok(Restored {
        checked,
        database,
        key_written,
        previous,
    })
}

/// The backups written by the server's schedule into `dir`, oldest first.
pub fn scheduled_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(SCHEDULED_PREFIX))
                        && p.join(MANIFEST).exists()
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Names of scheduled backups: the prefix, then the time (sorts by age).
pub const SCHEDULED_PREFIX: &str = "portcullis-backup-";

/// The name of a scheduled backup made at `now`.
pub fn scheduled_name(now: UnixTime) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(now).unwrap_or(0));
    let stamp = humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace([':', '-'], "");
    format!("{SCHEDULED_PREFIX}{stamp}")
}

fn partial_path(dest: &Path) -> Result<PathBuf, BackupError> {
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| refused(format!("{} is not a usable backup name", dest.display())))?;
    Ok(dest.with_file_name(format!(".{name}.partial")))
}

fn open_read_only(path: &Path) -> Result<Connection, BackupError> {
    Ok(Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(store::StoreError::from)?)
}

fn sum(path: &Path) -> Result<FileSum, BackupError> {
    let mut f = std::fs::File::open(path).map_err(io(format!("reading {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(io(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        bytes += n as u64;
    }
    Ok(FileSum {
        sha256: hex::encode(hasher.finalize()),
        bytes,
    })
}

fn private_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("protecting {}", dir.display())))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` (0600), through a temporary name and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&tmp)
        .map_err(io(format!("writing {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("writing {}", path.display())))
}

/// Makes a rename in `dir` durable (best effort: not every file system allows it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The server's backup schedule (`backup_dir`, `backup_interval`, `backup_keep`).
#[derive(Debug, Clone)]
pub struct Schedule {
    pub dir: PathBuf,
    pub interval: i64,
    pub keep: usize,
}

/// The last scheduled backup's outcome, as `/health` and the console show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub at: UnixTime,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub bytes: u64,
}

const NEXT_KEY: &str = "backup.next_at";
const STATUS_KEY: &str = "backup.last";

/// The last scheduled backup's outcome, if one ran.
pub fn last_status(conn: &Connection) -> Result<Option<Status>, store::StoreError> {
    Ok(store::settings::get(conn, STATUS_KEY)?.and_then(|t| serde_json::from_str(&t).ok()))
}

/// Runs the scheduled backup when it is due (one process claims it, in the database): writes
/// it into the schedule's directory, keeps the newest `keep`, records the outcome (settings
/// and audit log). `None` when it was not due. Blocking: call from a blocking thread.
pub fn run_scheduled(
    db: &Db,
    key_file: &Path,
    schedule: &Schedule,
    now: UnixTime,
) -> Result<Option<Status>, store::StoreError> {
    let next = now.saturating_add(schedule.interval.max(60));
    if !db.write_blocking(|c| store::settings::claim_due(c, NEXT_KEY, now, next))? {
        return Ok(None);
    }
    let dest = schedule.dir.join(scheduled_name(now));
    let outcome = std::fs::create_dir_all(&schedule.dir)
        .map_err(io(format!("creating {}", schedule.dir.display())))
        .and_then(|()| create(db, key_file, &dest, now));
    let status = match &outcome {
        Ok(made) => Status {
            at: now,
            ok: true,
            path: Some(made.dir.display().to_string()),
            error: None,
            seconds: made.seconds,
            bytes: made.manifest.files.values().map(|f| f.bytes).sum(),
        },
        Err(e) => Status {
            at: now,
            ok: false,
            path: None,
            error: Some(e.to_string()),
            seconds: 0.0,
            bytes: 0,
        },
    };
    if status.ok {
        prune(&schedule.dir, schedule.keep);
    } else {
        tracing::error!(error = ?status.error, "scheduled backup failed");
    }
    let text = serde_json::to_string(&status).unwrap_or_default();
    db.write_blocking(|c| {
        store::settings::put(c, STATUS_KEY, &text)?;
        store::audit::record(
            c,
            &store::audit::NewEvent {
                kind: if status.ok {
                    "backup.completed"
                } else {
                    "backup.failed"
                },
                actor_id: Some("server"),
                detail: serde_json::to_value(&status).ok(),
                ..Default::default()
            },
            now,
        )
    })?;
    Ok(Some(status))
}

/// Deletes all but the newest `keep` scheduled backups in `dir`.
fn prune(dir: &Path, keep: usize) {
    let found = scheduled_in(dir);
    for old in found.iter().take(found.len().saturating_sub(keep.max(1))) {
        if let Err(e) = std::fs::remove_dir_all(old) {
            tracing::warn!(path = %old.display(), error = %e, "could not remove an old backup");
        }
    }
}

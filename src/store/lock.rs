//! The data dir's lock file `portcullis.lock` (an advisory lock, released by the kernel when
//! the process ends, however it ends): every running server holds it shared (several may run
//! on one database), a restore takes it exclusively — so a restore can tell that a server
//! runs on the directory it would replace, and no server starts while it replaces it.

use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "portcullis.lock";

#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
    pub path: PathBuf,
}

impl DataDirLock {
    /// The server's share of the lock (refused only while a restore holds it).
    pub fn shared(data_dir: &Path) -> Result<Self, String> {
        let (file, path) = open(data_dir)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(format!(
                "{} is being restored (its {} is held); start the server when that is done",
                data_dir.display(),
                path.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(format!("cannot lock {}: {e}", path.display()))
            }
        }
    }

    /// The whole lock, or says that a server holds it.
    pub fn exclusive(data_dir: &Path) -> Result<Self, String> {
        let (file, path) = open(data_dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(format!(
                "a Portcullis server is running on {} (it holds {}); stop it first",
                data_dir.display(),
                path.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(format!("cannot lock {}: {e}", path.display()))
            }
        }
    }
}

fn open(data_dir: &Path) -> Result<(std::fs::File, PathBuf), String> {
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    Ok((file, path))
}

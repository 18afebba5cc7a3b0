//! The lock that gives one SQLite store to one process. The writer keeps each model's `seq`
//! in memory, so a second process writing the same file would hand out the same numbers
//! again: the store takes `<db>.lock` when it opens and holds it until it is dropped, and
//! `restore` takes it while it replaces the file, so neither can happen while a server runs.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// The lock file beside the database `db`: `<db>.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The exclusive lock on a store; released when dropped (or when the process ends, however
/// it ends, since the operating system holds it for the open file).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Takes the lock of the database `db` without waiting; refuses with
    /// [`StoreError::InUse`] when another open store (in this process or another) holds it.
    pub fn acquire(db: &Path) -> Result<StoreLock, StoreError> {
        let path = lock_path(db);
        let io = |e: std::io::Error| StoreError::Database(format!("{}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(StoreError::InUse {
                    path: db.display().to_string(),
                    holder: if pid.is_empty() {
                        "a process".to_owned()
                    } else {
                        format!("pid {pid}")
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the message a refused process prints; the lock is what counts.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(StoreLock { _file: file })
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_store_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("jxp.db");
        let first = StoreLock::acquire(&db).unwrap();
        let err = StoreLock::acquire(&db).unwrap_err();
        assert_eq!(
            err,
            StoreError::InUse {
                path: db.display().to_string(),
                holder: format!("pid {}", std::process::id()),
            }
        );
        drop(first);
        StoreLock::acquire(&db).unwrap();
    }
}

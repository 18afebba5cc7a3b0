//! Backups of a SQLite store while a server writes to it, and restoring one. A backup is
//! `VACUUM INTO` on a read-only connection of its own: one read transaction in WAL mode, so
//! the copy is the store as of one commit and the server's writers never wait for it. Both
//! directions write a temporary file beside the target and rename it into place only once it
//! is complete, synced and checked, so a failure never leaves a half-written file under the
//! target's name. Restoring holds the store's lock, so no server can have the file open.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jxp_model::is_ident;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::lock::StoreLock;
use crate::error::StoreError;
use crate::tables::table_name;

/// The tables every jxp store has, whatever its models.
const SYSTEM_TABLES: [&str; 3] = ["jxp_seq", "jxp_changes", "jxp_meta"];

/// Why a backup or a restore did not happen. Nothing was changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    /// The target of a backup exists and replacing it was not asked for.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// The store a restore would replace exists and replacing it was not asked for.
    #[error("the store {} already exists", .0.path.display())]
    StoreExists(Box<Summary>),
    /// The backup would be written over the store it copies, or restored onto itself.
    #[error("{} is the store itself", .0.display())]
    SameFile(PathBuf),
    #[error("{} is not a jxp SQLite store: {reason}", path.display())]
    NotAStore { path: PathBuf, reason: String },
    /// The store is in use by a server (its lock is taken), or cannot be locked.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot copy {}: {source}", path.display())]
    Copy {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a store file holds, to print what was written or what a restore replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub path: PathBuf,
    /// The file's size, with its write-ahead log if it has one.
    pub bytes: u64,
    /// Per model, in name order; `None` when the file cannot be read as a jxp store.
    pub models: Option<Vec<ModelSummary>>,
}

/// One model of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    pub model: String,
    /// Documents not deleted.
    pub documents: u64,
    /// The last change's `seq`: a backup holds every write up to it.
    pub last_seq: u64,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The store that was restored.
    pub store: PathBuf,
    /// The backup that is now the store.
    pub from: Summary,
    /// The store it replaced, if there was one.
    pub replaced: Option<Summary>,
}

/// Copies the store `db` to `dest` as of one commit, while a server may be writing to it.
/// Refuses when `dest` exists unless `overwrite`; answers what `dest` now holds.
pub fn backup(db: &Path, dest: &Path, overwrite: bool) -> Result<Summary, BackupError> {
    if !db.is_file() {
        return Err(BackupError::Missing(db.to_owned()));
    }
    if dest.exists() {
        if same_file(db, dest) {
            return Err(BackupError::SameFile(dest.to_owned()));
        }
        if !overwrite {
            return Err(BackupError::Exists(dest.to_owned()));
        }
    }
    let source = open_read_only(db)?;
    check_system_tables(&source, db)?;
    let tmp = temp_beside(dest, "partial");
    let written = write_checked(&source, &tmp).and_then(|mut summary| {
        rename(&tmp, dest)?;
        summary.path = dest.to_owned();
        Ok(summary)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Makes the backup `file` the store `db`. Refuses while a server holds `db` open, when
/// `file` is not a sound jxp store, and when `db` exists unless `replace` (the error then
/// carries what `db` holds).
pub fn restore(file: &Path, db: &Path, replace: bool) -> Result<Restored, BackupError> {
    if !file.is_file() {
        return Err(BackupError::Missing(file.to_owned()));
    }
    if same_file(file, db) {
        return Err(BackupError::SameFile(file.to_owned()));
    }
    let from = inspect(file, true)?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    // Held until the new file is in place, so no server opens the store in between.
    let lock = StoreLock::acquire(db)?;
    let replaced = db.exists().then(|| {
        inspect(db, false).unwrap_or_else(|_| Summary {
            path: db.to_owned(),
            bytes: size_with_wal(db),
            models: None,
        })
    });
    if let Some(current) = replaced.clone()
        && !replace
    {
        return Err(BackupError::StoreExists(Box::new(current)));
    }
    let tmp = temp_beside(db, "restoring");
    let written = open_read_only(file)
        .and_then(|source| write_checked(&source, &tmp))
        .and_then(|_| {
            retire_old_files(db)?;
            rename(&tmp, db)
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    drop(lock);
    Ok(Restored {
        store: db.to_owned(),
        from,
        replaced,
    })
}

/// What the store file at `path` holds; with `check`, after SQLite's quick integrity check.
pub fn inspect(path: &Path, check: bool) -> Result<Summary, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Missing(path.to_owned()));
    }
    let conn = open_read_only(path)?;
    check_system_tables(&conn, path)?;
    if check {
        let verdict: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(not_a_store(path))?;
        if verdict != "ok" {
            return Err(BackupError::NotAStore {
                path: path.to_owned(),
                reason: format!("its integrity check failed: {verdict}"),
            });
        }
    }
    let models = model_summaries(&conn).map_err(not_a_store(path))?;
    Ok(Summary {
        path: path.to_owned(),
        bytes: size_with_wal(path),
        models: Some(models),
    })
}

/// `VACUUM INTO` `tmp` from `source`, synced and checked; answers what it holds.
fn write_checked(source: &Connection, tmp: &Path) -> Result<Summary, BackupError> {
    remove_if_present(tmp)?;
    let target = tmp.to_str().ok_or_else(|| BackupError::Io {
        what: "write",
        path: tmp.to_owned(),
        source: std::io::Error::other("the path is not valid UTF-8"),
    })?;
    source
        .execute("VACUUM INTO ?1", [target])
        .map_err(|source| BackupError::Copy {
            path: tmp.to_owned(),
            source,
        })?;
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(io("sync", tmp))?;
    inspect(tmp, true)
}

/// Empties the old store's write-ahead log into it and removes what is left beside it: a
/// stale `-wal` next to the new file would be read as its own.
fn retire_old_files(db: &Path) -> Result<(), BackupError> {
    if db.exists() {
        // Best effort: a store too damaged to checkpoint is being replaced anyway.
        if let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE) {
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_present(&with_suffix(db, suffix))?;
    }
    Ok(())
}

fn open_read_only(path: &Path) -> Result<Connection, BackupError> {
    // Without SQLITE_OPEN_CREATE a missing file is an error, not a new empty store.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(not_a_store(path))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(not_a_store(path))?;
    Ok(conn)
}

fn check_system_tables(conn: &Connection, path: &Path) -> Result<(), BackupError> {
    let found: u32 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?1, ?2, ?3)",
            SYSTEM_TABLES,
            |r| r.get(0),
        )
        .map_err(not_a_store(path))?;
    if found == 3 {
        Ok(())
    } else {
        Err(BackupError::NotAStore {
            path: path.to_owned(),
            reason: format!("it lacks the tables {}", SYSTEM_TABLES.join(", ")),
        })
    }
}

fn model_summaries(conn: &Connection) -> Result<Vec<ModelSummary>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT substr(name, 3) FROM sqlite_master
         WHERE type = 'table' AND name LIKE 'm\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let models = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    // A table name is written into SQL only if it is a plain identifier, as every model's is.
    for model in models.into_iter().filter(|m| is_ident(m)) {
        let documents: i64 = conn.query_row(
            &format!(
                "SELECT count(*) FROM {} WHERE _deleted = 0",
                table_name(&model)
            ),
            [],
            |r| r.get(0),
        )?;
        let last_seq: Option<i64> = conn
            .query_row("SELECT seq FROM jxp_seq WHERE model = ?1", [&model], |r| {
                r.get(0)
            })
            .optional()?;
        out.push(ModelSummary {
            model,
            documents: u64::try_from(documents).unwrap_or_default(),
            last_seq: last_seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        });
    }
    Ok(out)
}

fn not_a_store(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |e| BackupError::NotAStore {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `path` with `suffix` appended to its file name, as SQLite names its side files.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A hidden file beside `target`, named for this process, to write before renaming.
fn temp_beside(target: &Path, purpose: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{purpose}-{}", std::process::id()))
}

fn remove_if_present(path: &Path) -> Result<(), BackupError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Renames `from` over `to` and syncs the directory, so the new name survives a crash.
fn rename(from: &Path, to: &Path) -> Result<(), BackupError> {
    std::fs::rename(from, to).map_err(io("write", to))?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Best effort: not every file system can sync a directory, and the data is synced.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

fn size_with_wal(path: &Path) -> u64 {
    [path.to_owned(), with_suffix(path, "-wal")]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path.display(), human_size(self.bytes))?;
        let Some(models) = &self.models else {
            return write!(f, ", not readable as a jxp store");
        };
        let total: u64 = models.iter().map(|m| m.documents).sum();
        write!(f, ", {}", documents(total))?;
        for m in models {
            write!(
                f,
                "\n  {}: {}, last seq {}",
                m.model,
                documents(m.documents),
                m.last_seq
            )?;
        }
        Ok(())
    }
}

fn documents(n: u64) -> String {
    if n == 1 {
        "1 document".to_owned()
    } else {
        format!("{n} documents")
    }
}

/// `1.5 MB`, `12 kB`, `300 bytes`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    // Only one decimal is shown, so the float's rounding of large counts does not matter.
    let mut size = bytes as f64 / 1000.0;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests;

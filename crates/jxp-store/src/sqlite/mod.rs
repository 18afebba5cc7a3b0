//! The SQLite store: WAL mode, one writer thread that batches concurrent write transactions
//! into one SQLite transaction, and a pool of reader connections.

pub mod backup;
mod group;
mod indexes;
mod lock;
mod migrate;
mod read;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jxp_query::{Cell, Filter, Find, Grouping, HashGroups, SqlQuery};
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use tokio::sync::{broadcast, oneshot};

use crate::change::Change;
use crate::error::StoreError;
use crate::import::{ImportError, ImportSteps, Imported};
use crate::spec::{TableSpec, WriteTx};
use crate::tables::Tables;
use crate::{Analyzed, Document, Store};

pub use indexes::{sqlite_index_report, sqlite_sync_indexes};
pub use lock::{StoreLock, lock_path};
use read::ReaderPool;
use write::Command;

/// Settings of the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file; its directory is created if missing.
    pub path: PathBuf,
    /// Reader connections: one per core by default (four at least), so reads run on every
    /// core at once.
    pub readers: usize,
    /// How many changes per model stay in the change log for replay.
    pub retention: u64,
    /// Capacity of the in-process change stream before a slow receiver lags.
    pub stream_capacity: usize,
    /// How the writer's commits reach the disk.
    pub synchronous: Synchronous,
}

/// SQLite's `synchronous` setting for the writer connection, in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Commits survive a crash of the process; the last ones may be lost on power loss or an
    /// operating-system crash (the WAL is synced at checkpoints only).
    #[default]
    Normal,
    /// Every commit waits until the WAL is synced to disk, so it survives power loss too.
    Full,
}

impl Synchronous {
    /// The value `PRAGMA synchronous` takes.
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }

    /// Applies the setting to `conn`.
    fn apply(self, conn: &Connection) -> Result<(), StoreError> {
        conn.execute_batch(&format!("PRAGMA synchronous = {}", self.pragma()))?;
        Ok(())
    }
}

impl SqliteOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: path.into(),
            readers: std::thread::available_parallelism().map_or(4, |n| n.get().max(4)),
            retention: 10_000,
            stream_capacity: 65_536,
            synchronous: Synchronous::Normal,
        }
    }
}

/// The embedded SQLite store.
pub struct SqliteStore {
    writer: std::sync::mpsc::Sender<Command>,
    readers: ReaderPool,
    tables: Arc<Tables>,
    events: broadcast::Sender<Arc<Change>>,
    /// Held until the store is closed or dropped; dropped last, after the connections.
    lock: std::sync::Mutex<Option<StoreLock>>,
}

pub(crate) fn fts_name(model: &str) -> String {
    format!("\"fts_{model}\"")
}

/// Opens a connection with the pragmas every connection needs and the REGEXP function.
pub(crate) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16000;
         PRAGMA mmap_size = 1073741824;",
    )?;
    conn.set_prepared_statement_cache_capacity(256);
    register_regexp(&conn)?;
    Ok(conn)
}

/// `x REGEXP pattern`, with compiled patterns cached per statement by SQLite's auxdata.
fn register_regexp(conn: &Connection) -> Result<(), StoreError> {
    conn.create_scalar_function(
        "regexp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let re: Arc<regex::Regex> = ctx.get_or_create_aux(
                0,
                |vr| -> Result<_, Box<dyn std::error::Error + Send + Sync + 'static>> {
                    let pattern = vr.as_str()?;
                    Ok(regex::RegexBuilder::new(pattern)
                        .size_limit(1 << 20)
                        .build()?)
                },
            )?;
            let text = match ctx.get_raw(1) {
                rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or_default(),
                _ => return Ok(false),
            };
            Ok(re.is_match(text))
        },
    )?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database and starts the writer thread. Refuses with
    /// [`StoreError::InUse`] while another open store, in any process, has the same file.
    pub fn open(options: SqliteOptions) -> Result<Self, StoreError> {
        if let Some(dir) = options.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let lock = StoreLock::acquire(&options.path)?;
        let conn = open_connection(&options.path)?;
        // Only the writer commits, so only its connection needs the setting.
        options.synchronous.apply(&conn)?;
        migrate::create_system_tables(&conn)?;
        let (events, _) = broadcast::channel(options.stream_capacity.max(16));
        let tables = Arc::new(Tables::default());
        let writer = write::spawn(conn, tables.clone(), events.clone(), options.retention)?;
        let readers = ReaderPool::open(&options.path, options.readers.max(1))?;
        Ok(SqliteStore {
            writer,
            readers,
            tables,
            events,
            lock: std::sync::Mutex::new(Some(lock)),
        })
    }

    /// Stops the writer, once the writes already sent are done, and releases the file for
    /// another store to open; every later write answers [`StoreError::Closed`]. Dropping the
    /// store does the same, but whoever still holds it (a task that outlives a server)
    /// decides when that is; a server that stops closes its store instead.
    pub async fn close(&self) {
        // Closed already, the writer answers nothing: it is gone either way.
        let _ = self.command(Command::Close).await;
        drop(jxp_model::sync::lock(&self.lock).take());
    }

    async fn command<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer.send(make(tx)).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self, tables: &[TableSpec]) -> Result<(), StoreError> {
        let specs = tables.to_vec();
        self.command(|reply| Command::Migrate(specs, reply)).await
    }

    async fn get(&self, model: &str, id: &str) -> Result<Option<Document>, StoreError> {
        self.tables.check_model(model)?;
        let (model, id) = (model.to_owned(), id.to_owned());
        self.readers
            .run_short(move |conn| read::get(conn, &model, &id))
            .await
    }

    async fn find(&self, model: &str, find: &Find) -> Result<Vec<Document>, StoreError> {
        self.tables.check_find(model, find)?;
        let (model, find) = (model.to_owned(), find.clone());
        let generated = self.tables.generated(&model);
        self.readers
            .run(move |conn| read::find(conn, &model, &find, generated.as_ref()))
            .await
    }

    async fn count(&self, model: &str, filter: &Filter) -> Result<u64, StoreError> {
        self.tables.check_model(model)?;
        let (model, filter) = (model.to_owned(), filter.clone());
        let generated = self.tables.generated(&model);
        self.readers
            .run(move |conn| read::count(conn, &model, &filter, generated.as_ref()))
            .await
    }

    async fn count_find(&self, model: &str, find: &Find) -> Result<u64, StoreError> {
        self.tables.check_find(model, find)?;
        let (model, find) = (model.to_owned(), find.clone());
        let generated = self.tables.generated(&model);
        self.readers
            .run(move |conn| read::count_find(conn, &model, &find, generated.as_ref()))
            .await
    }

    async fn write(&self, tx: WriteTx) -> Result<Vec<Arc<Change>>, StoreError> {
        self.command(|reply| Command::Write(tx, reply)).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.events.subscribe()
    }

    async fn import(&self, model: &str, steps: ImportSteps) -> Result<Imported, ImportError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Command::Import(model.to_owned(), steps, reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn changes_since(
        &self,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Change>>, StoreError> {
        let model = model.to_owned();
        self.readers
            .run(move |conn| read::changes_since(conn, &model, after, limit))
            .await
    }

    async fn last_seq(&self, model: &str) -> Result<u64, StoreError> {
        let model = model.to_owned();
        self.readers
            .run(move |conn| read::last_seq(conn, &model))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.readers
            .run(|conn| {
                conn.query_row("SELECT 1", [], |_| Ok(()))?;
                Ok(())
            })
            .await
    }

    async fn aggregate(
        &self,
        model: &str,
        grouping: &Grouping,
    ) -> Result<Option<Vec<Vec<Cell>>>, StoreError> {
        if !self.tables.check_grouping(model, grouping)? {
            return Ok(None);
        }
        let (owned, scan) = (model.to_owned(), grouping.clone());
        let ranges = self
            .readers
            .run(move |conn| group::ranges(conn, &owned, &scan))
            .await?;
        // Each range on a reader of its own, side by side, in a share of the table's bytes.
        let share = group::HASH_GROUP_BYTES / ranges.len().max(1);
        let part = |range: Option<(i64, i64)>| {
            let (model, grouping) = (model.to_owned(), grouping.clone());
            self.readers
                .run(move |conn| group::hashed(conn, &model, &grouping, range, share))
        };
        let parts = match ranges.as_slice() {
            [a, b] => {
                let (a, b) = tokio::try_join!(part(*a), part(*b))?;
                vec![a, b]
            }
            _ => vec![part(ranges.first().copied().flatten()).await?],
        };
        let mut merged: Option<HashGroups> = None;
        let mut fits = true;
        for part in parts {
            let Some(part) = part else {
                fits = false;
                break;
            };
            match merged.as_mut() {
                None => merged = Some(part),
                Some(all) => {
                    if all.merge(part).is_err() {
                        fits = false;
                        break;
                    }
                }
            }
        }
        if let (true, Some(all)) = (fits, merged) {
            return Ok(Some(all.finish()));
        }
        // Too many groups for the table: SQLite groups them in its own bounded memory.
        let (model, grouping) = (model.to_owned(), grouping.clone());
        self.readers
            .run(move |conn| group::aggregate(conn, &model, &grouping))
            .await
            .map(Some)
    }

    async fn explain_aggregate(
        &self,
        model: &str,
        grouping: &Grouping,
    ) -> Result<Option<(SqlQuery, Vec<String>)>, StoreError> {
        if !self.tables.check_grouping(model, grouping)? {
            return Ok(None);
        }
        let (model, grouping) = (model.to_owned(), grouping.clone());
        self.readers
            .run(move |conn| group::explain(conn, &model, &grouping))
            .await
            .map(Some)
    }

    async fn explain(
        &self,
        model: &str,
        find: &Find,
        count: bool,
    ) -> Result<Vec<String>, StoreError> {
        self.tables.check_find(model, find)?;
        let (model, find) = (model.to_owned(), find.clone());
        let generated = self.tables.generated(&model);
        self.readers
            .run(move |conn| read::explain(conn, &model, &find, count, generated.as_ref()))
            .await
    }

    async fn analyze(&self, model: &str, find: &Find, count: bool) -> Result<Analyzed, StoreError> {
        self.tables.check_find(model, find)?;
        let (model, find) = (model.to_owned(), find.clone());
        let generated = self.tables.generated(&model);
        self.readers
            .run(move |conn| read::analyze(conn, &model, &find, count, generated.as_ref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronous_sets_the_pragma() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conn = open_connection(&dir.path().join("s.db")).unwrap_or_else(|e| panic!("{e}"));
        let level = |conn: &Connection| -> i64 {
            conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        // SQLite numbers them OFF 0, NORMAL 1, FULL 2.
        assert_eq!(level(&conn), 1);
        Synchronous::Full
            .apply(&conn)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(level(&conn), 2);
        Synchronous::Normal
            .apply(&conn)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(level(&conn), 1);
    }
}

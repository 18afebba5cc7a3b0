//! Storage: the `Store` trait every backend implements, the change log and the change stream.
//!
//! A write is a `WriteTx`: a list of operations applied atomically. Each applied operation
//! appends a `Change` with the next per-model `seq` to the change log in the same transaction,
//! and after COMMIT the changes are published on the change stream in commit order. This crate
//! knows tables, documents and filters; it knows nothing of users, permissions or HTTP.
//!
//! SQLite is always built in; the PostgreSQL store (and the TLS it connects with) only with
//! the `postgres` feature, on by default.

mod change;
mod error;
mod import;
mod indexes;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
mod row;
mod spec;
mod sqlite;
mod tables;

use std::sync::Arc;

use jxp_query::{Cell, Filter, Find, Grouping, SqlQuery};
use tokio::sync::broadcast;

pub use change::{Change, ChangeOp};
pub use error::StoreError;
pub use import::{ImportDoc, ImportError, ImportFeed, ImportStep, ImportSteps, Imported};
pub use indexes::{
    DeclaredIndex, DifferentIndex, ExtraIndex, IndexReport, IndexSync, ModelIndexes,
};
#[cfg(feature = "postgres")]
pub use postgres::{
    PostgresOptions, PostgresStore, postgres_index_report, postgres_schema_url,
    postgres_sync_indexes,
};
pub use spec::{Guard, IndexSpec, RefSpec, TableSpec, WriteOp, WriteTx};
pub use sqlite::backup as sqlite_backup;
pub use sqlite::{
    SqliteOptions, SqliteStore, StoreLock, Synchronous, lock_path, sqlite_index_report,
    sqlite_sync_indexes,
};

/// The macro the `Store` trait is declared with, for crates that implement or wrap a store
/// without depending on `async-trait` themselves.
pub use async_trait::async_trait;

/// A document as stored: a JSON object including the system fields.
pub use jxp_model::Document;

/// The storage interface. Implementations: SQLite (embedded default) and PostgreSQL, under
/// one contract (the store tests run on both).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates or evolves the tables and indexes for these models, keeping existing data.
    async fn migrate(&self, tables: &[TableSpec]) -> Result<(), StoreError>;

    /// One document by `_id`, deleted or not.
    async fn get(&self, model: &str, id: &str) -> Result<Option<Document>, StoreError>;

    /// Documents matching a query, in its order, within its page. With `find.text`, only
    /// documents whose full-text index matches, most relevant first, each with a numeric
    /// `score`; asking that of a model without a text index is an error.
    async fn find(&self, model: &str, find: &Find) -> Result<Vec<Document>, StoreError>;

    /// How many documents match a filter.
    async fn count(&self, model: &str, filter: &Filter) -> Result<u64, StoreError>;

    /// How many documents `find` selects, its text query included, regardless of its order
    /// and page.
    async fn count_find(&self, model: &str, find: &Find) -> Result<u64, StoreError>;

    /// Applies all operations or none; answers the changes they made, in order.
    async fn write(&self, tx: WriteTx) -> Result<Vec<Arc<Change>>, StoreError>;

    /// The change stream: every committed change, in commit order. A receiver that falls
    /// behind gets `Lagged` and recovers the missed changes with `changes_since`.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Change>>;

    /// Retained changes of a model with `seq > after`, oldest first, at most `limit`.
    async fn changes_since(
        &self,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Change>>, StoreError>;

    /// The last `seq` assigned for a model (0 before its first write).
    async fn last_seq(&self, model: &str) -> Result<u64, StoreError>;

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Writes the documents fed through `steps` into `model` in one transaction, once the
    /// feed sends `Commit`; nothing when a document is refused or the feed closes first.
    /// The documents carry their system fields; the core has checked them. The change log
    /// moves on as `import.rs` says.
    async fn import(&self, model: &str, steps: ImportSteps) -> Result<Imported, ImportError> {
        let _ = (model, steps);
        Err(StoreError::Database("this store cannot import".into()).into())
    }

    /// The rows of a `$match` + `$group` run in the database, in the column layout
    /// `jxp_query`'s group rendering documents (`Grouping::decode` reads them); `None` from a
    /// store that cannot, whose caller then groups in memory.
    async fn aggregate(
        &self,
        model: &str,
        grouping: &Grouping,
    ) -> Result<Option<Vec<Vec<Cell>>>, StoreError> {
        let _ = (model, grouping);
        Ok(None)
    }

    /// The statement [`Store::aggregate`] runs and the database's plan for it.
    async fn explain_aggregate(
        &self,
        model: &str,
        grouping: &Grouping,
    ) -> Result<Option<(SqlQuery, Vec<String>)>, StoreError> {
        let _ = (model, grouping);
        Ok(None)
    }

    /// The database's own plan for the query `find` runs (with `count`, the one `count_find`
    /// runs), one line per step, so an operator can see which index serves a query.
    async fn explain(
        &self,
        model: &str,
        find: &Find,
        count: bool,
    ) -> Result<Vec<String>, StoreError>;

    /// The query `explain` plans, run to its end in the database and timed there: its SQL,
    /// its plan and the database's own time (PostgreSQL's `EXPLAIN ANALYZE`; on SQLite the
    /// statement stepped to its last row), with the rows never read out, so the time the
    /// server adds over its database is a number.
    async fn analyze(&self, model: &str, find: &Find, count: bool) -> Result<Analyzed, StoreError>;
}

/// A query run by [`Store::analyze`].
#[derive(Debug, Clone, PartialEq)]
pub struct Analyzed {
    /// The SQL as the store runs it (empty when there was nothing to run).
    pub sql: String,
    /// The plan, one line per step; on PostgreSQL with its actual rows and times.
    pub plan: Vec<String>,
    /// Milliseconds the database spent planning and running it.
    pub database_ms: f64,
}

/// Counts one write batch (one store transaction) and how many writes it carried, for
/// `/metrics`; both stores' writers call it once per transaction.
pub(crate) fn count_batch(writes: usize) {
    metrics::counter!("jxp_store_write_batches_total").increment(1);
    #[allow(clippy::cast_precision_loss)] // a batch holds at most thousands of writes
    metrics::histogram!("jxp_store_write_batch_size").record(writes as f64);
}

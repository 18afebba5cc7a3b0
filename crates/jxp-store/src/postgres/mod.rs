//! The PostgreSQL store: one table per model (the document as `json` beside real columns for
//! the system fields), a connection pool, the change log written in the writing transaction
//! with `seq` from a per-model counter row, and a listener connection that turns the log into
//! this process's change stream, whichever process wrote.
//!
//! Cross-process delivery: a writing transaction calls `pg_notify(channel, 'model:seq …')`
//! (its changes as runs of one model, in op order) before it commits; PostgreSQL delivers
//! notifications at commit, in commit order. Every process `LISTEN`s on a dedicated
//! connection and, for each run, reads the log rows of that model it has not yet published,
//! up to the run's seq, and publishes them in seq order, each exactly once. A process's own
//! writes are usually on its stream before the notification arrives: its writer hands them
//! over after COMMIT when they follow on from what is published (see `listen::Published`).
//! After a lost connection the listener reconnects
//! and catches up from the log. The channel is named after the schema, so several databases
//! of tests can share one server.

mod cancel;
mod group;
mod import;
mod indexes;
mod jsonb;
mod listen;
mod migrate;
mod read;
mod tls;
mod write;

pub(crate) use jsonb::jsonb_text;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod};
use jxp_query::{Cell, Filter, Find, Grouping, SqlQuery};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use indexes::{postgres_index_report, postgres_sync_indexes};

use crate::change::Change;
use crate::error::StoreError;
use crate::import::{ImportError, ImportSteps, Imported};
use crate::spec::{TableSpec, WriteTx};
use crate::tables::Tables;
use crate::{Analyzed, Document, Store};

/// Settings of the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/database?options=…` (no TLS).
    pub url: String,
    /// Most pooled connections.
    pub pool_size: usize,
    /// How many changes per model stay in the change log for replay.
    pub retention: u64,
    /// Capacity of the in-process change stream before a slow receiver lags.
    pub stream_capacity: usize,
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            pool_size: 16,
            retention: 10_000,
            stream_capacity: 65_536,
        }
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    /// For the cancel requests of reads whose callers left.
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    tables: Arc<Tables>,
    events: broadcast::Sender<Arc<Change>>,
    published: Arc<listen::Published>,
    /// The writer task's queue; dropped with the store, which ends the task.
    writer: mpsc::UnboundedSender<write::Queued>,
    /// The notification channel and the change log's retention, for imports.
    channel: String,
    retention: u64,
    /// Dropped with the store, which stops the listener.
    _stop: oneshot::Sender<()>,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => StoreError::Database(format!("{}: {}", db.code().code(), db.message())),
            None => {
                // The cause is often in the source (a TLS handshake refused, and why).
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    why.push_str(": ");
                    why.push_str(&cause.to_string());
                    source = cause.source();
                }
                StoreError::Database(why)
            }
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => {
                let StoreError::Database(why) = StoreError::from(e) else {
                    return StoreError::Database("no database connection".into());
                };
                StoreError::Database(format!("no database connection: {why}"))
            }
            other => StoreError::Database(format!("no database connection: {other}")),
        }
    }
}

/// The notification channel of the schema this connection works in.
fn channel_for(schema: &str) -> String {
    let mut channel = format!("jxp_{schema}");
    while channel.len() > 63 {
        channel.pop();
    }
    channel
}

/// The session settings of the pool's connections, put before any `options` the URL gives so
/// that an operator's own `-c` there still wins:
/// - JIT compilation off. Its threshold is a plan's estimated cost, which a scan of a large
///   table passes at once: a grouping of a million documents spent seconds compiling
///   (inlining and optimising) before it read a row, and a filtered list a tenth of a second,
///   every time, as the compiled code is not kept. jxp's statements are short and varied;
///   none gains.
/// - Notices not sent (`client_min_messages=warning`): every start ran dozens of
///   `CREATE … IF NOT EXISTS` and each answered "already exists, skipping", which the driver
///   logs at INFO, so the log of each start and each `jxp` command was mostly that.
fn session_settings(config: &mut tokio_postgres::Config) {
    const SETTINGS: &str = "-c jit=off -c client_min_messages=warning";
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{SETTINGS} {given}"),
        _ => SETTINGS.to_owned(),
    };
    config.options(&options);
}

/// What each connection of the pool runs once it is made, unless the URL's options choose
/// the setting themselves: plans without parallel workers. A list or count that scans a large
/// table would otherwise start workers (two by default) for each request, which finishes a
/// lone scan sooner but, with many requests at once, spends the machine's cores starting and
/// coordinating them: 8 clients listing an unindexed filter over 1,000,000 documents got 8.1
/// lists a second with them and 13.3 without. Groupings set it back to the server's own
/// setting for their transaction (`group.rs`): one at a time is what they are made for. A
/// session `SET` rather than a `-c` option, so that `DEFAULT` is still the server's value.
fn serial_plans(config: &tokio_postgres::Config) -> Option<&'static str> {
    let chosen = config
        .get_options()
        .is_some_and(|o| o.contains("max_parallel_workers_per_gather"));
    (!chosen).then_some("SET max_parallel_workers_per_gather = 0")
}

impl PostgresStore {
    /// Connects, creates the system tables and functions, and starts the listener; answers
    /// once the listener is listening, so every write made after it is on the stream.
    pub async fn connect(options: PostgresOptions) -> Result<Self, StoreError> {
        let (mut config, tls) = tls::connect_config(&options.url)?;
        session_settings(&mut config);
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let mut builder = Pool::builder(manager).max_size(options.pool_size.max(2));
        if let Some(serial) = serial_plans(&config) {
            builder = builder.post_create(Hook::async_fn(move |client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(serial)
                        .await
                        .map_err(HookError::Backend)
                })
            }));
        }
        let pool = builder
            .build()
            .map_err(|e| StoreError::Database(format!("cannot build the pool: {e}")))?;
        let client = pool.get().await?;
        let schema: Option<String> = client
            .query_one("SELECT current_schema()::text", &[])
            .await?
            .try_get(0)?;
        let schema = schema.ok_or_else(|| {
            StoreError::Database("no schema: search_path names none that exists".into())
        })?;
        migrate::create_system_tables(&client).await?;
        let (events, _) = broadcast::channel(options.stream_capacity.max(16));
        let published = Arc::new(listen::Published::new(
            read::all_seqs(&client).await?,
            events.clone(),
        ));
        drop(client);
        let channel = channel_for(&schema);
        let (stop, stopped) = oneshot::channel();
        listen::start(
            config,
            tls.clone(),
            channel.clone(),
            published.clone(),
            stopped,
        )
        .await?;
        let tables = Arc::new(Tables::default());
        let (writer, queue) = mpsc::unbounded_channel();
        tokio::spawn(write::run_writer(
            pool.clone(),
            tables.clone(),
            channel.clone(),
            options.retention.max(1),
            published.clone(),
            queue,
        ));
        Ok(PostgresStore {
            pool,
            tls: tls.clone(),
            tables,
            events,
            published,
            writer,
            channel,
            retention: options.retention.max(1),
            _stop: stop,
        })
    }
}

impl PostgresStore {
    /// A pooled connection for a read that may run long: cancelled if its caller leaves.
    async fn cancelling(&self) -> Result<cancel::Cancelling, StoreError> {
        Ok(cancel::Cancelling::new(self.pool.get().await?, &self.tls))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self, tables: &[TableSpec]) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let infos = migrate::migrate(&mut client, tables).await?;
        self.tables.extend(infos);
        Ok(())
    }

    async fn get(&self, model: &str, id: &str) -> Result<Option<Document>, StoreError> {
        self.tables.check_model(model)?;
        let client = self.pool.get().await?;
        read::get(&client, model, id).await
    }

    async fn find(&self, model: &str, find: &Find) -> Result<Vec<Document>, StoreError> {
        self.tables.check_find(model, find)?;
        let client = self.cancelling().await?;
        let generated = self.tables.generated(model);
        let answer = read::find(client.client()?, model, find, generated).await;
        client.finished();
        answer
    }

    async fn count(&self, model: &str, filter: &Filter) -> Result<u64, StoreError> {
        self.tables.check_model(model)?;
        let client = self.cancelling().await?;
        let generated = self.tables.generated(model);
        let answer = read::count(client.client()?, model, filter, None, generated).await;
        client.finished();
        answer
    }

    async fn count_find(&self, model: &str, find: &Find) -> Result<u64, StoreError> {
        self.tables.check_find(model, find)?;
        let client = self.cancelling().await?;
        let (text, generated) = (find.text.as_deref(), self.tables.generated(model));
        let answer = read::count(client.client()?, model, &find.filter, text, generated).await;
        client.finished();
        answer
    }

    async fn write(&self, tx: WriteTx) -> Result<Vec<Arc<Change>>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(write::Queued { tx, reply })
            .map_err(|_| StoreError::Closed)?;
        let changes = answer.await.map_err(|_| StoreError::Closed)??;
        // Like SQLite's, a write answers once its changes are on this process's stream.
        let mut targets: Vec<(String, u64)> = Vec::new();
        for c in &changes {
            match targets.iter_mut().find(|(m, _)| *m == c.model) {
                Some(t) => t.1 = t.1.max(c.seq),
                None => targets.push((c.model.clone(), c.seq)),
            }
        }
        self.published
            .wait(&targets, std::time::Duration::from_secs(5))
            .await;
        Ok(changes)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.events.subscribe()
    }

    async fn import(&self, model: &str, steps: ImportSteps) -> Result<Imported, ImportError> {
        let ctx = import::ImportCtx {
            pool: &self.pool,
            tables: &self.tables,
            channel: &self.channel,
            retention: self.retention,
        };
        import::import(ctx, model, steps).await
    }

    async fn changes_since(
        &self,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Change>>, StoreError> {
        let client = self.pool.get().await?;
        read::changes_between(&client, model, after, None, limit, read::Lag::Ignore).await
    }

    async fn last_seq(&self, model: &str) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        read::last_seq(&client, model).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn aggregate(
        &self,
        model: &str,
        grouping: &Grouping,
    ) -> Result<Option<Vec<Vec<Cell>>>, StoreError> {
        if !self.tables.check_grouping(model, grouping)? {
            return Ok(None);
        }
        let client = self.cancelling().await?;
        let generated = self.tables.generated(model);
        let answer = group::aggregate(client.client()?, model, grouping, generated).await;
        // A grouping runs in a transaction; one that failed may have left it open, so its
        // connection is retired rather than pooled.
        if answer.is_ok() {
            client.finished();
        }
        answer.map(Some)
    }

    async fn explain_aggregate(
        &self,
        model: &str,
        grouping: &Grouping,
    ) -> Result<Option<(SqlQuery, Vec<String>)>, StoreError> {
        if !self.tables.check_grouping(model, grouping)? {
            return Ok(None);
        }
        let client = self.pool.get().await?;
        let answer = group::explain(&client, model, grouping, self.tables.generated(model)).await;
        if answer.is_err() {
            // As for `aggregate`: a transaction may be left open on it.
            drop(deadpool_postgres::Object::take(client));
        }
        answer.map(Some)
    }

    async fn explain(
        &self,
        model: &str,
        find: &Find,
        count: bool,
    ) -> Result<Vec<String>, StoreError> {
        self.tables.check_find(model, find)?;
        let client = self.pool.get().await?;
        read::explain(&client, model, find, count, self.tables.generated(model)).await
    }

    async fn analyze(&self, model: &str, find: &Find, count: bool) -> Result<Analyzed, StoreError> {
        self.tables.check_find(model, find)?;
        let client = self.pool.get().await?;
        read::analyze(&client, model, find, count, self.tables.generated(model)).await
    }
}

/// Creates `schema` (if missing) on the server `url` names, and answers a URL whose
/// connections work in it (`search_path`), for running a store in a schema of its own.
pub async fn postgres_schema_url(url: &str, schema: &str) -> Result<String, StoreError> {
    if !schema
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        || schema.is_empty()
    {
        return Err(StoreError::Database(format!("bad schema name {schema}")));
    }
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err(StoreError::Database(
            "a schema can be added to a postgres:// URL only".into(),
        ));
    }
    let (mut config, tls) = tls::connect_config(url)?;
    session_settings(&mut config);
    let (client, conn) = config.connect(tls).await?;
    let driver = tokio::spawn(conn);
    let created = client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await;
    drop(client);
    let _ = driver.await;
    created?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::{serial_plans, session_settings};

    #[test]
    fn lists_plan_without_parallel_workers_unless_the_url_options_choose() {
        let bare = tokio_postgres::Config::from_str("postgres://u@h/db").unwrap();
        assert_eq!(
            serial_plans(&bare),
            Some("SET max_parallel_workers_per_gather = 0")
        );
        let other =
            tokio_postgres::Config::from_str("postgres://u@h/db?options=-c%20work_mem%3D64MB")
                .unwrap();
        assert!(serial_plans(&other).is_some());
        let chosen = tokio_postgres::Config::from_str(
            "postgres://u@h/db?options=-c%20max_parallel_workers_per_gather%3D4",
        )
        .unwrap();
        assert_eq!(serial_plans(&chosen), None);
    }

    #[test]
    fn jit_and_notices_are_off_unless_the_url_options_turn_them_on() {
        let mut bare = tokio_postgres::Config::from_str("postgres://u@h/db").unwrap();
        session_settings(&mut bare);
        assert_eq!(
            bare.get_options(),
            Some("-c jit=off -c client_min_messages=warning")
        );
        let mut given =
            tokio_postgres::Config::from_str("postgres://u@h/db?options=-c%20work_mem%3D64MB")
                .unwrap();
        session_settings(&mut given);
        assert_eq!(
            given.get_options(),
            Some("-c jit=off -c client_min_messages=warning -c work_mem=64MB")
        );
        let mut on =
            tokio_postgres::Config::from_str("postgres://u@h/db?options=-c%20jit%3Don").unwrap();
        session_settings(&mut on);
        // PostgreSQL applies `-c` settings in order: the operator's comes last and wins.
        assert_eq!(
            on.get_options(),
            Some("-c jit=off -c client_min_messages=warning -c jit=on")
        );
    }
}

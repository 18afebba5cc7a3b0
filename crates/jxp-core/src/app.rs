//! `App`: the schema, the store and the settings, shared by every request and connection.
//! What the app holds lives below it and knows nothing of it; everything that acts through
//! the app (reads, the write path, auth, hooks' runs, bulk, queries) is a method of `App` in a
//! module above it. The one exception is the function registry's context, `CallCtx`: a
//! function is handed the app itself, and the app holds the functions, so the context is
//! declared here and the registry is generic over it.
//!
//! The store is the core's own: only `commit()` writes, and outside the crate the app offers
//! the store's reads ([`StoreReader`]), its change stream and a health check, never its writes.

use std::sync::Arc;

use jxp_model::{Document, Model, Schema};
use jxp_query::{Filter, Find};
use jxp_store::{Change, Store, StoreError};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::auth::cache::{IDENTITY_MODELS, IdentityCache};
use crate::auth::ratelimit::RateLimiter;
use crate::auth::settings::AuthSettings;
use crate::error::CoreError;
use crate::hooks::{CallVerb, Registry};
use crate::identity::Identity;
use crate::realtime::{Hub, RealtimeSettings, spawn_hub};
use crate::tables::table_specs;

/// The registry of hooks and functions an application registers, as the app holds it.
pub type Hooks = Registry<CallCtx>;

/// What a function sees. Writes it makes through `app` take the one write path, with its
/// permissions, hooks, change-log entries and events.
#[derive(Clone)]
pub struct CallCtx {
    pub app: App,
    pub identity: Identity,
    pub model: String,
    pub function: String,
    pub verb: CallVerb,
    /// The document of `/call/:model/:id/:fn`, as the caller may read it.
    pub item: Option<Document>,
    /// A POST's JSON body, or a GET's query string as an object of strings.
    pub body: Value,
}

/// Query limits of JXP's `api.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryLimits {
    pub enabled: bool,
    pub large_collection_threshold: u64,
    pub max: u64,
    pub default: u64,
    pub skip_count_unless_paginated: bool,
    /// Bytes; 0 disables the check.
    pub max_response_size: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            enabled: true,
            large_collection_threshold: 10_000,
            max: 1000,
            default: 100,
            skip_count_unless_paginated: true,
            max_response_size: 10 * 1024 * 1024,
        }
    }
}

/// `10mb`, `512kb`, `10M`, `1g` or a byte count, as JXP writes sizes; `0` disables.
pub fn parse_size(raw: &str) -> Option<u64> {
    let s = raw.trim().to_ascii_lowercase();
    let digits_end = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let n: f64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * mult;
    (bytes.is_finite() && bytes >= 0.0).then_some(bytes as u64)
}

impl QueryLimits {
    /// These limits with a model's `query_limits` option laid over them (unknown keys and
    /// values of the wrong type are ignored).
    pub fn for_model(&self, model: &Model) -> QueryLimits {
        let mut out = self.clone();
        let Some(opts) = &model.options.query_limits else {
            return out;
        };
        let num = |k: &str| {
            opts.get(k)
                .and_then(serde_json::Value::as_u64)
                .filter(|n| *n > 0)
        };
        let flag = |k: &str| opts.get(k).and_then(serde_json::Value::as_bool);
        if let Some(v) = flag("enabled") {
            out.enabled = v;
        }
        if let Some(v) = flag("skip_count_unless_paginated") {
            out.skip_count_unless_paginated = v;
        }
        if let Some(v) = num("large_collection_threshold") {
            out.large_collection_threshold = v;
        }
        if let Some(v) = num("max") {
            out.max = v;
        }
        if let Some(v) = num("default") {
            out.default = v;
        }
        match opts.get("max_response_size") {
            Some(serde_json::Value::Number(n)) => {
                out.max_response_size = n.as_u64().unwrap_or(out.max_response_size)
            }
            Some(serde_json::Value::String(s)) => {
                out.max_response_size = parse_size(s).unwrap_or(out.max_response_size)
            }
            _ => {}
        }
        out
    }
}

/// Settings the core needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bcrypt_cost: u32,
    pub query_limits: QueryLimits,
    pub auth: AuthSettings,
    pub realtime: RealtimeSettings,
    /// Bytes of documents one aggregation, populate or bulk match may build in memory
    /// (`QUERY_MEMORY_LIMIT`); 0 disables the check.
    pub query_memory_limit: u64,
    /// How long one aggregation, populate or bulk match read may run (`QUERY_TIMEOUT`); zero
    /// disables the check.
    pub query_timeout: std::time::Duration,
    /// Keep counts between writes to their model (`COUNT_CACHE_ENABLED`, on by default; see
    /// `counts.rs`).
    pub count_cache: bool,
    /// The application's hooks and functions (none for the `jxp` binary).
    pub hooks: Hooks,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bcrypt_cost: 10,
            query_limits: QueryLimits::default(),
            auth: AuthSettings::default(),
            realtime: RealtimeSettings::default(),
            query_memory_limit: 64 * 1024 * 1024,
            query_timeout: std::time::Duration::from_secs(30),
            count_cache: true,
            hooks: Hooks::default(),
        }
    }
}

/// The application: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct App {
    pub(crate) inner: Arc<Inner>,
}

/// A handle on an app that does not keep it alive: what the app's own hooks hold when they
/// call back into it (a strong handle there would be a cycle through the app's settings).
#[derive(Clone)]
pub struct WeakApp(std::sync::Weak<Inner>);

impl WeakApp {
    /// The app, while it is alive.
    pub fn upgrade(&self) -> Option<App> {
        self.0.upgrade().map(|inner| App { inner })
    }
}

pub(crate) struct Inner {
    pub schema: Arc<Schema>,
    pub store: Arc<dyn Store>,
    pub settings: Settings,
    /// Shared by `/login`, recovery and WebSocket `auth`.
    pub limiter: RateLimiter,
    /// A hash checked when a login names an unknown email, so it costs as much as a wrong
    /// password.
    pub dummy_hash: tokio::sync::OnceCell<String>,
    pub identities: IdentityCache,
    pub hub: Hub,
    pub generations: Arc<Generations>,
    /// Counts kept between writes.
    pub counts: crate::counts::Counts,
}

/// Two counters per model that move with every write to it, for readers that keep answers
/// about a model: `begun` before the store is asked to write, `done` once it has answered.
/// An answer is filed under the generation [`Generations::snapshot`] gave before it was read,
/// and only when no write was under way then (the answer might or might not hold such a
/// write); it holds while a later snapshot gives the same generation. So a cached answer is
/// never older than a write that has begun, even before the write commits.
pub(crate) struct Generations(std::collections::HashMap<String, Counters>);

#[derive(Default)]
struct Counters {
    begun: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
}

impl Generations {
    fn new(schema: &Schema) -> Self {
        Generations(
            schema
                .models
                .keys()
                .map(|k| (k.clone(), Counters::default()))
                .collect(),
        )
    }

    /// A write to `models` is under way until the answer is dropped: their cached answers are
    /// stale from now on, and none is filed meanwhile. Dropped when the store has answered,
    /// committed or not, or when the writing future is (then the change on the store's
    /// stream makes the answers stale again, should the write still land).
    pub(crate) fn writing<'a>(&'a self, models: &'a [String]) -> Writing<'a> {
        for model in models {
            if let Some(c) = self.0.get(model) {
                c.begun.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        Writing {
            generations: self,
            models,
        }
    }

    /// A write learnt of once committed (another process's, or one the stream lost).
    pub(crate) fn bump(&self, model: &str) {
        if let Some(c) = self.0.get(model) {
            c.begun.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            c.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The generation to file an answer about `model` under, read before the answer is:
    /// `None` while a write to it is under way.
    pub(crate) fn snapshot(&self, model: &str) -> Option<u64> {
        use std::sync::atomic::Ordering::SeqCst;
        let c = self.0.get(model)?;
        // `done` first: a write counted done was begun before, so equal counts mean every
        // write begun by the second read had been answered by the first.
        let done = c.done.load(SeqCst);
        let begun = c.begun.load(SeqCst);
        (done == begun).then_some(begun)
    }
}

/// Writes under way, from [`Generations::writing`]: each model's is done when this is dropped.
pub(crate) struct Writing<'a> {
    generations: &'a Generations,
    models: &'a [String],
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        for model in self.models {
            if let Some(c) = self.generations.0.get(model) {
                c.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
}

/// Keeps the caches true to writes made by any process on the same database: every change on
/// the store's stream moves its model's generation, and a change to a model that decides
/// identities empties the identity cache. (`App::commit` does the same synchronously for
/// this process's own writes, so they are read back at once.) A receiver that lagged has
/// missed changes it cannot name, so everything is invalidated. It also sets the
/// `jxp_model_last_seq` gauge, since it sees every change once. Ends with the app.
async fn invalidate_on_changes(
    inner: std::sync::Weak<Inner>,
    mut changes: tokio::sync::broadcast::Receiver<Arc<jxp_store::Change>>,
) {
    use tokio::sync::broadcast::error::RecvError;
    // One gauge handle per model, made at its first change, so a change allocates nothing.
    let mut last_seq: std::collections::HashMap<String, metrics::Gauge> =
        std::collections::HashMap::new();
    loop {
        let received = changes.recv().await;
        let Some(inner) = inner.upgrade() else { return };
        match received {
            Ok(change) => {
                inner.generations.bump(&change.model);
                #[allow(clippy::cast_precision_loss)] // a seq stays far below 2^53
                let seq = change.seq as f64;
                match last_seq.get(&change.model) {
                    Some(gauge) => gauge.set(seq),
                    None => {
                        let gauge =
                            metrics::gauge!("jxp_model_last_seq", "model" => change.model.clone());
                        gauge.set(seq);
                        last_seq.insert(change.model.clone(), gauge);
                    }
                }
                if IDENTITY_MODELS.contains(&change.model.as_str()) {
                    inner.identities.invalidate();
                }
            }
            Err(RecvError::Lagged(_)) => {
                for model in inner.schema.models.keys() {
                    inner.generations.bump(model);
                }
                inner.identities.invalidate();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

impl App {
    /// Builds the app and brings the store's tables in line with the schema.
    pub async fn new(
        schema: Schema,
        store: Arc<dyn Store>,
        settings: Settings,
    ) -> Result<Self, CoreError> {
        store
            .migrate(&table_specs(&schema))
            .await
            .map_err(|e| match e {
                jxp_store::StoreError::Migration { model, reason } => {
                    CoreError::Internal(format!("cannot migrate model {model}: {reason}"))
                }
                other => other.into(),
            })?;
        // A name in `callable` with nothing registered answers 404 on `/call`; say so now.
        for (slug, model) in &schema.models {
            for name in &model.options.callable {
                if !settings.hooks.has_function(slug, name) {
                    tracing::warn!(
                        model = %slug,
                        function = %name,
                        "listed in callable but no function is registered under that name: /call answers 404"
                    );
                }
            }
        }
        let generations = Arc::new(Generations::new(&schema));
        let schema = Arc::new(schema);
        let changes = store.subscribe();
        let hub = spawn_hub(
            schema.clone(),
            store.clone(),
            settings.realtime.clone(),
            generations.clone(),
        );
        let inner = Arc::new(Inner {
            schema,
            store,
            limiter: RateLimiter::new(settings.auth.rate_limit.clone()),
            settings,
            dummy_hash: tokio::sync::OnceCell::new(),
            identities: IdentityCache::new()?,
            hub,
            generations,
            counts: crate::counts::Counts::default(),
        });
        tokio::spawn(invalidate_on_changes(Arc::downgrade(&inner), changes));
        Ok(App { inner })
    }

    pub fn schema(&self) -> &Schema {
        &self.inner.schema
    }

    /// A handle that does not keep the app alive.
    pub fn downgrade(&self) -> WeakApp {
        WeakApp(Arc::downgrade(&self.inner))
    }

    /// The store, for the core's own reads; writes go through `commit()` only.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The store's reads, for tools and tests that look at what is stored as it is (deleted
    /// documents and private fields included, no permissions): it cannot write.
    pub fn reader(&self) -> StoreReader<'_> {
        StoreReader(self.inner.store.as_ref())
    }

    /// Every committed change from now on, in commit order.
    pub fn changes(&self) -> broadcast::Receiver<Arc<Change>> {
        self.inner.store.subscribe()
    }

    /// A round trip to the store, for health checks.
    pub async fn ping(&self) -> Result<(), CoreError> {
        self.inner
            .store
            .ping()
            .await
            .map_err(|e| CoreError::Internal(format!("the store does not answer: {e}")))
    }

    /// The generation to file a cached answer about `model` under, taken before the answer is
    /// read, and to find one filed under: it moves as soon as a write to the model begins, so
    /// an answer filed under it is stale once it has moved. `None` while a write to the model
    /// is under way (an answer read then may or may not hold it): nothing is cached or used.
    pub fn generation(&self, model: &str) -> Option<u64> {
        self.inner.generations.snapshot(model)
    }

    /// The realtime hub, for WebSocket connections.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The query limits that apply to a model: the server's, with the model's own over them.
    pub fn query_limits(&self, slug: &str) -> QueryLimits {
        match self.inner.schema.get(slug) {
            Some(model) => self.inner.settings.query_limits.for_model(model),
            None => self.inner.settings.query_limits.clone(),
        }
    }

    /// The model served at `slug`, or `UnknownModel`.
    pub fn model(&self, slug: &str) -> Result<&Arc<Model>, CoreError> {
        self.inner
            .schema
            .get(slug)
            .ok_or_else(|| CoreError::UnknownModel(slug.to_owned()))
    }
}

/// The reads of the store, and nothing else.
#[derive(Clone, Copy)]
pub struct StoreReader<'a>(&'a dyn Store);

impl StoreReader<'_> {
    /// A stored document by id, as stored.
    pub async fn get(&self, model: &str, id: &str) -> Result<Option<Document>, StoreError> {
        self.0.get(model, id).await
    }

    /// How many stored documents match `filter`.
    pub async fn count(&self, model: &str, filter: &Filter) -> Result<u64, StoreError> {
        self.0.count(model, filter).await
    }

    /// The stored documents `find` selects.
    pub async fn find(&self, model: &str, find: &Find) -> Result<Vec<Document>, StoreError> {
        self.0.find(model, find).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jxp_model::{ModelOptions, Perms};
    use serde_json::json;

    #[test]
    fn nothing_is_filed_while_a_write_is_under_way_and_a_write_moves_the_generation() {
        let generations = Generations(
            [("m".to_owned(), Counters::default())]
                .into_iter()
                .collect(),
        );
        let m = ["m".to_owned()];
        let before = generations.snapshot("m");
        assert_eq!(before, Some(0));
        let writing = generations.writing(&m);
        assert_eq!(generations.snapshot("m"), None, "a write is under way");
        let second = generations.writing(&m);
        drop(writing);
        assert_eq!(generations.snapshot("m"), None, "one is still under way");
        drop(second);
        assert_eq!(generations.snapshot("m"), Some(2));
        // A write learnt of afterwards moves it on at once.
        generations.bump("m");
        assert_eq!(generations.snapshot("m"), Some(3));
        // Unknown models have no generation: nothing about them is kept.
        assert_eq!(generations.snapshot("other"), None);
    }

    #[test]
    fn sizes_and_model_overrides() {
        assert_eq!(parse_size("10mb"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("512kb"), Some(512 * 1024));
        assert_eq!(parse_size("2048"), Some(2048));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("ten"), None);
        let options = ModelOptions {
            query_limits:
                json!({"max": 5, "max_response_size": "1kb", "enabled": false, "bogus": 1})
                    .as_object()
                    .cloned(),
            ..ModelOptions::default()
        };
        let model = Model {
            slug: "m".into(),
            name: "M".into(),
            fields: vec![],
            perms: Perms::default(),
            options,
            builtin: false,
        };
        let limits = QueryLimits::default().for_model(&model);
        assert_eq!(
            (
                limits.max,
                limits.max_response_size,
                limits.enabled,
                limits.default
            ),
            (5, 1024, false, 100)
        );
    }

    #[tokio::test]
    async fn a_dropped_app_lets_go_of_its_store() {
        let dir = std::env::temp_dir().join(format!(
            "jxp-core-drop-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let store: Arc<dyn Store> = Arc::new(
            jxp_store::SqliteStore::open(jxp_store::SqliteOptions::new(dir.join("db"))).unwrap(),
        );
        let settings = Settings {
            realtime: RealtimeSettings {
                shards: 3,
                ..RealtimeSettings::default()
            },
            ..Settings::default()
        };
        let app = App::new(Schema::default(), store.clone(), settings)
            .await
            .unwrap();
        assert!(Arc::strong_count(&store) > 1);
        drop(app);
        // The hub's shards end once nothing can send them a command, and drop their handles on
        // the store as they go.
        let released = async {
            while Arc::strong_count(&store) > 1 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), released)
            .await
            .expect("the hub kept the store after the app was dropped");
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}

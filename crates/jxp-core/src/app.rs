//! `App`: the schema, the store and the settings, shared by every request and connection.

use std::sync::Arc;

use jxp_model::{Model, Schema};
use jxp_store::Store;

use crate::auth::{AuthSettings, IdentityCache, RateLimiter};
use crate::error::CoreError;
use crate::realtime::{Hub, RealtimeSettings, spawn_hub};
use crate::tables::table_specs;

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

/// Settings the core needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bcrypt_cost: u32,
    pub query_limits: QueryLimits,
    pub auth: AuthSettings,
    pub realtime: RealtimeSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bcrypt_cost: 10,
            query_limits: QueryLimits::default(),
            auth: AuthSettings::default(),
            realtime: RealtimeSettings::default(),
        }
    }
}

/// The application: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct App {
    pub(crate) inner: Arc<Inner>,
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
    pub generations: Generations,
}

/// A counter per model that moves on every committed write to it: readers that cache a
/// model's answers compare it to know they are stale.
pub(crate) struct Generations(std::collections::HashMap<String, std::sync::atomic::AtomicU64>);

impl Generations {
    fn new(schema: &Schema) -> Self {
        Generations(
            schema
                .models
                .keys()
                .map(|k| (k.clone(), std::sync::atomic::AtomicU64::new(0)))
                .collect(),
        )
    }

    pub(crate) fn bump(&self, model: &str) {
        if let Some(g) = self.0.get(model) {
            g.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    fn get(&self, model: &str) -> u64 {
        self.0
            .get(model)
            .map_or(0, |g| g.load(std::sync::atomic::Ordering::Acquire))
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
        let generations = Generations::new(&schema);
        let schema = Arc::new(schema);
        let hub = spawn_hub(schema.clone(), store.clone(), settings.realtime.clone());
        Ok(App {
            inner: Arc::new(Inner {
                schema,
                store,
                limiter: RateLimiter::new(settings.auth.rate_limit.clone()),
                settings,
                dummy_hash: tokio::sync::OnceCell::new(),
                identities: IdentityCache::new()?,
                hub,
                generations,
            }),
        })
    }

    pub fn schema(&self) -> &Schema {
        &self.inner.schema
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// How many committed writes `model` has seen in this process: a cached answer about the
    /// model is stale once this moves.
    pub fn generation(&self, model: &str) -> u64 {
        self.inner.generations.get(model)
    }

    /// The realtime hub, for WebSocket connections.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The model served at `slug`, or `UnknownModel`.
    pub fn model(&self, slug: &str) -> Result<&Arc<Model>, CoreError> {
        self.inner
            .schema
            .get(slug)
            .ok_or_else(|| CoreError::UnknownModel(slug.to_owned()))
    }
}

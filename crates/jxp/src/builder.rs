//! The library's front door: `Server::builder()` takes the models and the settings, registers
//! hooks and functions, and starts or serves. The `jxp` binary is this builder with nothing
//! registered.

use std::future::Future;
use std::path::PathBuf;

use jxp_core::{
    App, CallCtx, HookError, Hooks, LoggedInCtx, LoginCtx, ModelScope, ReadCtx, ReadEvent,
    WriteCtx, WriteEvent, WrittenCtx,
};
use jxp_model::Document;
use jxp_query::Filter;
use serde_json::Value;

use crate::{Config, Running, build_app, start};

/// The jxp server, as a library.
///
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// use jxp::{HookError, Server, WriteEvent};
///
/// let running = Server::builder()
///     .models("./models")
///     .pre_write(WriteEvent::Post, "todo", |ctx| async move {
///         if ctx.doc.get("title").and_then(|t| t.as_str()) == Some("") {
///             return Err(HookError::bad_request("a todo needs a title"));
///         }
///         Ok(ctx.doc)
///     })
///     .start()
///     .await?;
/// println!("listening on {}", running.addr);
/// # Ok(()) }
/// ```
pub struct Server;

impl Server {
    pub fn builder() -> Builder {
        Builder::default()
    }
}

/// Collects the settings, the model directory and the hooks of a server.
#[derive(Default)]
pub struct Builder {
    config: Option<Config>,
    models: Option<PathBuf>,
    hooks: Hooks,
}

impl Builder {
    /// The settings (without it: `Config::from_env()` when the server is built).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// The model directory, over the settings' `MODEL_DIR`.
    pub fn models(mut self, dir: impl Into<PathBuf>) -> Self {
        self.models = Some(dir.into());
        self
    }

    /// Replaces every hook and function registered so far with `hooks`.
    pub fn hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// See [`Hooks::pre_write`].
    pub fn pre_write<F, Fut>(
        mut self,
        event: WriteEvent,
        model: impl Into<ModelScope>,
        f: F,
    ) -> Self
    where
        F: Fn(WriteCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Document, HookError>> + Send + 'static,
    {
        self.hooks.pre_write(event, model, f);
        self
    }

    /// See [`Hooks::pre_read`].
    pub fn pre_read<F, Fut>(mut self, event: ReadEvent, model: impl Into<ModelScope>, f: F) -> Self
    where
        F: Fn(ReadCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Filter, HookError>> + Send + 'static,
    {
        self.hooks.pre_read(event, model, f);
        self
    }

    /// See [`Hooks::post_write`].
    pub fn post_write<F, Fut>(
        mut self,
        event: WriteEvent,
        model: impl Into<ModelScope>,
        f: F,
    ) -> Self
    where
        F: Fn(WrittenCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.post_write(event, model, f);
        self
    }

    /// See [`Hooks::pre_login`].
    pub fn pre_login<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(LoginCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.pre_login(f);
        self
    }

    /// See [`Hooks::post_login`].
    pub fn post_login<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(LoggedInCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Document, HookError>> + Send + 'static,
    {
        self.hooks.post_login(f);
        self
    }

    /// See [`Hooks::function`].
    pub fn function<F, Fut>(mut self, model: &str, name: &str, f: F) -> Self
    where
        F: Fn(CallCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, HookError>> + Send + 'static,
    {
        self.hooks.function(model, name, f);
        self
    }

    /// The settings the server will run with, hooks included.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let mut config = match self.config {
            Some(c) => c,
            None => Config::from_env()?,
        };
        if let Some(dir) = self.models {
            config.model_dir = dir;
        }
        config.core.hooks = self.hooks;
        Ok(config)
    }

    /// Loads the models and opens the store, without listening (for tests and tools).
    pub async fn build(self) -> anyhow::Result<App> {
        build_app(&self.into_config()?).await
    }

    /// Binds `HOST:PORT` (port 0 picks a free one) and serves in the background.
    pub async fn start(self) -> anyhow::Result<Running> {
        start(self.into_config()?).await
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        crate::serve(self.into_config()?, shutdown).await
    }
}

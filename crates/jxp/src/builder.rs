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

use crate::{Config, Error, Running, build_app, start};

/// The jxp server, as a library.
///
/// ```no_run
/// # async fn run() -> Result<(), jxp::Error> {
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

/// Builder methods that register a hook or function: each passes its arguments and `f` on to
/// the method of the same name of [`Hooks`].
macro_rules! delegate {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) $ctx:ty => $out:ty;)*) => {$(
        $(#[$doc])*
        pub fn $name<F, Fut>(mut self, $($arg: $ty,)* f: F) -> Self
        where
            F: Fn($ctx) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<$out, HookError>> + Send + 'static,
        {
            self.hooks.$name($($arg,)* f);
            self
        }
    )*};
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

    delegate! {
        /// See [`Hooks::pre_write`].
        pre_write(event: WriteEvent, model: impl Into<ModelScope>) WriteCtx => Document;
        /// See [`Hooks::pre_read`].
        pre_read(event: ReadEvent, model: impl Into<ModelScope>) ReadCtx => Filter;
        /// See [`Hooks::post_write`].
        post_write(event: WriteEvent, model: impl Into<ModelScope>) WrittenCtx => ();
        /// See [`Hooks::pre_login`].
        pre_login() LoginCtx => ();
        /// See [`Hooks::post_login`].
        post_login() LoggedInCtx => Document;
        /// See [`Hooks::function`].
        function(model: &str, name: &str) CallCtx => Value;
    }

    /// The settings the server will run with, hooks included.
    pub fn into_config(self) -> Result<Config, Error> {
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
    pub async fn build(self) -> Result<App, Error> {
        build_app(&self.into_config()?).await
    }

    /// Binds `HOST:PORT` (port 0 picks a free one) and serves in the background.
    pub async fn start(self) -> Result<Running, Error> {
        start(self.into_config()?).await
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        crate::serve(self.into_config()?, shutdown).await
    }
}

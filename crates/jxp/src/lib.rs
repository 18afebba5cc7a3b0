//! The `jxp` server as a library: [`Server::builder()`] takes the models and the settings,
//! registers hooks and callable functions, and serves; below it, start-up (models → store →
//! app → listener), `init` and `add-admin`. The binary is the builder with nothing registered,
//! and the integration tests start the server through the same functions.

mod builder;
mod config;
mod init;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use jxp_core::WriteOptions;
use jxp_http::AppState;
#[cfg(feature = "postgres")]
use jxp_store::{PostgresOptions, PostgresStore};
use jxp_store::{SqliteOptions, SqliteStore, Store};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use builder::{Builder, Server};
pub use config::{Config, ConfigError, Database, LogFormat};
pub use init::init_project;
pub use jxp_core::{
    App, CallCtx, CallVerb, HookError, Hooks, Identity, LoggedInCtx, LoginCtx, ModelScope, ReadCtx,
    ReadEvent, User, WriteCtx, WriteEvent, WrittenCtx,
};
pub use jxp_model::Document;
pub use jxp_query::{Filter, Op, Path};

/// Loads the models, opens the store and builds the app.
pub async fn build_app(config: &Config) -> anyhow::Result<App> {
    let schema = jxp_model::load_dir(&config.model_dir).context("cannot load models")?;
    let store: Arc<dyn Store> = match &config.database {
        Database::Sqlite(path) => {
            let mut options = SqliteOptions::new(path.clone());
            options.retention = config.changelog_retention;
            Arc::new(
                SqliteStore::open(options)
                    .with_context(|| format!("cannot open the database {}", path.display()))?,
            )
        }
        #[cfg(not(feature = "postgres"))]
        Database::Postgres(_) => {
            anyhow::bail!("this build has no PostgreSQL support; build with --features postgres")
        }
        #[cfg(feature = "postgres")]
        Database::Postgres(url) => {
            let mut options = PostgresOptions::new(url.clone());
            options.retention = config.changelog_retention;
            options.pool_size = config.database_pool_size;
            // The URL may carry a password: say only that the connection failed, and why.
            Arc::new(
                PostgresStore::connect(options)
                    .await
                    .context("cannot open the PostgreSQL database DATABASE_URL names")?,
            )
        }
    };
    App::new(schema, store, config.core.clone())
        .await
        .context("cannot prepare the database for the models")
}

/// A server started by `start`.
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests and waits for the server to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("server task failed")??;
        Ok(())
    }
}

/// Binds `HOST:PORT` (port 0 picks a free one) and serves in the background.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let app = build_app(&config).await?;
    let listener = TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let state = AppState::new(app.clone(), config.http.clone());
    let task = tokio::spawn(jxp_http::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok(Running {
        addr,
        app,
        stop,
        task,
    })
}

/// Serves until `shutdown` resolves (the binary passes SIGINT/SIGTERM).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let running = start(config).await?;
    tracing::info!(addr = %running.addr, "jxp listening");
    shutdown.await;
    tracing::info!("shutting down");
    running.stop().await
}

/// Creates an admin user.
pub async fn add_admin(
    config: &Config,
    email: &str,
    password: &str,
    name: &str,
) -> anyhow::Result<String> {
    let app = build_app(config).await?;
    let mut body = serde_json::Map::new();
    body.insert("email".into(), json!(email));
    body.insert("password".into(), json!(password));
    body.insert("name".into(), json!(name));
    body.insert("admin".into(), json!(true));
    let user = app
        .create(&Identity::system(), "user", body, WriteOptions::default())
        .await
        .context("cannot create the admin user")?;
    Ok(user
        .get("_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

//! The `jxp` server as a library: [`Server::builder()`] takes the models and the settings,
//! registers hooks and callable functions, and serves; below it, start-up (models → store →
//! app → listener), `init`, `add-admin`, `indexes` and `import`. The binary is the builder with nothing registered,
//! and the integration tests start the server through the same functions.

pub mod backup;
mod builder;
mod config;
mod error;
pub mod import;
pub mod indexes;
mod init;
mod settings;
mod startup;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use jxp_core::WriteOptions;
use jxp_http::AppState;
use jxp_script::{ScriptLimits, Scripts};
#[cfg(feature = "postgres")]
use jxp_store::{PostgresOptions, PostgresStore};
use jxp_store::{SqliteOptions, SqliteStore, Store};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use builder::{Builder, Server};
pub use config::{Config, ConfigError, Database, LogFormat};
pub use error::Error;
pub use init::{InitFile, init_project};
pub use jxp_core::{
    App, CallCtx, CallVerb, HookError, Hooks, Identity, LoggedInCtx, LoginCtx, ModelScope, ReadCtx,
    ReadEvent, ReadRef, RefFuture, User, WriteCtx, WriteEvent, WrittenCtx,
};
pub use jxp_model::Document;
pub use jxp_query::{Filter, Op, Path};
pub use settings::{DefaultValue, SETTINGS, Setting};
pub use startup::{VERSION, describe_database};

/// Loads the models, opens the store and builds the app.
pub async fn build_app(config: &Config) -> Result<App, Error> {
    Ok(open_app(config).await?.0)
}

/// `build_app`, and the SQLite store, for the server to close when it stops.
async fn open_app(config: &Config) -> Result<(App, Option<Arc<SqliteStore>>), Error> {
    let (schema, warnings) =
        jxp_model::load_dir_with_warnings(&config.model_dir).map_err(Error::Models)?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let limits = ScriptLimits {
        timeout: config.script_timeout,
        memory_bytes: usize::try_from(config.script_memory_mb.saturating_mul(1 << 20))
            .unwrap_or(usize::MAX),
        ..ScriptLimits::default()
    };
    let scripts = Scripts::load(&config.model_dir, &schema, limits).map_err(Error::Scripts)?;
    let mut core = config.core.clone();
    if let Some(scripts) = &scripts {
        scripts.register(&schema, &mut core.hooks);
        tracing::info!(files = ?scripts.files(), "script hooks loaded");
    }
    let (store, sqlite): (Arc<dyn Store>, _) = match &config.database {
        Database::Sqlite(path) => {
            let mut options = SqliteOptions::new(path.clone());
            options.retention = config.changelog_retention;
            options.synchronous = config.sqlite_synchronous;
            let store =
                Arc::new(
                    SqliteStore::open(options).map_err(|source| Error::OpenSqlite {
                        path: path.clone(),
                        source,
                    })?,
                );
            (store.clone(), Some(store))
        }
        #[cfg(not(feature = "postgres"))]
        Database::Postgres(_) => return Err(Error::NoPostgres),
        #[cfg(feature = "postgres")]
        Database::Postgres(url) => {
            let mut options = PostgresOptions::new(url.clone());
            options.retention = config.changelog_retention;
            options.pool_size = config.database_pool_size;
            // The URL may carry a password: say only that the connection failed, and why.
            let store = PostgresStore::connect(options)
                .await
                .map_err(Error::OpenPostgres)?;
            (Arc::new(store), None)
        }
    };
    let app = App::new(schema, store, core)
        .await
        .map_err(Error::Prepare)?;
    if let Some(scripts) = &scripts {
        scripts.attach(&app);
    }
    Ok((app, sqlite))
}

/// A server started by `start`.
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    sqlite: Option<Arc<SqliteStore>>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests and waits for the server to end; a
    /// SQLite store is then closed, so a server started next may open the same file.
    pub async fn stop(self) -> Result<(), Error> {
        let _ = self.stop.send(());
        self.task.await.map_err(Error::Task)??;
        if let Some(store) = self.sqlite {
            store.close().await;
        }
        Ok(())
    }
}

/// Binds `HOST:PORT` (port 0 picks a free one) and serves in the background.
pub async fn start(config: Config) -> Result<Running, Error> {
    if config.http.metrics_enabled {
        // Before the app exists, so what its tasks record from the start is kept.
        jxp_http::install_metrics();
    }
    let (app, sqlite) = open_app(&config).await?;
    let listener = TcpListener::bind((config.host, config.port))
        .await
        .map_err(|source| Error::Bind {
            host: config.host,
            port: config.port,
            source,
        })?;
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
        sqlite,
    })
}

/// Serves until `shutdown` resolves (the binary passes SIGINT/SIGTERM).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    startup::log_starting();
    let (model_dir, database) = (config.model_dir.clone(), config.database.clone());
    let running = start(config).await?;
    startup::log_started(&model_dir, &database, &running.app, running.addr).await;
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
) -> Result<String, Error> {
    let (app, sqlite) = open_app(config).await?;
    let mut body = serde_json::Map::new();
    body.insert("email".into(), json!(email));
    body.insert("password".into(), json!(password));
    body.insert("name".into(), json!(name));
    body.insert("admin".into(), json!(true));
    let created = app
        .create(&Identity::system(), "user", body, WriteOptions::default())
        .await;
    // Closed either way, so a server may open the store next, in this process too.
    if let Some(store) = sqlite {
        store.close().await;
    }
    let user = created.map_err(Error::AddAdmin)?;
    Ok(user
        .get("_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

//! `jxp::Error`: why the server could not be set up, started or stopped. Each variant says
//! what was being done and keeps the cause as its source, so `{:#}` (as the binary prints it)
//! reads "what: why".

use std::net::IpAddr;
use std::path::PathBuf;

use jxp_core::CoreError;
use jxp_model::ModelError;
use jxp_store::StoreError;

use crate::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings are wrong or missing.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A model file cannot be read or does not make sense.
    #[error("cannot load models")]
    Models(#[source] ModelError),
    /// A script beside the models does not parse, or exports a name no hook has.
    #[error("cannot load script hooks")]
    Scripts(#[source] jxp_script::ScriptError),
    #[error("cannot open the database {}", path.display())]
    OpenSqlite {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    /// `DATABASE_URL` names PostgreSQL, but this build was made without the `postgres` feature.
    #[error("this build has no PostgreSQL support; build with --features postgres")]
    NoPostgres,
    /// The URL may carry a password: only that the connection failed is said, and why.
    #[error("cannot open the PostgreSQL database DATABASE_URL names")]
    OpenPostgres(#[source] StoreError),
    /// The store cannot be brought in line with the models (a migration failed).
    #[error("cannot prepare the database for the models")]
    Prepare(#[source] CoreError),
    #[error("cannot listen on {host}:{port}")]
    Bind {
        host: IpAddr,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// The server's task panicked or was cancelled.
    #[error("server task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("cannot create the admin user")]
    AddAdmin(#[source] CoreError),
    /// `jxp indexes` could not read or change the database's indexes.
    #[error("cannot compare the indexes with the database")]
    Indexes(#[source] StoreError),
    /// `jxp init` cannot create the project's directory.
    #[error("cannot create {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `jxp init` cannot write one of the project's files.
    #[error("cannot write {}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Serving failed (the listener or the connections).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

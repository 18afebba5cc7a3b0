//! What the server tells its operator as it starts: the version, the models, the database
//! (never a password), where it listens and what to do when no user exists yet.

use std::net::SocketAddr;
use std::path::Path;

use jxp_core::App;
use jxp_query::Filter;

use crate::Database;

/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The database in words, safe to log: a SQLite path, or a PostgreSQL server's host, port and
/// database name without the user or password.
pub fn describe_database(database: &Database) -> String {
    match database {
        Database::Sqlite(path) => format!("SQLite at {}", path.display()),
        Database::Postgres(url) => {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
            // Credentials end at the last `@`; a password could hold any other character.
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => (h, p),
                _ => (authority, "5432"),
            };
            let host = if host.is_empty() {
                "(default host)"
            } else {
                host
            };
            let database = if database.is_empty() {
                "(the user's default)"
            } else {
                database
            };
            format!("PostgreSQL at {host}:{port}, database {database}")
        }
    }
}

/// The first line of the log, before the models are read (their warnings follow it).
pub fn log_starting() {
    tracing::info!("jxp {VERSION} starting");
}

/// Logs the start-up lines once the server listens on `addr`.
pub async fn log_started(model_dir: &Path, database: &Database, app: &App, addr: SocketAddr) {
    let models: Vec<&str> = app
        .schema()
        .models
        .values()
        .filter(|m| !m.builtin)
        .map(|m| m.slug.as_str())
        .collect();
    if models.is_empty() {
        tracing::info!(
            "no models in {}: only the built-in ones are served",
            model_dir.display()
        );
    } else {
        tracing::info!(
            "{} models loaded from {}: {}",
            models.len(),
            model_dir.display(),
            models.join(", ")
        );
    }
    tracing::info!("database: {}", describe_database(database));
    match app.reader().count("user", &Filter::All).await {
        // A SQLite store is this process's alone, so `add-admin` waits for the server to stop.
        Ok(0) => match database {
            Database::Sqlite(_) => tracing::info!(
                "no users yet: POST /setup or `jxp add-admin` (with the server stopped)"
            ),
            Database::Postgres(_) => tracing::info!("no users yet: POST /setup or `jxp add-admin`"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot count users"),
    }
    // Last, so that whoever waits for it has read everything before it.
    let url = format!("http://{addr}");
    tracing::info!(%addr, %url, "jxp listening");
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn database_descriptions_never_show_credentials() {
        let cases = [
            (
                "postgres://jxp:s3cr@t:pw@db.example.com:6432/app?sslmode=require",
                "PostgreSQL at db.example.com:6432, database app",
            ),
            (
                "postgresql://user@10.0.0.5/jxp",
                "PostgreSQL at 10.0.0.5:5432, database jxp",
            ),
            (
                "postgres://u:p@[::1]:5433/d",
                "PostgreSQL at [::1]:5433, database d",
            ),
            (
                "postgres:///jxp?host=/run/postgresql",
                "PostgreSQL at (default host):5432, database jxp",
            ),
        ];
        for (url, want) in cases {
            let got = describe_database(&Database::Postgres(url.to_owned()));
            assert_eq!(got, want, "{url}");
            assert!(!got.contains("s3cr") && !got.contains(":p@"), "{got}");
        }
        assert_eq!(
            describe_database(&Database::Sqlite(PathBuf::from("./data/jxp.db"))),
            "SQLite at ./data/jxp.db"
        );
    }
}

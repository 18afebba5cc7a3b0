//! `jxp backup` and `jxp restore`: the store `DATABASE_URL` names, as `jxp serve` resolves it,
//! copied while it serves or replaced by a backup. SQLite's are done here (by the store's
//! `sqlite_backup`); PostgreSQL has its own tools, and the commands say which, for this
//! database, rather than doing half the job.

use std::path::Path;

use jxp_store::sqlite_backup::{self, BackupError};
pub use jxp_store::sqlite_backup::{ModelSummary, Restored, Summary};

use crate::{Config, Database};

/// Why `jxp backup` or `jxp restore` did nothing.
#[derive(Debug, thiserror::Error)]
pub enum BackupCommandError {
    #[error("{} already exists: choose another file, or pass --force to replace it", .0.display())]
    Exists(std::path::PathBuf),
    #[error(
        "the store {} exists: pass --force to replace it with the backup; it holds\n{}",
        .0.path.display(),
        .0
    )]
    StoreExists(Box<Summary>),
    #[error(transparent)]
    Failed(BackupError),
    /// `DATABASE_URL` names PostgreSQL; the message gives the commands for it.
    #[error("{0}")]
    Postgres(String),
}

impl From<BackupError> for BackupCommandError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Exists(path) => BackupCommandError::Exists(path),
            BackupError::StoreExists(current) => BackupCommandError::StoreExists(current),
            other => BackupCommandError::Failed(other),
        }
    }
}

/// Copies the store to `file`, consistent as of one commit, while a server may be writing to
/// it; replaces an existing `file` only with `force`. Answers what `file` holds.
pub fn backup(config: &Config, file: &Path, force: bool) -> Result<Summary, BackupCommandError> {
    match &config.database {
        Database::Sqlite(db) => Ok(sqlite_backup::backup(db, file, force)?),
        Database::Postgres(url) => Err(BackupCommandError::Postgres(postgres_advice(url, file))),
    }
}

/// Replaces the store with the backup `file`; refused while a server has the store open, and
/// over an existing store unless `force`.
pub fn restore(config: &Config, file: &Path, force: bool) -> Result<Restored, BackupCommandError> {
    match &config.database {
        Database::Sqlite(db) => Ok(sqlite_backup::restore(file, db, force)?),
        Database::Postgres(url) => Err(BackupCommandError::Postgres(postgres_advice(url, file))),
    }
}

/// How to back up and restore the PostgreSQL database `url` to and from `file`, with the
/// password left out of what is printed.
fn postgres_advice(url: &str, file: &Path) -> String {
    let (shown, schema) = redacted_url(url);
    let file = shell_quote(&file.display().to_string());
    let target = shell_quote(&shown);
    let only_schema = schema
        .map(|s| format!(" --schema={}", shell_quote(&s)))
        .unwrap_or_default();
    format!(
        "DATABASE_URL names PostgreSQL: back it up with PostgreSQL's own tools, which take a \
         consistent copy while servers run:\n  \
         pg_dump --format=custom{only_schema} --file={file} {target}\n\
         and restore it (servers stopped) with:\n  \
         pg_restore --clean --if-exists --no-owner --single-transaction --dbname={target} {file}\n\
         (the password is not shown: give it in PGPASSWORD or ~/.pgpass)"
    )
}

/// `url` without its password (in the user part or a `password` parameter), and the schema
/// its `options` put first on the search path, if any.
pub(crate) fn redacted_url(url: &str) -> (String, Option<String>) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let mut shown = format!("{scheme}://{authority}{path}");
    let mut schema = None;
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| pair.split('=').next() != Some("password"))
            .collect();
        if !kept.is_empty() {
            shown.push('?');
            shown.push_str(&kept.join("&"));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        schema = pairs
            .iter()
            .filter(|(k, _)| k == "options")
            .find_map(|(_, v)| search_path(v));
    }
    (shown, schema)
}

/// The first schema of a `-c search_path=a,b` among libpq `options`.
fn search_path(options: &str) -> Option<String> {
    let (_, after) = options.split_once("search_path=")?;
    let first = after.split([',', ' ']).next()?.trim_matches('"');
    (!first.is_empty()).then(|| first.to_owned())
}

/// `s` as one word for a POSIX shell.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:@=,+%".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let (shown, schema) =
            redacted_url("postgres://app:s3cret@db.example:5433/prod?sslmode=require");
        assert_eq!(shown, "postgres://app@db.example:5433/prod?sslmode=require");
        assert_eq!(schema, None);
        let (shown, _) = redacted_url("postgresql://app@db/prod?password=s3cret&sslmode=disable");
        assert_eq!(shown, "postgresql://app@db/prod?sslmode=disable");
    }

    #[test]
    fn a_schema_on_the_search_path_is_the_one_dumped() {
        let url = "postgres://app:hunter2@db/prod?options=-c%20search_path%3Dtenant_1";
        let (shown, schema) = redacted_url(url);
        assert_eq!(
            shown,
            "postgres://app@db/prod?options=-c%20search_path%3Dtenant_1"
        );
        assert_eq!(schema.as_deref(), Some("tenant_1"));
        let advice = postgres_advice(url, Path::new("my backup.dump"));
        assert!(
            advice.contains(
                "pg_dump --format=custom --schema=tenant_1 --file='my backup.dump' \
                 'postgres://app@db/prod?options=-c%20search_path%3Dtenant_1'"
            ),
            "{advice}"
        );
        assert!(advice.contains("pg_restore"), "{advice}");
        assert!(!advice.contains("hunter2"), "{advice}");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("backup.dump"), "backup.dump");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("a?b&c"), "'a?b&c'");
    }
}

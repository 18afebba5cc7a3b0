//! Settings from the environment (and `.env`), as SPEC §1 names them. A bad value stops
//! start-up with the variable's name and what it accepts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use std::time::Duration;

use jxp_core::{
    AuthSettings, Hooks, QueryLimits, RateLimitSettings, RealtimeSettings, Settings, SmtpSettings,
    parse_size,
};
use jxp_http::{CorsOrigins, DocsAccess, HttpSettings, McpSettings, WsSettings};
use jxp_store::Synchronous;

use crate::settings::{DefaultValue, setting};

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not valid: expected {expected}")]
pub struct ConfigError {
    pub var: String,
    pub value: String,
    pub expected: String,
}

/// Where documents live. Its `Debug` leaves a PostgreSQL URL, which may hold a password, out.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(_) => f
                .debug_tuple("Postgres")
                .field(&jxp_core::REDACTED)
                .finish(),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Everything `jxp serve` needs. Its `Debug` shows no secret: the shared secret, the
/// PostgreSQL URL, `SMTP_URL` and `METRICS_TOKEN` are left out.
#[derive(Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub api_url: String,
    pub model_dir: PathBuf,
    pub database: Database,
    pub shared_secret: Option<String>,
    pub token_expiry: u64,
    pub refresh_token_expiry: u64,
    pub changelog_retention: u64,
    /// How SQLite's commits reach the disk (unused on PostgreSQL).
    pub sqlite_synchronous: Synchronous,
    /// Most pooled connections to PostgreSQL (unused on SQLite).
    pub database_pool_size: usize,
    pub log_format: LogFormat,
    /// Limits of the script hooks' runtimes (`SCRIPT_TIMEOUT_MS`, `SCRIPT_MEMORY_MB`).
    pub script_timeout: Duration,
    pub script_memory_mb: u64,
    pub core: Settings,
    pub http: HttpSettings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_url", &self.api_url)
            .field("model_dir", &self.model_dir)
            .field("database", &self.database)
            .field(
                "shared_secret",
                &jxp_core::shown_secret(&self.shared_secret),
            )
            .field("token_expiry", &self.token_expiry)
            .field("refresh_token_expiry", &self.refresh_token_expiry)
            .field("changelog_retention", &self.changelog_retention)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("database_pool_size", &self.database_pool_size)
            .field("log_format", &self.log_format)
            .field("script_timeout", &self.script_timeout)
            .field("script_memory_mb", &self.script_memory_mb)
            .field("core", &self.core)
            .field("http", &self.http)
            .finish()
    }
}

/// The given values, and the names read from them (so a test can hold the reads and the
/// table of settings together).
struct Vars {
    given: HashMap<String, String>,
    read: RefCell<Vec<String>>,
}

impl Vars {
    /// The value given for `name`; an empty one counts as not given.
    fn get(&self, name: &str) -> Option<&str> {
        self.read.borrow_mut().push(name.to_owned());
        self.given
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The value given for `name`, or its default from the table of settings.
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name).or(match setting(name).map(|s| s.default) {
            Some(DefaultValue::Value(v)) => Some(v),
            _ => None,
        })
    }

    fn parse<T: std::str::FromStr>(&self, name: &str, expected: &str) -> Result<T, ConfigError> {
        let raw = self.value(name).unwrap_or_default();
        raw.trim().parse().map_err(|_| bad(name, raw, expected))
    }

    fn positive(&self, name: &str) -> Result<u64, ConfigError> {
        let v = self.parse(name, "a positive whole number")?;
        if v == 0 {
            return Err(bad(name, "0", "a positive whole number"));
        }
        Ok(v)
    }

    fn flag(&self, name: &str) -> Result<bool, ConfigError> {
        let v = self
            .value(name)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match v.as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(bad(name, &v, "true or false")),
        }
    }

    /// A size such as `10mb`, `512kb` or a byte count.
    fn size(&self, name: &str, expected: &str) -> Result<u64, ConfigError> {
        let raw = self.value(name).unwrap_or_default();
        parse_size(raw).ok_or_else(|| bad(name, raw, expected))
    }
}

/// A URL as an error repeats it: without the password it may hold.
fn shown_url(url: &str) -> String {
    if url.contains("://") {
        crate::backup::redacted_url(url).0
    } else {
        url.to_owned()
    }
}

fn bad(var: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads settings from `(name, value)` pairs; of two pairs with one name the later wins, so
    /// values from the command line can follow the environment's.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let v = Vars {
            given: vars.into_iter().collect(),
            read: RefCell::default(),
        };
        Self::from_given(&v)
    }

    fn from_given(v: &Vars) -> Result<Self, ConfigError> {
        let port: u16 = v.parse("PORT", "a port number from 0 to 65535")?;
        let host: IpAddr = v.parse("HOST", "an IP address such as 127.0.0.1 or 0.0.0.0")?;
        let api_url = v
            .get("API_URL")
            .or(v.get("API_SERVER"))
            .map_or_else(|| format!("http://localhost:{port}"), str::to_owned);
        let model_dir = PathBuf::from(v.value("MODEL_DIR").unwrap_or_default());
        let database = match v.value("DATABASE_URL").unwrap_or_default() {
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(url.to_owned())
            }
            url => {
                let path = url
                    .strip_prefix("sqlite://")
                    .or(url.strip_prefix("sqlite:"))
                    .unwrap_or(url);
                if path.is_empty() || path.contains("://") {
                    return Err(bad(
                        "DATABASE_URL",
                        &shown_url(url),
                        "a SQLite file path (sqlite://path) or postgres://…",
                    ));
                }
                Database::Sqlite(PathBuf::from(path))
            }
        };
        let log_format = match v
            .value("LOG_FORMAT")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => return Err(bad("LOG_FORMAT", other, "pretty or json")),
        };
        let sqlite_synchronous = match v
            .value("SQLITE_SYNCHRONOUS")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "normal" => Synchronous::Normal,
            "full" => Synchronous::Full,
            other => return Err(bad("SQLITE_SYNCHRONOUS", other, "normal or full")),
        };
        let bcrypt_cost: u32 = v.parse("BCRYPT_COST", "a whole number from 4 to 31")?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(bad(
                "BCRYPT_COST",
                &bcrypt_cost.to_string(),
                "a whole number from 4 to 31",
            ));
        }
        let query_limits = QueryLimits {
            enabled: v.flag("QUERY_LIMITS_ENABLED")?,
            large_collection_threshold: v.positive("QUERY_LIMITS_LARGE_COLLECTION_THRESHOLD")?,
            max: v.positive("QUERY_LIMITS_MAX")?,
            default: v.positive("QUERY_LIMITS_DEFAULT")?,
            skip_count_unless_paginated: v.flag("QUERY_LIMITS_SKIP_COUNT_UNLESS_PAGINATED")?,
            max_response_size: v.size(
                "QUERY_LIMITS_MAX_RESPONSE_SIZE",
                "a size such as 10mb, 512kb or a byte count (0 disables)",
            )?,
        };
        let body_limit_expected = "a size such as 1mb or a byte count";
        let body_limit = usize::try_from(v.size("BODY_LIMIT", body_limit_expected)?)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                bad(
                    "BODY_LIMIT",
                    v.value("BODY_LIMIT").unwrap_or_default(),
                    body_limit_expected,
                )
            })?;
        let smtp = match (
            v.get("SMTP_URL"),
            v.get("SMTP_FROM"),
            v.get("PASSWORD_RECOVERY_URL"),
        ) {
            (None, None, None) => None,
            (Some(url), Some(from), Some(recovery_url)) => {
                if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                    return Err(bad(
                        "SMTP_URL",
                        &shown_url(url),
                        "smtp://user:pass@host:port or smtps://…",
                    ));
                }
                Some(SmtpSettings {
                    url: url.to_owned(),
                    from: from.to_owned(),
                    recovery_url: recovery_url.to_owned(),
                })
            }
            (url, from, _) => {
                let missing = if url.is_none() {
                    "SMTP_URL"
                } else if from.is_none() {
                    "SMTP_FROM"
                } else {
                    "PASSWORD_RECOVERY_URL"
                };
                return Err(bad(
                    missing,
                    "",
                    "a value: SMTP_URL, SMTP_FROM and PASSWORD_RECOVERY_URL go together",
                ));
            }
        };
        let shared_secret = v.get("SHARED_SECRET").map(str::to_owned);
        if let Some(secret) = &shared_secret
            && secret.len() < 16
        {
            return Err(bad("SHARED_SECRET", "<hidden>", "at least 16 characters"));
        }
        let token_expiry = v.positive("TOKEN_EXPIRY")?;
        let refresh_token_expiry = v.positive("REFRESH_TOKEN_EXPIRY")?;
        let rate_limit = RateLimitSettings {
            enabled: v.flag("LOGIN_RATE_LIMIT_ENABLED")?,
            burst: v.parse("LOGIN_RATE_BURST", "a positive whole number")?,
            per_minute: v.parse("LOGIN_RATE_PER_MINUTE", "a positive whole number")?,
        };
        if rate_limit.burst == 0 {
            return Err(bad("LOGIN_RATE_BURST", "0", "a positive whole number"));
        }
        if rate_limit.per_minute == 0 {
            return Err(bad("LOGIN_RATE_PER_MINUTE", "0", "a positive whole number"));
        }
        let auth = AuthSettings {
            api_url: api_url.clone(),
            shared_secret: shared_secret.clone(),
            token_expiry_secs: token_expiry,
            refresh_token_expiry_secs: refresh_token_expiry,
            smtp,
            rate_limit,
        };
        let trust_forwarded_for = v.flag("LOGIN_RATE_LIMIT_XFF")?;
        let realtime = RealtimeSettings {
            max_connections: usize::try_from(v.positive("WS_MAX_CONNECTIONS")?)
                .unwrap_or(usize::MAX),
            send_queue: usize::try_from(v.positive("WS_SEND_QUEUE")?).unwrap_or(usize::MAX),
            max_subscriptions: 1000,
            shards: match v.get("WS_SHARDS") {
                Some(_) => usize::try_from(v.positive("WS_SHARDS")?).unwrap_or(usize::MAX),
                None => RealtimeSettings::default().shards,
            },
        };
        let ws = WsSettings {
            max_message_bytes: usize::try_from(v.positive("WS_MAX_MESSAGE_BYTES")?)
                .unwrap_or(usize::MAX),
            ping_interval: Duration::from_secs(v.positive("WS_PING_INTERVAL")?),
            idle_timeout: Duration::from_secs(v.positive("WS_IDLE_TIMEOUT")?),
        };
        Ok(Config {
            host,
            port,
            api_url,
            model_dir,
            database,
            shared_secret,
            token_expiry,
            refresh_token_expiry,
            changelog_retention: v.positive("CHANGELOG_RETENTION")?,
            sqlite_synchronous,
            database_pool_size: pool_size(v)?,
            log_format,
            script_timeout: Duration::from_millis(v.positive("SCRIPT_TIMEOUT_MS")?),
            script_memory_mb: v.positive("SCRIPT_MEMORY_MB")?,
            core: Settings {
                bcrypt_cost,
                query_limits,
                auth,
                realtime,
                query_memory_limit: v.size(
                    "QUERY_MEMORY_LIMIT",
                    "a size such as 64mb, 512kb or a byte count (0 disables)",
                )?,
                query_timeout: Duration::from_secs(
                    v.parse("QUERY_TIMEOUT", "a whole number of seconds (0 disables)")?,
                ),
                count_cache: v.flag("COUNT_CACHE_ENABLED")?,
                hooks: Hooks::default(),
            },
            http: HttpSettings {
                body_limit,
                trust_forwarded_for,
                ws,
                cache_enabled: v.flag("CACHE_ENABLED")?,
                cache_ttl: Duration::from_secs(v.positive("CACHE_TTL")?),
                cors: cors_origins(v)?,
                docs: docs_access(v)?,
                header_timeout: Duration::from_secs(v.positive("HTTP_HEADER_TIMEOUT")?),
                body_timeout: Duration::from_secs(v.positive("HTTP_BODY_TIMEOUT")?),
                keep_alive_timeout: Duration::from_secs(v.positive("HTTP_KEEP_ALIVE_TIMEOUT")?),
                max_connections_per_client: usize::try_from(
                    v.positive("HTTP_MAX_CONNECTIONS_PER_CLIENT")?,
                )
                .unwrap_or(usize::MAX),
                mcp: mcp_settings(v)?,
                metrics_enabled: v.flag("METRICS_ENABLED")?,
                metrics_token: v.get("METRICS_TOKEN").map(str::to_owned),
            },
        })
    }
}

/// `DOCS_ACCESS`: `public`, `protected` or `off`.
fn docs_access(v: &Vars) -> Result<DocsAccess, ConfigError> {
    let value = v.value("DOCS_ACCESS").unwrap_or_default();
    DocsAccess::parse(value).ok_or_else(|| bad("DOCS_ACCESS", value, "public, protected or off"))
}

/// The `MCP_*` settings; each guide file must be readable now, not at the first read.
fn mcp_settings(v: &Vars) -> Result<McpSettings, ConfigError> {
    let list = |name: &str| -> Vec<String> {
        v.get(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let guide_files: Vec<PathBuf> = list("MCP_GUIDE_FILES")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if let Some(bad_file) = guide_files.iter().find(|p| std::fs::File::open(p).is_err()) {
        return Err(bad(
            "MCP_GUIDE_FILES",
            &bad_file.display().to_string(),
            "readable markdown files, comma-separated",
        ));
    }
    let path = v.value("MCP_PATH").unwrap_or_default().trim().to_owned();
    if !path.starts_with('/') || path.len() < 2 || path.contains(['{', '}', '*']) {
        return Err(bad("MCP_PATH", &path, "a path such as /mcp"));
    }
    if jxp_http::is_api_path(&path) {
        return Err(bad(
            "MCP_PATH",
            &path,
            "a path that is not one of the API's own routes, such as /mcp",
        ));
    }
    let default_limit = v.positive("MCP_DEFAULT_LIMIT")?;
    let max_limit = v.positive("MCP_MAX_LIMIT")?;
    Ok(McpSettings {
        enabled: v.flag("MCP_ENABLED")?,
        path,
        require_credentials: v.flag("MCP_REQUIRE_API_KEY")?,
        whitelist: list("MCP_MODEL_WHITELIST"),
        blacklist: list("MCP_MODEL_BLACKLIST"),
        default_limit: default_limit.min(max_limit),
        max_limit,
        max_response_size: v.size(
            "MCP_MAX_RESPONSE_SIZE",
            "a size such as 256kb, 1mb or a byte count (0 disables)",
        )?,
        instructions_append: v
            .get("MCP_INSTRUCTIONS_APPEND")
            .unwrap_or_default()
            .to_owned(),
        guide_files,
    })
}

/// `CORS_ORIGINS`: unset for same-origin pages only, `*`, or origins separated by commas; a
/// bad origin is named on its own.
fn cors_origins(v: &Vars) -> Result<CorsOrigins, ConfigError> {
    CorsOrigins::parse(v.get("CORS_ORIGINS").unwrap_or_default()).map_err(|e| {
        bad(
            "CORS_ORIGINS",
            &e.entry,
            &format!(
                "origins separated by commas, each scheme://host[:port] such as \
                 https://app.example.com or http://localhost:3000 ({}), or * alone",
                e.why
            ),
        )
    })
}

/// `DATABASE_POOL_SIZE`: 2 at least (the writer holds one while readers work), at most 1,000.
fn pool_size(v: &Vars) -> Result<usize, ConfigError> {
    let expected = "a whole number from 2 to 1000";
    let n: u64 = v.parse("DATABASE_POOL_SIZE", expected)?;
    if !(2..=1000).contains(&n) {
        return Err(bad("DATABASE_POOL_SIZE", &n.to_string(), expected));
    }
    Ok(usize::try_from(n).unwrap_or(16))
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.port, 4001);
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert_eq!(c.api_url, "http://localhost:4001");
        assert_eq!(c.database, Database::Sqlite(PathBuf::from("./data/jxp.db")));
        assert_eq!(c.core.query_limits.max_response_size, 10 * 1024 * 1024);
        assert_eq!(c.token_expiry, 86_400);
        assert_eq!(c.database_pool_size, 16);
        assert_eq!(c.http.cors, CorsOrigins::SameOrigin);
    }

    #[test]
    fn a_bad_url_is_repeated_without_its_password() {
        let db = Config::from_vars(vars(&[("DATABASE_URL", "mysql://me:pw-in-db-url@db/x")]))
            .unwrap_err()
            .to_string();
        assert!(
            db.contains("mysql://me@db/x") && !db.contains("pw-in-db-url"),
            "{db}"
        );
        let smtp = Config::from_vars(vars(&[
            ("SMTP_URL", "http://mailer:pw-in-smtp-url@mail.example.com"),
            ("SMTP_FROM", "jxp@example.com"),
            ("PASSWORD_RECOVERY_URL", "https://app.example.com/reset"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            smtp.contains("SMTP_URL") && !smtp.contains("pw-in-smtp-url"),
            "{smtp}"
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = Config::from_vars(vars(&[
            ("DATABASE_URL", "postgres://jxp:db-password-1@127.0.0.1/jxp"),
            ("SHARED_SECRET", "shared-secret-of-32-characters!!"),
            (
                "SMTP_URL",
                "smtp://mailer:smtp-password-2@mail.example.com:587",
            ),
            ("SMTP_FROM", "jxp@example.com"),
            ("PASSWORD_RECOVERY_URL", "https://app.example.com/reset"),
            ("METRICS_TOKEN", "metrics-token-3"),
        ]))
        .unwrap();
        let shown = format!("{c:?} {:?} {:?}", c.core, c.http);
        for secret in [
            "db-password-1",
            "shared-secret-of-32",
            "smtp-password-2",
            "metrics-token-3",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        // What is not secret is still there to debug with.
        assert!(shown.contains("jxp@example.com") && shown.contains("<redacted>"));
    }

    #[test]
    fn cors_origins() {
        let c = Config::from_vars(vars(&[(
            "CORS_ORIGINS",
            "http://localhost:3000, https://app.example.com",
        )]))
        .unwrap();
        assert_eq!(
            c.http.cors,
            CorsOrigins::List(vec![
                "http://localhost:3000".into(),
                "https://app.example.com".into()
            ])
        );
        let c = Config::from_vars(vars(&[("CORS_ORIGINS", "*")])).unwrap();
        assert_eq!(c.http.cors, CorsOrigins::Any);
        let err = Config::from_vars(vars(&[(
            "CORS_ORIGINS",
            "http://localhost:3000,https://app.example.com/",
        )]))
        .unwrap_err();
        assert_eq!(err.var, "CORS_ORIGINS");
        assert_eq!(err.value, "https://app.example.com/");
        let text = err.to_string();
        assert!(text.contains("\"https://app.example.com/\""), "{text}");
        assert!(text.contains("no path"), "{text}");
    }

    #[test]
    fn reads_values() {
        let c = Config::from_vars(vars(&[
            ("PORT", "5000"),
            ("DATABASE_URL", "sqlite:///tmp/x.db"),
            ("QUERY_LIMITS_MAX_RESPONSE_SIZE", "512kb"),
            ("LOG_FORMAT", "json"),
            ("DATABASE_POOL_SIZE", "40"),
        ]))
        .unwrap();
        assert_eq!(c.port, 5000);
        assert_eq!(c.database_pool_size, 40);
        assert_eq!(c.api_url, "http://localhost:5000");
        assert_eq!(c.database, Database::Sqlite(PathBuf::from("/tmp/x.db")));
        assert_eq!(c.core.query_limits.max_response_size, 512 * 1024);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn mcp_path_may_not_fall_on_an_api_route() {
        let err = Config::from_vars(vars(&[("MCP_PATH", "/healthz")])).unwrap_err();
        assert_eq!(err.var, "MCP_PATH");
        let err = Config::from_vars(vars(&[("MCP_PATH", "/api/mcp")])).unwrap_err();
        assert_eq!(err.var, "MCP_PATH");
        let c = Config::from_vars(vars(&[("MCP_PATH", "/agents")])).unwrap();
        assert_eq!(c.http.mcp.path, "/agents");
    }

    #[test]
    fn docs_access() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.http.docs, DocsAccess::Protected);
        let c = Config::from_vars(vars(&[("DOCS_ACCESS", "off")])).unwrap();
        assert_eq!(c.http.docs, DocsAccess::Off);
        let err = Config::from_vars(vars(&[("DOCS_ACCESS", "secret")])).unwrap_err();
        assert_eq!(err.var, "DOCS_ACCESS");
    }

    #[test]
    fn sqlite_synchronous() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.sqlite_synchronous, Synchronous::Normal);
        let c = Config::from_vars(vars(&[("SQLITE_SYNCHRONOUS", "FULL")])).unwrap();
        assert_eq!(c.sqlite_synchronous, Synchronous::Full);
        let err = Config::from_vars(vars(&[("SQLITE_SYNCHRONOUS", "off")])).unwrap_err();
        assert_eq!(err.var, "SQLITE_SYNCHRONOUS");
    }

    /// The defaults in the table of settings are those the crates below would choose.
    #[test]
    fn table_defaults_are_the_crates_defaults() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.core.query_limits, QueryLimits::default());
        assert_eq!(c.script_timeout, Duration::from_millis(1000));
        assert_eq!(c.script_memory_mb, 64);
        let http = HttpSettings::default();
        assert_eq!(c.http.body_limit, http.body_limit);
        assert_eq!(c.http.cache_enabled, http.cache_enabled);
        assert_eq!(c.http.header_timeout, http.header_timeout);
        assert_eq!(c.http.body_timeout, http.body_timeout);
        assert_eq!(c.http.keep_alive_timeout, http.keep_alive_timeout);
        assert_eq!(
            c.http.max_connections_per_client,
            http.max_connections_per_client
        );
        assert_eq!(c.http.mcp, http.mcp);
        assert_eq!(c.model_dir, PathBuf::from("./models"));
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert!(c.shared_secret.is_none() && c.core.auth.smtp.is_none());
    }

    /// Every name the settings are read from is in the table, and every entry is read, so
    /// `--help` and `jxp init`'s `.env` list exactly what `jxp serve` reads.
    #[test]
    fn the_names_read_are_the_table() {
        let v = Vars {
            given: HashMap::new(),
            read: RefCell::default(),
        };
        Config::from_given(&v).unwrap();
        let read = v.read.take();
        // JXP's older name for API_URL, read as a fallback and not advertised.
        let aliases = ["API_SERVER"];
        for name in &read {
            assert!(
                setting(name).is_some() || aliases.contains(&name.as_str()),
                "{name} is read but not in the table of settings"
            );
        }
        for s in crate::settings::SETTINGS {
            assert!(
                read.iter().any(|r| r == s.name),
                "{} is in the table but never read",
                s.name
            );
        }
    }

    /// The `.env` of `jxp init` with every line uncommented is the defaults.
    #[test]
    fn the_env_file_uncommented_is_the_defaults() {
        let pairs: Vec<(String, String)> = crate::settings::env_file()
            .lines()
            .filter_map(|l| l.strip_prefix("# ")?.split_once('='))
            .filter(|(k, _)| setting(k).is_some())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert!(pairs.len() >= crate::settings::SETTINGS.len());
        let c = Config::from_vars(pairs).unwrap();
        let d = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("PORT", "http"),
            ("PORT", "70000"),
            ("HOST", "localhost:3"),
            ("LOG_FORMAT", "xml"),
            ("TOKEN_EXPIRY", "0"),
            ("HTTP_HEADER_TIMEOUT", "0"),
            ("HTTP_MAX_CONNECTIONS_PER_CLIENT", "many"),
            ("QUERY_LIMITS_ENABLED", "maybe"),
            ("QUERY_LIMITS_MAX_RESPONSE_SIZE", "10 parsecs"),
            ("BCRYPT_COST", "2"),
            ("DATABASE_URL", "mysql://x"),
            ("DATABASE_POOL_SIZE", "1"),
            ("DATABASE_POOL_SIZE", "5000"),
            ("DATABASE_POOL_SIZE", "many"),
        ] {
            let err = Config::from_vars(vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}");
            assert!(err.to_string().contains(var));
        }
    }
}

//! Settings from the environment (and `.env`), as SPEC §1 names them. A bad value stops
//! start-up with the variable's name and what it accepts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use std::time::Duration;

use jxp_core::{
    AuthSettings, Hooks, QueryLimits, RateLimitSettings, RealtimeSettings, Settings, SmtpSettings,
    parse_size,
};
use jxp_http::{CorsOrigins, HttpSettings, WsSettings};

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not valid: expected {expected}")]
pub struct ConfigError {
    pub var: String,
    pub value: String,
    pub expected: String,
}

/// Where documents live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Everything `jxp serve` needs.
#[derive(Debug, Clone)]
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
    /// Most pooled connections to PostgreSQL (unused on SQLite).
    pub database_pool_size: usize,
    pub log_format: LogFormat,
    pub core: Settings,
    pub http: HttpSettings,
}

struct Vars(HashMap<String, String>);

impl Vars {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T: std::str::FromStr>(
        &self,
        name: &str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|_| bad(name, raw, expected)),
        }
    }

    fn positive(&self, name: &str, default: u64) -> Result<u64, ConfigError> {
        let v = self.parse(name, default, "a positive whole number")?;
        if v == 0 {
            return Err(bad(name, "0", "a positive whole number"));
        }
        Ok(v)
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(bad(name, &v, "true or false")),
            },
        }
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

    /// Reads settings from `(name, value)` pairs.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let v = Vars(vars.into_iter().collect());
        let port: u16 = v.parse("PORT", 4001, "a port number from 0 to 65535")?;
        let host: IpAddr = v.parse(
            "HOST",
            IpAddr::from([127, 0, 0, 1]),
            "an IP address such as 127.0.0.1 or 0.0.0.0",
        )?;
        let api_url = v
            .get("API_URL")
            .or(v.get("API_SERVER"))
            .map_or_else(|| format!("http://localhost:{port}"), str::to_owned);
        let model_dir = PathBuf::from(v.get("MODEL_DIR").unwrap_or("./models"));
        let database = match v.get("DATABASE_URL") {
            None => Database::Sqlite(PathBuf::from("./data/jxp.db")),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(url.to_owned())
            }
            Some(url) => {
                let path = url
                    .strip_prefix("sqlite://")
                    .or(url.strip_prefix("sqlite:"))
                    .unwrap_or(url);
                if path.is_empty() || path.contains("://") {
                    return Err(bad(
                        "DATABASE_URL",
                        url,
                        "a SQLite file path (sqlite://path) or postgres://…",
                    ));
                }
                Database::Sqlite(PathBuf::from(path))
            }
        };
        let log_format = match v.get("LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(bad("LOG_FORMAT", other, "pretty or json")),
        };
        let bcrypt_cost: u32 = v.parse("BCRYPT_COST", 10, "a whole number from 4 to 31")?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(bad(
                "BCRYPT_COST",
                &bcrypt_cost.to_string(),
                "a whole number from 4 to 31",
            ));
        }
        let defaults = QueryLimits::default();
        let max_response_size = match v.get("QUERY_LIMITS_MAX_RESPONSE_SIZE") {
            None => defaults.max_response_size,
            Some(raw) => parse_size(raw).ok_or_else(|| {
                bad(
                    "QUERY_LIMITS_MAX_RESPONSE_SIZE",
                    raw,
                    "a size such as 10mb, 512kb or a byte count (0 disables)",
                )
            })?,
        };
        let query_limits = QueryLimits {
            enabled: v.flag("QUERY_LIMITS_ENABLED", defaults.enabled)?,
            large_collection_threshold: v.positive(
                "QUERY_LIMITS_LARGE_COLLECTION_THRESHOLD",
                defaults.large_collection_threshold,
            )?,
            max: v.positive("QUERY_LIMITS_MAX", defaults.max)?,
            default: v.positive("QUERY_LIMITS_DEFAULT", defaults.default)?,
            skip_count_unless_paginated: v.flag(
                "QUERY_LIMITS_SKIP_COUNT_UNLESS_PAGINATED",
                defaults.skip_count_unless_paginated,
            )?,
            max_response_size,
        };
        let body_limit = match v.get("BODY_LIMIT") {
            None => HttpSettings::default().body_limit,
            Some(raw) => parse_size(raw)
                .filter(|n| *n > 0)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| bad("BODY_LIMIT", raw, "a size such as 1mb or a byte count"))?,
        };
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
                        url,
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
        let token_expiry = v.positive("TOKEN_EXPIRY", 86_400)?;
        let refresh_token_expiry = v.positive("REFRESH_TOKEN_EXPIRY", 2_678_400)?;
        let rate_limit = RateLimitSettings {
            enabled: v.flag("LOGIN_RATE_LIMIT_ENABLED", true)?,
            burst: v.parse("LOGIN_RATE_BURST", 8, "a positive whole number")?,
            per_minute: v.parse("LOGIN_RATE_PER_MINUTE", 12, "a positive whole number")?,
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
        let trust_forwarded_for = v.flag("LOGIN_RATE_LIMIT_XFF", false)?;
        let cores = u64::try_from(RealtimeSettings::default().shards).unwrap_or(1);
        let realtime = RealtimeSettings {
            max_connections: usize::try_from(v.positive("WS_MAX_CONNECTIONS", 10_000)?)
                .unwrap_or(usize::MAX),
            send_queue: usize::try_from(v.positive("WS_SEND_QUEUE", 1024)?).unwrap_or(usize::MAX),
            max_subscriptions: 1000,
            shards: usize::try_from(v.positive("WS_SHARDS", cores)?).unwrap_or(usize::MAX),
        };
        let ws = WsSettings {
            max_message_bytes: usize::try_from(v.positive("WS_MAX_MESSAGE_BYTES", 65_536)?)
                .unwrap_or(usize::MAX),
            ping_interval: Duration::from_secs(v.positive("WS_PING_INTERVAL", 30)?),
            idle_timeout: Duration::from_secs(v.positive("WS_IDLE_TIMEOUT", 60)?),
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
            changelog_retention: v.positive("CHANGELOG_RETENTION", 10_000)?,
            database_pool_size: pool_size(&v)?,
            log_format,
            core: Settings {
                bcrypt_cost,
                query_limits,
                auth,
                realtime,
                hooks: Hooks::default(),
            },
            http: HttpSettings {
                body_limit,
                trust_forwarded_for,
                ws,
                cache_enabled: v.flag("CACHE_ENABLED", false)?,
                cache_ttl: Duration::from_secs(v.positive("CACHE_TTL", 300)?),
                cors: cors_origins(&v)?,
            },
        })
    }
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
    let n: u64 = v.parse("DATABASE_POOL_SIZE", 16, expected)?;
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
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("PORT", "http"),
            ("PORT", "70000"),
            ("HOST", "localhost:3"),
            ("LOG_FORMAT", "xml"),
            ("TOKEN_EXPIRY", "0"),
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

//! The one table of settings: every environment variable `jxp serve` reads, with its default
//! and a sentence on what it does. `Config::from_vars` takes its defaults from here, the
//! command line turns each entry into a flag (so `jxp serve --help` lists them), and `jxp init`
//! writes its commented `.env` from it, so the three never disagree. A new setting is one entry
//! here and the line in `config.rs` that reads it.

/// What a setting is when it is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// This value, parsed like a given one.
    Value(&'static str),
    /// Computed from other settings; the text says how (shown, never parsed).
    Derived(&'static str),
    /// Not set: the feature it enables is off.
    Unset,
}

/// One environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub default: DefaultValue,
    /// The group it belongs to, as `--help` and the `.env` file head their sections.
    pub section: &'static str,
    /// One sentence on what it does.
    pub help: &'static str,
    /// Its value may hold a password, so `--help` never shows it.
    pub secret: bool,
}

const SERVER: &str = "Server";
const DATABASE: &str = "Database";
const AUTH: &str = "Authentication";
const MAIL: &str = "Password recovery email";
const QUERIES: &str = "Query limits";
const CACHE: &str = "Response cache";
const REALTIME: &str = "Realtime feed";
const MCP: &str = "MCP (Model Context Protocol) for AI clients";
const SCRIPTS: &str = "Script hooks";

const fn value(
    name: &'static str,
    default: &'static str,
    section: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        name,
        default: DefaultValue::Value(default),
        section,
        help,
        secret: false,
    }
}

const fn unset(name: &'static str, section: &'static str, help: &'static str) -> Setting {
    Setting {
        name,
        default: DefaultValue::Unset,
        section,
        help,
        secret: false,
    }
}

const fn secret(setting: Setting) -> Setting {
    Setting {
        secret: true,
        ..setting
    }
}

/// Every setting, in the order `--help` and `.env` list them.
pub const SETTINGS: &[Setting] = &[
    value(
        "PORT",
        "4001",
        SERVER,
        "Port to listen on (0 picks a free one).",
    ),
    value(
        "HOST",
        "127.0.0.1",
        SERVER,
        "Address to listen on; 0.0.0.0 listens on every interface.",
    ),
    Setting {
        name: "API_URL",
        default: DefaultValue::Derived("http://localhost:{PORT}"),
        section: SERVER,
        help: "Public URL of this server, answered as `provider` and the base of next/prev links (API_SERVER is read too).",
        secret: false,
    },
    value(
        "DOCS_ACCESS",
        "protected",
        SERVER,
        "Who may use the console at /docs: public (anyone), protected (it shows the models only after a sign-in) or off (not served).",
    ),
    unset(
        "CORS_ORIGINS",
        SERVER,
        "Other origins whose pages may call this server (comma-separated scheme://host[:port], or * for any); unset: same origin only. The WebSocket upgrade's Origin is checked against the same list.",
    ),
    value(
        "MODEL_DIR",
        "./models",
        SERVER,
        "Directory of model files, one .toml or .json per model.",
    ),
    value(
        "LOG_FORMAT",
        "pretty",
        SERVER,
        "Log format, pretty or json; the level comes from RUST_LOG.",
    ),
    value(
        "METRICS_ENABLED",
        "true",
        SERVER,
        "Count requests, WebSockets and writes for Prometheus at /metrics; false turns the counting off.",
    ),
    secret(unset(
        "METRICS_TOKEN",
        SERVER,
        "A token that reads /metrics as Authorization: Bearer TOKEN without being an admin; unset: admins only.",
    )),
    value(
        "BODY_LIMIT",
        "1mb",
        SERVER,
        "Largest request body (such as 512kb or 1mb); larger ones get 413.",
    ),
    value(
        "HTTP_HEADER_TIMEOUT",
        "30",
        SERVER,
        "Seconds a client has to send a request's headers, from when its connection opens or its previous answer was sent; then the connection is closed.",
    ),
    value(
        "HTTP_BODY_TIMEOUT",
        "30",
        SERVER,
        "Seconds a request's body may take to arrive; a slower one gets 408.",
    ),
    value(
        "HTTP_KEEP_ALIVE_TIMEOUT",
        "15",
        SERVER,
        "Seconds a connection may sit idle between requests before it is closed (WebSockets have their own WS_IDLE_TIMEOUT).",
    ),
    value(
        "HTTP_MAX_CONNECTIONS_PER_CLIENT",
        "256",
        SERVER,
        "HTTP connections one client address (loopback too) may hold open; more are answered 503 and closed.",
    ),
    secret(value(
        "DATABASE_URL",
        "./data/jxp.db",
        DATABASE,
        "A SQLite file path (sqlite://path too) or postgres://user:password@host:port/db.",
    )),
    value(
        "DATABASE_POOL_SIZE",
        "16",
        DATABASE,
        "PostgreSQL only: most connections a process holds, from 2 to 1000.",
    ),
    value(
        "SQLITE_SYNCHRONOUS",
        "normal",
        DATABASE,
        "SQLite only: normal (commits survive a crash of the process) or full (they survive power loss too; each waits for the disk).",
    ),
    value(
        "CHANGELOG_RETENTION",
        "10000",
        DATABASE,
        "Changes kept per model, which realtime clients can replay with `since`.",
    ),
    secret(unset(
        "SHARED_SECRET",
        AUTH,
        "Signs JWTs (16 characters at least); /login/getjwt and password recovery need it.",
    )),
    value(
        "TOKEN_EXPIRY",
        "86400",
        AUTH,
        "Seconds an access token lasts.",
    ),
    value(
        "REFRESH_TOKEN_EXPIRY",
        "2678400",
        AUTH,
        "Seconds a refresh token lasts.",
    ),
    value(
        "BCRYPT_COST",
        "10",
        AUTH,
        "bcrypt cost of password hashes, from 4 to 31.",
    ),
    value(
        "LOGIN_RATE_LIMIT_ENABLED",
        "true",
        AUTH,
        "Rate-limit login attempts per client address (429 beyond).",
    ),
    value(
        "LOGIN_RATE_BURST",
        "8",
        AUTH,
        "Login attempts a client may make in a row.",
    ),
    value(
        "LOGIN_RATE_PER_MINUTE",
        "12",
        AUTH,
        "Login attempts a client regains per minute.",
    ),
    value(
        "LOGIN_RATE_LIMIT_XFF",
        "false",
        AUTH,
        "Take the client address from X-Forwarded-For (only behind a proxy that sets it).",
    ),
    secret(unset(
        "SMTP_URL",
        MAIL,
        "Mail server for recovery emails, smtp://user:pass@host:port or smtps://...; needs SMTP_FROM and PASSWORD_RECOVERY_URL.",
    )),
    unset("SMTP_FROM", MAIL, "Sender address of recovery emails."),
    unset(
        "PASSWORD_RECOVERY_URL",
        MAIL,
        "Page a recovery email links to, with ?token=... appended.",
    ),
    value(
        "QUERY_LIMITS_ENABLED",
        "true",
        QUERIES,
        "Apply the query limits below to lists.",
    ),
    value(
        "QUERY_LIMITS_DEFAULT",
        "100",
        QUERIES,
        "Page size of a list that asks for none.",
    ),
    value(
        "QUERY_LIMITS_MAX",
        "1000",
        QUERIES,
        "Largest page a list may ask for.",
    ),
    value(
        "QUERY_LIMITS_LARGE_COLLECTION_THRESHOLD",
        "10000",
        QUERIES,
        "From this many documents, a list needs a limit or a filter.",
    ),
    value(
        "QUERY_LIMITS_SKIP_COUNT_UNLESS_PAGINATED",
        "true",
        QUERIES,
        "Count a list's total only when it asks for a page or a count.",
    ),
    value(
        "QUERY_LIMITS_MAX_RESPONSE_SIZE",
        "10mb",
        QUERIES,
        "Largest list answer (such as 10mb; 0 for no limit).",
    ),
    value(
        "QUERY_MEMORY_LIMIT",
        "64mb",
        QUERIES,
        "Most document bytes one aggregation, populate or bulk match may build in memory (0 for no limit).",
    ),
    value(
        "QUERY_TIMEOUT",
        "30",
        QUERIES,
        "Seconds one aggregation, populate or bulk match read may run (0 for no limit).",
    ),
    value(
        "COUNT_CACHE_ENABLED",
        "true",
        QUERIES,
        "Keep counts (/count, list counts) until a write to their model; with several servers on one PostgreSQL database a count may lag another server's write by its notification.",
    ),
    value(
        "CACHE_ENABLED",
        "false",
        CACHE,
        "Keep /api GET answers per caller until a write to the model or the TTL.",
    ),
    value(
        "CACHE_TTL",
        "300",
        CACHE,
        "Seconds a cached answer is kept at most.",
    ),
    value(
        "WS_MAX_CONNECTIONS",
        "10000",
        REALTIME,
        "Most WebSocket connections open at once.",
    ),
    value(
        "WS_MAX_MESSAGE_BYTES",
        "65536",
        REALTIME,
        "Largest message a client may send on the WebSocket.",
    ),
    value(
        "WS_SEND_QUEUE",
        "1024",
        REALTIME,
        "Events queued for a slow client before it is closed with 1013.",
    ),
    Setting {
        name: "WS_SHARDS",
        default: DefaultValue::Derived("cores"),
        section: REALTIME,
        help: "Hub shards: the feed's connections are split over them, and each change reaches every shard's sockets in parallel.",
        secret: false,
    },
    value(
        "WS_PING_INTERVAL",
        "30",
        REALTIME,
        "Seconds between pings to each WebSocket client.",
    ),
    value(
        "WS_IDLE_TIMEOUT",
        "60",
        REALTIME,
        "Seconds of silence after which a WebSocket client is closed.",
    ),
    value(
        "MCP_ENABLED",
        "true",
        MCP,
        "Serve the read-only MCP endpoint (Streamable HTTP) for AI clients.",
    ),
    value("MCP_PATH", "/mcp", MCP, "Path of the MCP endpoint."),
    value(
        "MCP_REQUIRE_API_KEY",
        "true",
        MCP,
        "Answer MCP requests without credentials (API key, Bearer token or Basic) with 401.",
    ),
    unset(
        "MCP_MODEL_WHITELIST",
        MCP,
        "Models MCP shows although hidden by default (the built-in auth models, internal ones), comma-separated.",
    ),
    unset(
        "MCP_MODEL_BLACKLIST",
        MCP,
        "Models MCP never shows, comma-separated.",
    ),
    value(
        "MCP_DEFAULT_LIMIT",
        "20",
        MCP,
        "Documents an MCP find or export returns without a limit.",
    ),
    value(
        "MCP_MAX_LIMIT",
        "100",
        MCP,
        "Most documents one MCP find or export returns.",
    ),
    value(
        "MCP_MAX_RESPONSE_SIZE",
        "256kb",
        MCP,
        "Largest MCP tool answer (such as 256kb; 0 for no limit); larger ones are refused with a hint.",
    ),
    unset(
        "MCP_INSTRUCTIONS_APPEND",
        MCP,
        "Text appended to the instructions MCP clients receive on connecting.",
    ),
    unset(
        "MCP_GUIDE_FILES",
        MCP,
        "Markdown files appended to the jxp://guide resource, comma-separated.",
    ),
    value(
        "SCRIPT_TIMEOUT_MS",
        "1000",
        SCRIPTS,
        "Milliseconds one script hook or function may run before it is stopped (500 \"hook timed out\").",
    ),
    value(
        "SCRIPT_MEMORY_MB",
        "64",
        SCRIPTS,
        "Memory each script runtime may use, in MiB.",
    ),
];

/// The entry named `name`.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The text of the `.env` file `jxp init` writes: every setting commented out, with its
/// default and what it does, under its section.
pub fn env_file() -> String {
    let mut out = String::from(
        "# jxp settings. Every line is commented out and shows the default: remove the `#` to\n\
         # change one. Environment variables win over this file; `jxp serve --help` lists the\n\
         # same settings as flags.\n",
    );
    let mut section = "";
    for s in SETTINGS {
        if s.section != section {
            section = s.section;
            out.push_str(&format!("\n# --- {section} ---\n"));
        }
        out.push_str(&format!("\n# {}\n", s.help));
        match s.default {
            DefaultValue::Value(v) => out.push_str(&format!("# {}={v}\n", s.name)),
            DefaultValue::Derived(how) => {
                out.push_str(&format!("# (default: {how})\n# {}=\n", s.name));
            }
            DefaultValue::Unset => out.push_str(&format!("# (unset by default)\n# {}=\n", s.name)),
        }
    }
    out
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_helps_are_one_line() {
        for (i, s) in SETTINGS.iter().enumerate() {
            assert!(
                SETTINGS[..i].iter().all(|earlier| earlier.name != s.name),
                "{} twice",
                s.name
            );
            assert!(
                !s.help.contains('\n') && s.help.ends_with('.'),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn the_env_file_names_every_setting_once() {
        let text = env_file();
        for s in SETTINGS {
            let assignments = text
                .lines()
                .filter(|l| l.starts_with(&format!("# {}=", s.name)))
                .count();
            assert_eq!(assignments, 1, "{}", s.name);
        }
        assert!(
            text.lines().all(|l| l.is_empty() || l.starts_with('#')),
            "every line is a comment"
        );
    }
}

//! Starting a server for a test: model files in a temporary directory, a fresh database (a
//! SQLite file, or a schema of its own on the PostgreSQL server `JXP_TEST_DATABASE_URL`
//! names), and the library's builder, as the binary starts it.

use jxp::{Config, Running};

/// A model `test` open to anonymous callers, with one field of every kind.
pub const OPEN_TEST: &str = r#"
name = "Test"
[fields]
foo = "String"
bar = { type = "String", unique = true, index = true, default = "Some Default" }
n = { type = "Number", min = 0, max = 1000 }
flag = "Boolean"
when = { type = "Date", index = true }
ref_id = { type = "ObjectId", link = "Link" }
yack = "Mixed"
shmack = ["String"]
fulltext = { type = "String", index = "text" }
address = { street = "String", city = { type = "String", default = "Cape Town" } }
composite_array = [{ afoo = "String", abar = "Number" }]
status = { type = "String", enum = ["draft", "published"], default = "draft" }
code = { type = "String", match = "^[a-z]+$", lowercase = true, trim = true, minlength = 2, maxlength = 8 }
secret = { type = "String", private = true }
password = "String"
[perms]
all = "crud"
"#;

/// A model `link` that `test` refers to.
pub const OPEN_LINK: &str = r#"
name = "Link"
[fields]
name = { type = "String", required = true }
[perms]
all = "crud"
"#;

/// Registers hooks and functions on the server's builder.
pub type Setup = std::sync::Arc<dyn Fn(jxp::Builder) -> jxp::Builder + Send + Sync>;

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The `DATABASE_URL` the server runs on: a file in `dir`, or a fresh schema on the
    /// PostgreSQL server `JXP_TEST_DATABASE_URL` names.
    pub database_url: String,
    env: Vec<(String, String)>,
    running: Option<Running>,
    /// What the server is built with beyond its settings: hooks, functions, another model
    /// directory (nothing unless started by `start_with`).
    setup: Setup,
}

/// Whether a test server's `DATABASE_URL` is a PostgreSQL one.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres")
}

/// Runs SQL on a test server's database directly, past the server, as someone editing it by
/// hand would.
pub async fn exec_sql(url: &str, sql: &str) {
    if is_postgres(url) {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap();
    } else {
        let conn = rusqlite::Connection::open(url).unwrap();
        conn.execute_batch(sql).unwrap();
    }
}

/// The PostgreSQL server the suite runs on, if `JXP_TEST_DATABASE_URL` names one and the
/// build has PostgreSQL (without the `postgres` feature the suite runs on SQLite).
pub fn test_postgres() -> Option<String> {
    std::env::var("JXP_TEST_DATABASE_URL")
        .ok()
        .filter(|u| cfg!(feature = "postgres") && !u.is_empty())
}

/// A `DATABASE_URL` for a new test database: a SQLite file in `dir`, or a schema of its own
/// on the test PostgreSQL server.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    #[cfg(feature = "postgres")]
    if let Some(base) = test_postgres() {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!("it_{}_{n}_{nanos}", std::process::id());
        return jxp_store::postgres_schema_url(&base, &schema)
            .await
            .unwrap();
    }
    dir.join("jxp.db").display().to_string()
}

/// The login rate limit off, then `env`. Tests that log in many times must not be throttled
/// (each server has its own limiter); later settings win, so a test may turn it back on.
pub fn logins_unlimited<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("LOGIN_RATE_LIMIT_ENABLED", "false")];
    all.extend_from_slice(env);
    all
}

/// Starts a server on `models` with `env` and the login rate limit off unless `env` turns it
/// on (it also guards WebSocket `auth`).
pub async fn start(models: &[(&str, &str)], env: &[(&str, &str)]) -> TestServer {
    TestServer::start(models, &logins_unlimited(env)).await
}

impl TestServer {
    /// The open `test` and `link` models.
    pub async fn open() -> Self {
        Self::open_with(&[]).await
    }

    /// The open `test` and `link` models, with extra settings.
    pub async fn open_with(env: &[(&str, &str)]) -> Self {
        Self::start(&[("test", OPEN_TEST), ("link", OPEN_LINK)], env).await
    }

    /// Writes `models` (slug, TOML text) and starts a server with extra settings.
    pub async fn start(models: &[(&str, &str)], env: &[(&str, &str)]) -> Self {
        Self::start_with(models, env, std::sync::Arc::new(|b| b)).await
    }

    /// `start`, with hooks and functions registered.
    pub async fn start_with_hooks(
        models: &[(&str, &str)],
        env: &[(&str, &str)],
        hooks: jxp::Hooks,
    ) -> Self {
        Self::start_with(
            models,
            env,
            std::sync::Arc::new(move |b: jxp::Builder| b.hooks(hooks.clone())),
        )
        .await
    }

    /// `start`, with the builder passed through `setup` before it starts.
    pub async fn start_with(models: &[(&str, &str)], env: &[(&str, &str)], setup: Setup) -> Self {
        Self::try_start_files(models, &[], env, setup)
            .await
            .unwrap()
    }

    /// `start`, with script hooks (file name in the model directory, JavaScript text) beside
    /// the models.
    pub async fn start_scripted(
        models: &[(&str, &str)],
        scripts: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Self {
        Self::try_start_scripted(models, scripts, env)
            .await
            .unwrap()
    }

    /// `start_scripted`, answering why the server did not start.
    pub async fn try_start_scripted(
        models: &[(&str, &str)],
        scripts: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let env = logins_unlimited(env);
        Self::try_start_files(models, scripts, &env, std::sync::Arc::new(|b| b)).await
    }

    async fn try_start_files(
        models: &[(&str, &str)],
        scripts: &[(&str, &str)],
        env: &[(&str, &str)],
        setup: Setup,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("models")).unwrap();
        for (slug, text) in models {
            std::fs::write(dir.path().join("models").join(format!("{slug}.toml")), text).unwrap();
        }
        for (file, text) in scripts {
            std::fs::write(dir.path().join("models").join(file), text).unwrap();
        }
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let database_url = fresh_database_url(dir.path()).await;
        let mut server = TestServer {
            base: String::new(),
            client: reqwest::Client::new(),
            dir,
            database_url,
            env,
            running: None,
            setup,
        };
        server.boot().await?;
        Ok(server)
    }

    pub fn config(&self) -> Result<Config, jxp::ConfigError> {
        let root = self.dir.path();
        let mut vars = vec![
            ("PORT".to_owned(), "0".to_owned()),
            (
                "MODEL_DIR".to_owned(),
                root.join("models").display().to_string(),
            ),
            ("DATABASE_URL".to_owned(), self.database_url.clone()),
            ("BCRYPT_COST".to_owned(), "4".to_owned()),
            // Three hub shards whatever the machine's cores, so every realtime test runs with
            // its connections split over shards.
            ("WS_SHARDS".to_owned(), "3".to_owned()),
        ];
        vars.extend(self.env.iter().cloned());
        Config::from_vars(vars)
    }

    /// Starts the server on the current models and database.
    pub async fn boot(&mut self) -> anyhow::Result<()> {
        let builder = jxp::Server::builder().config(self.config()?);
        let running = (self.setup)(builder).start().await?;
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
        Ok(())
    }

    /// The running server's app, to watch its store directly.
    pub fn app(&self) -> &jxp_core::App {
        &self.running.as_ref().expect("server is running").app
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }

    /// Stops and starts again on the same database and models.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await.unwrap();
    }

    /// `jxp add-admin` on the server's database, as its user runs it: with the server stopped
    /// (a SQLite store is open in one process at a time), which then starts again. Answers
    /// the new user's id.
    pub async fn add_admin(&mut self, email: &str, password: &str, name: &str) -> String {
        self.stop().await;
        let id = jxp::add_admin(&self.config().unwrap(), email, password, name)
            .await
            .unwrap();
        self.boot().await.unwrap();
        id
    }

    /// `jxp import MODEL -` of `lines` on the server's database, as its user runs it on SQLite:
    /// with the server stopped, which then starts again. Fails the test if the import fails.
    pub async fn import_lines(&mut self, model: &str, lines: String) {
        self.stop().await;
        let ran = super::run_jxp_with_stdin(
            self.dir.path(),
            &self.database_url,
            &["import", model, "-"],
            Some(lines.into_bytes()),
        )
        .await;
        assert!(ran.success, "{}", ran.stderr);
        self.boot().await.unwrap();
    }

    /// Replaces one model file (for schema evolution).
    pub fn write_model(&self, slug: &str, text: &str) {
        std::fs::write(
            self.dir.path().join("models").join(format!("{slug}.toml")),
            text,
        )
        .unwrap();
    }
}

//! The built `jxp` binary as an operator meets it: `jxp serve --help` lists every setting,
//! the start-up log says what runs where (plain text when not on a terminal), model-file
//! warnings name file and line, and flags, the environment and `.env` are read in that order.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::{OPEN_LINK, OPEN_TEST};

/// `jxp serve` in `dir`, its log read line by line; killed when dropped.
struct Serving {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    /// Starts `jxp serve ARGS` in `dir` with only `env` set beyond PATH, stdout and stderr
    /// piped (so not a terminal).
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serving {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jxp"))
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, lines) = mpsc::channel();
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [out, err] {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Serving {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Reads the log until a line contains `needle`; fails the test with the log so far at
    /// the deadline or when the process ends first.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.log.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(_) => panic!("no log line with {needle:?}:\n{}", self.log.join("\n")),
            }
        }
    }
}

/// A project directory: the open `test` and `link` models in `models_dir`, plus `extra`
/// model files.
fn project(models_dir: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join(models_dir);
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(models.join("test.toml"), OPEN_TEST).unwrap();
    std::fs::write(models.join("link.toml"), OPEN_LINK).unwrap();
    for (name, text) in extra {
        std::fs::write(models.join(name), text).unwrap();
    }
    dir
}

fn url_of(listening: &str) -> String {
    let start = listening.find("url=").unwrap() + "url=".len();
    listening[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_start_up_log_says_what_runs_where_in_plain_text() {
    let dir = project(
        "models",
        &[
            ("closed.toml", "[fields]\ntitle = \"String\"\n"),
            (
                "typo.toml",
                "[fields]\ntitle = \"String\"\n\n[perms]\nadmn = \"crud\"\nall = \"r\"\n",
            ),
        ],
    );
    // PORT=1 cannot be bound by a test: the flag must win over the environment.
    let mut jxp = Serving::start(
        dir.path(),
        &["--port", "0"],
        &[("PORT", "1"), ("BCRYPT_COST", "4"), ("RUST_LOG", "info")],
    );
    let listening = jxp.wait_for("jxp listening");
    jxp.wait_for("no users yet: POST /setup or `jxp add-admin` (with the server stopped)");
    // The listening line is the last of the start-up lines, so the log is whole.
    let log = jxp.log.join("\n");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a piped log:\n{log}"
    );
    jxp.wait_for(&format!("jxp {} starting", env!("CARGO_PKG_VERSION")));
    jxp.wait_for("4 models loaded from ./models: closed, link, test, typo");
    jxp.wait_for("database: SQLite at ./data/jxp.db");
    let closed = jxp.wait_for("model \"closed\" has no [perms]");
    assert!(
        closed.contains("WARN") && closed.contains("closed.toml:"),
        "{closed}"
    );
    let typo = jxp.wait_for("perms group \"admn\"");
    assert!(
        typo.contains("WARN") && typo.contains("typo.toml:5:"),
        "{typo}"
    );

    let url = url_of(&listening);
    assert!(url.starts_with("http://127.0.0.1:"), "{listening}");
    let resp = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "the logged URL serves");
    // The model without perms answers 403 to everyone, as its warning says.
    let resp = reqwest::get(format!("{url}/api/closed")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

/// `.env` is read as the environment; once a user exists there is no "no users yet" line.
#[tokio::test]
async fn dot_env_is_read_and_a_store_with_users_says_nothing_of_setup() {
    let dir = project("mymodels", &[]);
    std::fs::write(
        dir.path().join(".env"),
        "MODEL_DIR=./mymodels\nDATABASE_URL=./db/app.db\nBCRYPT_COST=4\nPORT=0\n",
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_jxp"))
        .args(["add-admin", "--email", "a@example.com"])
        .args(["--password", "a long secret", "--name", "A"])
        .current_dir(dir.path())
        .env_clear()
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut jxp = Serving::start(dir.path(), &[], &[("RUST_LOG", "info")]);
    jxp.wait_for("2 models loaded from ./mymodels: link, test");
    jxp.wait_for("database: SQLite at ./db/app.db");
    // The listening line is the last of the start-up lines.
    jxp.wait_for("jxp listening");
    let log = jxp.log.join("\n");
    assert!(!log.contains("no users yet"), "{log}");
}

/// `jxp serve --help` lists every setting with its variable and its default.
#[test]
fn serve_help_lists_every_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_jxp"))
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    // Long lines wrap, so look at the text with its line breaks as spaces.
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for s in jxp::SETTINGS {
        let flag = format!("--{}", s.name.to_ascii_lowercase().replace('_', "-"));
        assert!(flat.contains(&flag), "{flag} missing:\n{help}");
        assert!(
            flat.contains(&format!("[env: {}", s.name)),
            "{}:\n{help}",
            s.name
        );
        let default = match s.default {
            jxp::DefaultValue::Value(v) | jxp::DefaultValue::Derived(v) => {
                format!("[default: {v}]")
            }
            jxp::DefaultValue::Unset => "[default: unset]".to_owned(),
        };
        assert!(flat.contains(&default), "{} {default}:\n{help}", s.name);
    }
    assert!(flat.contains("[env: PORT=] [default: 4001]"), "{help}");
}

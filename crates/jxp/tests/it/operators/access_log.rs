//! The access log of a real `jxp serve` process: one line per request under the `jxp::access`
//! target, with method, path (credentials masked), status, bytes, duration and user; and
//! `RUST_LOG` turns it off. The database's notices stay out of the log.

use serde_json::{Value, json};

use crate::harness::fresh_database_url;
use crate::harness::{Proc, spawn_with, stop_process};

const LOGGED: &str = r#"
name = "Logged"
[fields]
title = "String"
[perms]
user = "crud"
"#;

const KEY: &str = "S3CRETKEYdoNotLog0123";
const PASSWORD: &str = "hunter2-is-a-password";

async fn serve(dir: &std::path::Path, name: &str, rust_log: &str) -> Proc {
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(dir.join("models/logged.toml"), LOGGED).unwrap();
    let url = fresh_database_url(dir).await;
    spawn_with(
        dir,
        &url,
        name,
        &[("RUST_LOG", rust_log), ("METRICS_ENABLED", "false")],
    )
    .await
}

/// The JSON lines of the access log in the stopped server's log.
fn access_lines(dir: &std::path::Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(format!("{name}.log")))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "jxp::access")
        .collect()
}

#[tokio::test]
async fn each_request_is_logged_with_its_credentials_masked() {
    let dir = tempfile::tempdir().unwrap();
    let proc = serve(dir.path(), "server", "warn,jxp=info").await;
    let client = reqwest::Client::new();
    let base = &proc.base;
    let setup = client
        .post(format!("{base}/setup"))
        .json(&json!({ "email": "a@example.com", "password": PASSWORD, "name": "A" }))
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 200);
    let admin: Value = setup.json().await.unwrap();
    let admin_id = admin["user_id"].as_str().unwrap();

    let refused = client
        .get(format!(
            "{base}/api/logged?apikey={KEY}&limit=5&password={PASSWORD}&access_token=tok123"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let created = client
        .post(format!("{base}/api/logged"))
        .basic_auth("a@example.com", Some(PASSWORD))
        .json(&json!({ "title": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let bytes = created.bytes().await.unwrap().len();
    stop_process(proc).await;

    let lines = access_lines(dir.path(), "server");
    let text = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(!text.contains(KEY), "the API key reached the log:\n{text}");
    assert!(
        !text.contains(PASSWORD),
        "a password reached the log:\n{text}"
    );
    assert!(!text.contains("tok123"), "a token reached the log:\n{text}");

    let fields = |path_start: &str, method: &str| {
        lines
            .iter()
            .map(|l| &l["fields"])
            .find(|f| {
                f["method"] == method
                    && f["path"]
                        .as_str()
                        .is_some_and(|p| p.starts_with(path_start))
            })
            .unwrap_or_else(|| panic!("no access line for {method} {path_start}:\n{text}"))
            .clone()
    };
    let get = fields("/api/logged?", "GET");
    assert_eq!(
        get["path"],
        "/api/logged?apikey=[redacted]&limit=5&password=[redacted]&access_token=[redacted]"
    );
    assert_eq!(get["status"], 403);
    assert!(get["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(get.get("user").is_none_or(Value::is_null), "{get}");

    let post = fields("/api/logged", "POST");
    assert_eq!(post["path"], "/api/logged");
    assert_eq!(post["status"], 200);
    assert_eq!(post["bytes"], json!(bytes));
    assert_eq!(post["user"], admin_id);
}

#[tokio::test]
async fn rust_log_turns_the_access_log_off() {
    let dir = tempfile::tempdir().unwrap();
    let proc = serve(dir.path(), "quiet", "info,jxp::access=off").await;
    let r = reqwest::get(format!("{}/healthz", proc.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(format!("{}/api/logged?apikey={KEY}", proc.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    stop_process(proc).await;
    assert!(access_lines(dir.path(), "quiet").is_empty());
    let text = std::fs::read_to_string(dir.path().join("quiet.log")).unwrap();
    assert!(
        text.contains("jxp listening"),
        "the rest of the log stays on:\n{text}"
    );
}

#[tokio::test]
async fn a_restart_logs_no_database_notices() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(dir.path().join("models/logged.toml"), LOGGED).unwrap();
    let url = fresh_database_url(dir.path()).await;
    // The second start finds every table and index there: on PostgreSQL each
    // `CREATE … IF NOT EXISTS` answered a notice, which the driver logged at INFO.
    for name in ["first", "second"] {
        let proc = spawn_with(dir.path(), &url, name, &[("RUST_LOG", "info")]).await;
        let r = reqwest::get(format!("{}/healthz", proc.base))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        stop_process(proc).await;
        let text = std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap();
        assert!(text.contains("jxp listening"), "{text}");
        assert!(!text.contains("NOTICE"), "{name} start:\n{text}");
    }
}

#[tokio::test]
async fn every_request_of_a_burst_is_logged_once_and_whole() {
    let dir = tempfile::tempdir().unwrap();
    let proc = serve(dir.path(), "burst", "warn,jxp=info").await;
    let base = proc.base.clone();
    // Sixteen clients with connections of their own, so the requests spread over the server's
    // worker threads and each thread's buffer holds some of the lines.
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..16 {
        let base = base.clone();
        tasks.spawn(async move {
            let http = reqwest::Client::new();
            for n in 0..25 {
                let tag = client * 25 + n;
                let r = http
                    .get(format!("{base}/api/logged?tag={tag}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 403);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    // A line reaches the log while the server runs, not only when it stops.
    let log = dir.path().join("burst.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("/api/logged?tag=")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no access line was written while the server ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop_process(proc).await;

    let text = std::fs::read_to_string(&log).unwrap();
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "a torn or merged line: {line}"
        );
    }
    let mut tags: Vec<u32> = access_lines(dir.path(), "burst")
        .iter()
        .filter_map(|l| {
            l["fields"]["path"]
                .as_str()?
                .strip_prefix("/api/logged?tag=")
        })
        .map(|tag| tag.parse().unwrap())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, (0..400).collect::<Vec<u32>>(), "each request once");
}

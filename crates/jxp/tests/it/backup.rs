//! `jxp backup` and `jxp restore` on SQLite, run as a user runs them next to a real `jxp serve`
//! process: a backup taken under write load holds every write acknowledged before it began,
//! and nothing replaces a store a server has open or a file nobody asked to replace.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::harness::{Proc, run_jxp, spawn};

const NOTE: &str = r#"
name = "Note"
[fields]
n = "Number"
writer = "Number"
[perms]
all = "crud"
"#;

/// A project directory with the `note` model, and the path of its (not yet created) store.
fn project() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(dir.path().join("models/note.toml"), NOTE).unwrap();
    let db = dir.path().join("data").join("jxp.db").display().to_string();
    (dir, db)
}

async fn create(client: &reqwest::Client, base: &str, body: Value) -> String {
    let resp = client
        .post(format!("{base}/api/note"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["data"]["_id"].as_str().unwrap().to_owned()
}

async fn total(base: &str) -> u64 {
    let body: Value = reqwest::get(format!("{base}/count/note"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["count"].as_u64().unwrap()
}

async fn present(client: &reqwest::Client, base: &str, id: &str) -> bool {
    let resp = client
        .get(format!("{base}/api/note/{id}"))
        .send()
        .await
        .unwrap();
    match resp.status() {
        StatusCode::OK => true,
        StatusCode::NOT_FOUND => false,
        other => panic!("GET note {id}: {other}"),
    }
}

/// Writers that create notes as fast as the server answers, until told to stop; each
/// acknowledged id is recorded with the moment its answer arrived.
struct Load {
    acked: Arc<Mutex<Vec<(String, Instant)>>>,
    count: watch::Receiver<usize>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str, writers: u32) -> Load {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0);
        let count_tx = Arc::new(count_tx);
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..writers)
            .map(|writer| {
                let (base, acked, count_tx, stopped) = (
                    base.to_owned(),
                    acked.clone(),
                    count_tx.clone(),
                    stopped.clone(),
                );
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut n = 0;
                    while !*stopped.borrow() {
                        let id = create(&client, &base, json!({"n": n, "writer": writer})).await;
                        let at = Instant::now();
                        let mut acked = acked.lock().unwrap();
                        acked.push((id, at));
                        count_tx.send_replace(acked.len());
                        n += 1;
                    }
                })
            })
            .collect();
        Load {
            acked,
            count,
            stop,
            tasks,
        }
    }

    /// Waits until `n` writes have been acknowledged.
    async fn reach(&mut self, n: usize) {
        tokio::time::timeout(Duration::from_secs(60), self.count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} acknowledged writes within 60 s"))
            .unwrap();
    }

    /// Stops the writers; answers every acknowledged write.
    async fn finish(self) -> Vec<(String, Instant)> {
        self.stop.send_replace(true);
        for task in self.tasks {
            task.await.unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_backup_under_write_load_restores_every_write_acknowledged_before_it_began() {
    let (dir, db) = project();
    let server = spawn(dir.path(), &db, "serve").await;
    let mut load = Load::start(&server.base, 4);
    load.reach(200).await;

    let file = dir.path().join("backup.db").display().to_string();
    let began = Instant::now();
    let backup = run_jxp(dir.path(), &db, &["backup", &file]).await;
    let ended = Instant::now();
    assert!(backup.success, "{}", backup.stderr);
    assert!(
        backup.stdout.starts_with(&format!("wrote {file}")) && backup.stdout.contains("note: "),
        "{}",
        backup.stdout
    );
    // The load went on during the backup, and goes on after it.
    let during = *load.count.borrow();
    load.reach(during + 50).await;
    let acked = load.finish().await;
    drop(server);

    let restored_db = dir
        .path()
        .join("restored")
        .join("jxp.db")
        .display()
        .to_string();
    let restore = run_jxp(dir.path(), &restored_db, &["restore", &file]).await;
    assert!(restore.success, "{}", restore.stderr);
    assert!(
        restore
            .stdout
            .starts_with(&format!("restored {restored_db} from {file}")),
        "{}",
        restore.stdout
    );

    let server = spawn(dir.path(), &restored_db, "restored").await;
    let client = reqwest::Client::new();
    let before: Vec<&String> = acked
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(id, _)| id)
        .collect();
    assert!(before.len() >= 200, "{}", before.len());
    assert!(
        acked.iter().any(|(_, at)| *at > began && *at < ended),
        "writes were acknowledged while the backup ran"
    );
    for id in &before {
        assert!(
            present(&client, &server.base, id).await,
            "note {id}, acknowledged before the backup began, is missing"
        );
    }
    // Writes acknowledged later may or may not be in it; the total is all the backup holds.
    let stored = total(&server.base).await;
    assert!(
        stored >= before.len() as u64 && stored <= acked.len() as u64,
        "{stored} notes, {} acknowledged before the backup, {} in all",
        before.len(),
        acked.len()
    );
    // The restored store takes writes as usual.
    let id = create(&client, &server.base, json!({"n": -1})).await;
    assert!(present(&client, &server.base, &id).await);
    assert_eq!(total(&server.base).await, stored + 1);
}

/// Everything a store holds, by id.
async fn ids(server: &Proc) -> Vec<String> {
    let body: Value = reqwest::get(format!("{}/api/note?limit=1000", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_store_a_server_has_open_is_never_replaced_nor_served_twice() {
    let (dir, db) = project();
    let server = spawn(dir.path(), &db, "serve").await;
    let client = reqwest::Client::new();
    let first = create(&client, &server.base, json!({"n": 1})).await;
    let file = dir.path().join("backup.db").display().to_string();
    assert!(run_jxp(dir.path(), &db, &["backup", &file]).await.success);
    create(&client, &server.base, json!({"n": 2})).await;
    let before = ids(&server).await;
    assert_eq!(before.len(), 2);

    let restore = run_jxp(dir.path(), &db, &["restore", "--force", &file]).await;
    assert!(!restore.success, "{}", restore.stdout);
    assert!(
        restore.stderr.contains("in use by another jxp process")
            && restore.stderr.contains("stop it first"),
        "{}",
        restore.stderr
    );
    let second = run_jxp(dir.path(), &db, &["serve"]).await;
    assert!(!second.success, "a second server on one file started");
    assert!(
        second.stderr.contains("in use by another jxp process"),
        "{}",
        second.stderr
    );
    let admin = run_jxp(
        dir.path(),
        &db,
        &[
            "add-admin",
            "--email",
            "a@example.com",
            "--password",
            "a-long-secret",
            "--name",
            "A",
        ],
    )
    .await;
    assert!(!admin.success, "{}", admin.stdout);
    assert!(admin.stderr.contains("in use"), "{}", admin.stderr);
    assert_eq!(ids(&server).await, before, "the store is unchanged");
    create(&client, &server.base, json!({"n": 3})).await;
    assert_eq!(ids(&server).await.len(), 3, "and still takes writes");

    // A backup never replaces a file unless asked to.
    let kept = std::fs::read(&file).unwrap();
    let again = run_jxp(dir.path(), &db, &["backup", &file]).await;
    assert!(!again.success);
    assert!(
        again.stderr.contains("already exists") && again.stderr.contains("--force"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read(&file).unwrap(), kept);

    // With the server stopped, a restore over the store is asked for explicitly.
    drop(server);
    let refused = run_jxp(dir.path(), &db, &["restore", &file]).await;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("pass --force") && refused.stderr.contains("3 documents"),
        "{}",
        refused.stderr
    );
    let restored = run_jxp(dir.path(), &db, &["restore", "--force", &file]).await;
    assert!(restored.success, "{}", restored.stderr);
    assert!(
        restored.stdout.contains("replaced") && restored.stdout.contains("1 document"),
        "{}",
        restored.stdout
    );
    let server = spawn(dir.path(), &db, "again").await;
    assert_eq!(ids(&server).await, [first]);
}

#[tokio::test]
async fn on_postgresql_the_commands_give_the_pg_dump_and_pg_restore_lines() {
    let (dir, _) = project();
    // Nothing listens on port 1: the commands must not need the server to answer.
    let url = "postgres://app:hunter2@127.0.0.1:1/prod?sslmode=disable";
    for command in ["backup", "restore"] {
        let ran = run_jxp(dir.path(), url, &[command, "prod.dump"]).await;
        assert!(!ran.success, "{}", ran.stdout);
        assert!(
            ran.stderr.contains(
                "pg_dump --format=custom --file=prod.dump \
                 'postgres://app@127.0.0.1:1/prod?sslmode=disable'"
            ) && ran.stderr.contains("pg_restore --clean"),
            "{}",
            ran.stderr
        );
        assert!(!ran.stderr.contains("hunter2"), "{}", ran.stderr);
    }
    assert!(!dir.path().join("prod.dump").exists());
}

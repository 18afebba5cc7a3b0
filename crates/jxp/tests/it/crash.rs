//! `kill -9` of a real `jxp serve` process on SQLite while sixteen writers keep it busy,
//! three times over one store: after each restart every write that was acknowledged is there,
//! at most the writes in flight at the kill are there besides, and the change log holds every
//! stored write once, in `seq` order with no gap, so a subscriber replaying from 0 sees them
//! all.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::realtime::client::WsClient;
use crate::harness::{KillLoad, basic_header, run_jxp, spawn};

const NOTE: &str = r#"
name = "Note"
[fields]
n = "Number"
[perms]
admin = "crud"
"#;

const EMAIL: &str = "admin@example.com";
const PASSWORD: &str = "admin-secret-1";
const WRITERS: usize = 16;

/// Creates a note; `None` once the server is gone (the write may or may not have committed).
async fn create(client: &reqwest::Client, base: &str, n: usize) -> Option<String> {
    let resp = client
        .post(format!("{base}/api/note"))
        .header("authorization", basic_header(EMAIL, PASSWORD))
        .json(&json!({ "n": n }))
        .send()
        .await
        .ok()?;
    if resp.status() != StatusCode::OK {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    body["data"]["_id"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_write_load_loses_no_acknowledged_write_and_no_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(dir.path().join("models/note.toml"), NOTE).unwrap();
    let db = dir.path().join("data").join("jxp.db").display().to_string();
    let ran = run_jxp(
        dir.path(),
        &db,
        &[
            "add-admin",
            "--email",
            EMAIL,
            "--password",
            PASSWORD,
            "--name",
            "Admin",
        ],
    )
    .await;
    assert!(ran.success, "{}", ran.stderr);

    let client = reqwest::Client::new();
    let mut acked: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut server = spawn(dir.path(), &db, &format!("round{round}")).await;
        let (c, base) = (client.clone(), server.base.clone());
        let mut load = KillLoad::start(WRITERS, move |w, i| {
            let (c, base) = (c.clone(), base.clone());
            async move { create(&c, &base, w * 1_000_000 + i).await }
        });
        load.wait_for(150).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        acked.extend(load.acknowledged().await);
        drop(server);

        let server = spawn(dir.path(), &db, &format!("after{round}")).await;
        for id in &acked {
            let resp = client
                .get(format!("{}/api/note/{id}", server.base))
                .header("authorization", basic_header(EMAIL, PASSWORD))
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "round {round}: acknowledged {id}"
            );
        }
        let counted: Value = client
            .get(format!("{}/count/note", server.base))
            .header("authorization", basic_header(EMAIL, PASSWORD))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let total = usize::try_from(counted["count"].as_u64().unwrap()).unwrap();
        // A write in flight at each kill may have committed without its answer arriving.
        assert!(
            total >= acked.len() && total <= acked.len() + WRITERS * (round + 1),
            "round {round}: {total} stored, {} acknowledged",
            acked.len()
        );
        // The change log holds each stored write once, in order: a replay from 0 is them all.
        let mut c = WsClient::try_connect(&server.base, "/websocket")
            .await
            .unwrap();
        c.auth_ok(json!({"email": EMAIL, "password": PASSWORD}))
            .await;
        c.subscribe_ok(json!({"model": "note", "since": 0})).await;
        let seqs: Vec<u64> = c
            .events(total)
            .await
            .iter()
            .map(|e| e["data"]["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (1..=total as u64).collect::<Vec<_>>(),
            "round {round}"
        );
    }
}

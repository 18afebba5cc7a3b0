//! More than one process on one PostgreSQL database: real `jxp serve` processes (the built
//! binary), each with its own store. Skipped, with a note, unless `JXP_TEST_DATABASE_URL`
//! names a server.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::client::{QUIET, WsClient};
use super::support::{ITEM, PARENT, assert_deauth, seq};
use crate::harness::{
    KillLoad, Proc, basic_header, fresh_database_url, spawn, spawn_with, test_postgres,
};

pub(super) const EMAIL: &str = "admin@example.com";
pub(super) const PASSWORD: &str = "admin-secret-1";

/// A directory with the `item` model, a fresh database, and the first admin made through
/// the first process.
async fn setup() -> Option<(tempfile::TempDir, String)> {
    if test_postgres().is_none() {
        eprintln!("note: JXP_TEST_DATABASE_URL is not set; the multi-process tests are skipped");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(dir.path().join("models/item.toml"), ITEM).unwrap();
    std::fs::write(dir.path().join("models/parent.toml"), PARENT).unwrap();
    let url = fresh_database_url(dir.path()).await;
    Some((dir, url))
}

/// Two processes, `a` and `b`, on one fresh database, the first admin made through `a`; with
/// the directory they serve and the database's URL.
async fn two_processes() -> Option<(tempfile::TempDir, String, Proc, Proc)> {
    let (dir, url) = setup().await?;
    let a = spawn(dir.path(), &url, "a").await;
    let b = spawn(dir.path(), &url, "b").await;
    make_admin(&a).await;
    Some((dir, url, a, b))
}

pub(super) async fn make_admin(p: &Proc) {
    let resp = reqwest::Client::new()
        .post(format!("{}/setup", p.base))
        .json(&json!({"email": EMAIL, "password": PASSWORD, "name": "Admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// Creates an item through `base`; answers its `_id`, or `None` if the write failed.
pub(super) async fn create(client: &reqwest::Client, base: &str, name: &str) -> Option<String> {
    let resp = client
        .post(format!("{base}/api/item"))
        .header("authorization", basic_header(EMAIL, PASSWORD))
        .json(&json!({"name": name}))
        .send()
        .await
        .ok()?;
    if resp.status() != StatusCode::OK {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    body["data"]["_id"].as_str().map(str::to_owned)
}

async fn subscriber(base: &str, sub: Value) -> WsClient {
    let mut c = WsClient::try_connect(base, "/websocket").await.unwrap();
    c.auth_ok(json!({"email": EMAIL, "password": PASSWORD}))
        .await;
    c.subscribe_ok(sub).await;
    c
}

/// The `seq`s of the next `n` events, each checked to be a created item.
async fn seqs(c: &mut WsClient, n: usize) -> Vec<u64> {
    c.events(n)
        .await
        .iter()
        .map(|e| {
            assert_eq!(e["data"]["modelname"], "item", "{e}");
            seq(e)
        })
        .collect()
}

/// `tasks` concurrent writers on each of `bases`, `each` items apiece.
async fn load(bases: &[&str], tasks: usize, each: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut handles = Vec::new();
    for base in bases {
        for t in 0..tasks {
            let (client, base) = (client.clone(), (*base).to_owned());
            handles.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..each {
                    ids.push(create(&client, &base, &format!("w{t}-{i}")).await.unwrap());
                }
                ids
            }));
        }
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.extend(h.await.unwrap());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_process_sees_every_write_of_both_in_seq_order() {
    let Some((_dir, url, a, b)) = two_processes().await else {
        return;
    };
    let mut on_b = subscriber(&b.base, json!({"model": "item"})).await;

    // Writes through A reach B's subscriber, in order.
    assert_eq!(load(&[&a.base], 1, 20).await.len(), 20);
    assert_eq!(seqs(&mut on_b, 20).await, (1..=20).collect::<Vec<u64>>());

    // Both write at once: B's subscriber gets every seq once, in order.
    assert_eq!(load(&[&a.base, &b.base], 3, 15).await.len(), 90);
    assert_eq!(seqs(&mut on_b, 90).await, (21..=110).collect::<Vec<u64>>());
    on_b.expect_no_event(QUIET).await;

    // Replay on B covers writes made through A.
    let mut replay = subscriber(&b.base, json!({"model": "item", "since": 100})).await;
    assert_eq!(
        seqs(&mut replay, 10).await,
        (101..=110).collect::<Vec<u64>>()
    );

    // B's listener connection is killed: it reconnects and loses nothing written meanwhile.
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'jxp-listener jxp_' || current_schema()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 2, "both processes' listeners");
    assert_eq!(load(&[&a.base], 2, 10).await.len(), 20);
    assert_eq!(seqs(&mut on_b, 20).await, (111..=130).collect::<Vec<u64>>());
    assert_eq!(
        seqs(&mut replay, 20).await,
        (111..=130).collect::<Vec<u64>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_process_mid_load_loses_no_acknowledged_write() {
    let Some((_dir, _, mut a, b)) = two_processes().await else {
        return;
    };
    let mut on_b = subscriber(&b.base, json!({"model": "item"})).await;

    // Writers on A until it dies; every write A acknowledged is counted.
    let (client, base) = (reqwest::Client::new(), a.base.clone());
    let mut load = KillLoad::start(4, move |t, i| {
        let (client, base) = (client.clone(), base.clone());
        async move { create(&client, &base, &format!("k{t}-{i}")).await }
    });
    load.wait_for(60).await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let acked = load.acknowledged().await;
    assert!(acked.len() >= 60);

    // B serves on, holds every acknowledged write, and streamed each of them.
    let client = reqwest::Client::new();
    for id in &acked {
        let resp = client
            .get(format!("{}/api/item/{id}", b.base))
            .header("authorization", basic_header(EMAIL, PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "acknowledged {id} is stored");
    }
    let (status, total) = {
        let resp = client
            .get(format!("{}/count/item", b.base))
            .header("authorization", basic_header(EMAIL, PASSWORD))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK, "{total}");
    let total = usize::try_from(total["count"].as_u64().unwrap()).unwrap();
    // A write in flight at the kill may have committed without its answer arriving.
    assert!(total >= acked.len() && total <= acked.len() + 4, "{total}");
    let streamed = seqs(&mut on_b, total).await;
    assert_eq!(streamed, (1..=total as u64).collect::<Vec<u64>>());
    let after = create(&client, &b.base, "after")
        .await
        .expect("B still writes");
    let ev = on_b.event().await;
    assert_eq!(ev["data"]["item"]["_id"], after.as_str());
}

/// Polls `check` until it holds or 10 s pass: another process's caches follow its change
/// stream, and no event here says when that has happened.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_follow_writes_made_by_another_process() {
    let Some((dir, url)) = setup().await else {
        return;
    };
    let cached = [("CACHE_ENABLED", "true"), ("CACHE_TTL", "600")];
    let a = spawn_with(dir.path(), &url, "a", &cached).await;
    let b = spawn_with(dir.path(), &url, "b", &cached).await;
    make_admin(&a).await;
    let client = reqwest::Client::new();
    let get = |base: String, auth: String| {
        let client = client.clone();
        async move {
            let resp = client
                .get(format!("{base}/api/item"))
                .header("authorization", auth)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let hit = resp.headers().get("jxp-cache").map(|v| v == "hit");
            (
                status,
                hit,
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let admin = basic_header(EMAIL, PASSWORD);

    // B caches its answer; a write through A makes it stale on B too.
    create(&client, &a.base, "one").await.unwrap();
    get(b.base.clone(), admin.clone()).await;
    let (_, hit, body) = get(b.base.clone(), admin.clone()).await;
    assert_eq!(
        (hit, body["data"].as_array().map(Vec::len)),
        (Some(true), Some(1))
    );
    create(&client, &a.base, "two").await.unwrap();
    eventually("B's cached list shows A's write", async || {
        get(b.base.clone(), admin.clone()).await.2["data"]
            .as_array()
            .map(Vec::len)
            == Some(2)
    })
    .await;

    // A user known to B (identity cached there) changes password through A: B stops taking
    // the old one.
    let resp = client
        .post(format!("{}/api/user", a.base))
        .header("authorization", admin.clone())
        .json(&json!({"name": "Carol", "email": "carol@example.com", "password": "carol-pw-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let carol: Value = resp.json().await.unwrap();
    let carol_id = carol["data"]["_id"].as_str().unwrap().to_owned();
    let old = basic_header("carol@example.com", "carol-pw-1");
    assert_eq!(get(b.base.clone(), old.clone()).await.0, StatusCode::OK);
    let resp = client
        .put(format!("{}/api/user/{carol_id}", a.base))
        .header("authorization", admin.clone())
        .json(&json!({"password": "carol-pw-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Wrong credentials are a 403 here.
    eventually("B refuses the old password", async || {
        get(b.base.clone(), old.clone()).await.0 == StatusCode::FORBIDDEN
    })
    .await;
    let new = basic_header("carol@example.com", "carol-pw-2");
    assert_eq!(get(b.base.clone(), new).await.0, StatusCode::OK);
}

/// How many items the server at `base` holds, as the admin counts them.
pub(super) async fn count(base: &str) -> u64 {
    let resp = reqwest::Client::new()
        .get(format!("{base}/count/item"))
        .header("authorization", basic_header(EMAIL, PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["count"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_count_is_current_once_another_processs_write_reaches_the_feed() {
    let Some((_dir, _, a, b)) = two_processes().await else {
        return;
    };
    let mut on_b = subscriber(&b.base, json!({"model": "item"})).await;
    let client = reqwest::Client::new();
    for i in 1..=20 {
        // Asked twice, so B keeps it.
        assert_eq!(count(&b.base).await, i - 1);
        assert_eq!(count(&b.base).await, i - 1);
        create(&client, &a.base, &format!("c{i}")).await.unwrap();
        // A client that has the event and counts again gets the new count at once.
        assert_eq!(seqs(&mut on_b, 1).await, vec![i]);
        assert_eq!(count(&b.base).await, i, "after event {i}");
    }
}

/// A login through `base`; answers its access token.
async fn login_token(client: &reqwest::Client, base: &str) -> String {
    let resp = client
        .post(format!("{base}/login"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// The status of a REST read through `base` with a Bearer token.
async fn read_status(client: &reqwest::Client, base: &str, token: &str) -> StatusCode {
    client
        .get(format!("{base}/api/item"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_process_ends_that_login_on_another_at_once() {
    let Some((_dir, _, a, b)) = two_processes().await else {
        return;
    };
    let client = reqwest::Client::new();
    let ended = login_token(&client, &a.base).await;
    let kept = login_token(&client, &a.base).await;
    // B has resolved (and cached) both tokens, and holds a socket authenticated with each.
    let mut sockets = Vec::new();
    for token in [&ended, &kept] {
        assert_eq!(read_status(&client, &b.base, token).await, StatusCode::OK);
        let mut c = WsClient::try_connect(&b.base, "/websocket").await.unwrap();
        c.auth_ok(json!({"token": token})).await;
        c.subscribe_ok(json!({"model": "item"})).await;
        sockets.push(c);
    }
    let (mut on_ended, mut on_kept) = (sockets.remove(0), sockets.remove(0));

    let resp = client
        .get(format!("{}/logout", a.base))
        .bearer_auth(&ended)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ev = on_ended
        .next_event(Duration::from_secs(1))
        .await
        .expect("the socket on B is de-authenticated within 1 s of the logout on A");
    assert_deauth(&ev, on_ended.client_id.as_deref());
    // Wrong credentials are a 403 here.
    assert_eq!(
        read_status(&client, &b.base, &ended).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(read_status(&client, &b.base, &kept).await, StatusCode::OK);
    on_kept.expect_no_event(QUIET).await;
    let id = create(&client, &a.base, "after").await.unwrap();
    assert_eq!(on_kept.event().await["data"]["item"]["_id"], id.as_str());
    on_ended.expect_no_event(QUIET).await;
}

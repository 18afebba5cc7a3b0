//! Order and completeness: `since` replay, the replay/live seam under racing writes,
//! retention, and many rapid writes delivered in `seq` order.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Notify;

use super::client::QUIET;
use super::support::{change, seq, subscribed, world};
use crate::harness::{Account, create_as, update_as};

/// Collects `n` events and answers them with their `seq`s and item ids.
async fn collect(c: &mut super::client::WsClient, n: usize) -> Vec<(u64, String, String)> {
    c.events(n)
        .await
        .iter()
        .map(|e| {
            (
                seq(e),
                e["data"]["event"].as_str().unwrap_or_default().to_owned(),
                e["data"]["item"]["_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no item _id: {e}"))
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn since_replays_the_retained_events_then_goes_live() {
    let w = world(&[]).await;
    let mut observer = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create_as(&w.s, &w.alice, "item", json!({"name": format!("d{i}")})).await);
    }
    let seen = collect(&mut observer, 5).await;
    let seqs: Vec<u64> = seen.iter().map(|(s, _, _)| *s).collect();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]), "{seqs:?}");
    assert_eq!(seqs, [1, 2, 3, 4, 5], "the first writes of a fresh model");

    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item", "since": seqs[1]})).await;
    let replayed = collect(&mut c, 3).await;
    assert_eq!(
        replayed,
        seen[2..].to_vec(),
        "seq 3, 4, 5 replayed in order"
    );
    c.expect_no_event(QUIET).await;

    let live = create_as(&w.s, &w.alice, "item", json!({"name": "live"})).await;
    let ev = c.event().await;
    change(&ev, "post", "item", &live);
    assert_eq!(seq(&ev), 6, "{ev}");
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_replayed_event_has_the_live_shape() {
    let w = world(&[]).await;
    let mut observer = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;
    let id = create_as(&w.s, &w.alice, "item", json!({"name": "x", "secret": "s3"})).await;
    let live = observer.event().await;
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item", "since": 0})).await;
    let replayed = c.event().await;
    change(&replayed, "post", "item", &id);
    assert_eq!(
        replayed["data"], live["data"],
        "replayed as it went out live"
    );
    assert_eq!(replayed["client_id"], c.client_id.clone().unwrap().as_str());
    assert!(replayed["data"]["item"].get("secret").is_none());
}

#[tokio::test]
async fn since_zero_at_the_seam_delivers_every_seq_once_in_order() {
    let w = world(&[]).await;
    const N: usize = 50;
    let started = Arc::new(Notify::new());
    let writer = {
        let (base, alice) = (w.s.base.clone(), w.alice.clone());
        let started = started.clone();
        tokio::spawn(async move { write_many(&base, &alice, N, Some((10, started))).await })
    };
    // Subscribe while the writer is mid-way.
    started.notified().await;
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item", "since": 0})).await;
    let got = collect(&mut c, N).await;
    let written = writer.await.unwrap();
    let seqs: Vec<u64> = got.iter().map(|(s, _, _)| *s).collect();
    let want: Vec<u64> = (1..=N as u64).collect();
    assert_eq!(seqs, want, "every seq once, in order, no gap");
    let ids: Vec<String> = got.iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(ids, written, "each document once, in write order");
    assert!(got.iter().all(|(_, e, _)| e == "post"));
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn replay_respects_read_rights_and_filters() {
    let w = world(&[]).await;
    let a_own = create_as(&w.s, &w.alice, "owned", json!({"name": "a"})).await;
    let b_own = create_as(&w.s, &w.bob, "owned", json!({"name": "b"})).await;
    update_as(&w.s, &w.alice, "owned", &a_own, json!({"name": "a2"})).await;
    let x = create_as(&w.s, &w.alice, "item", json!({"tag": "x"})).await;
    let y = create_as(&w.s, &w.alice, "item", json!({"tag": "y"})).await;
    update_as(&w.s, &w.alice, "item", &x, json!({"name": "x2"})).await;
    update_as(&w.s, &w.alice, "item", &y, json!({"name": "y2"})).await;

    // Owner rules: bob replays his own document only.
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "owned", "since": 0})).await;
    change(&c.event().await, "post", "owned", &b_own);
    c.expect_no_event(QUIET).await;

    // A filter applies to replayed events.
    let mut c = subscribed(
        &w.s,
        &w.bob,
        json!({"model": "item", "since": 0, "filter": {"tag": "x"}}),
    )
    .await;
    let got = collect(&mut c, 2).await;
    assert_eq!(
        got.iter()
            .map(|(_, e, id)| (e.as_str(), id.as_str()))
            .collect::<Vec<_>>(),
        [("post", x.as_str()), ("put", x.as_str())]
    );
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_document_replay_sends_only_that_documents_put_and_del() {
    let w = world(&[]).await;
    let x = create_as(&w.s, &w.alice, "item", json!({"tag": "x"})).await;
    let y = create_as(&w.s, &w.alice, "item", json!({"tag": "y"})).await;
    update_as(&w.s, &w.alice, "item", &x, json!({"name": "x2"})).await;
    update_as(&w.s, &w.alice, "item", &y, json!({"name": "y2"})).await;
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item", "id": x, "since": 0})).await;
    let ev = c.event().await;
    assert_eq!(change(&ev, "put", "item", &x)["item"]["name"], "x2", "{ev}");
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_since_older_than_the_retention_needs_a_resync() {
    let w = world(&[("CHANGELOG_RETENTION", "16")]).await;
    const N: usize = 100;
    write_many(&w.s.base, &w.alice, N, None).await;
    let mut c = super::support::client_as(&w.s, &w.bob).await;
    for since in [0, 1] {
        let reply = c
            .request("subscribe", json!({"model": "item", "since": since}))
            .await;
        assert_eq!(reply["status"], "error", "since {since}: {reply}");
        assert_eq!(reply["message"], "resync required", "{reply}");
        let oldest = reply["oldest"]
            .as_u64()
            .unwrap_or_else(|| panic!("no oldest seq: {reply}"));
        assert!(oldest > 2, "seq 2 is gone, so the oldest is later: {reply}");
        assert!(
            oldest <= (N - 16 + 1) as u64,
            "at least 16 events stay replayable: {reply}"
        );
        c.assert_alive().await;
    }
    // The failed subscribes left nothing behind.
    create_as(&w.s, &w.alice, "item", json!({"name": "live"})).await;
    c.expect_no_event(QUIET).await;

    // From just before the oldest, the rest replays in order.
    let reply = c
        .request("subscribe", json!({"model": "item", "since": 1}))
        .await;
    let oldest = reply["oldest"].as_u64().unwrap();
    c.subscribe_ok(json!({"model": "item", "since": oldest - 1}))
        .await;
    let last = N as u64 + 1;
    let got = collect(&mut c, (last - oldest + 1) as usize).await;
    let seqs: Vec<u64> = got.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(seqs, (oldest..=last).collect::<Vec<_>>());
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_since_past_the_latest_seq_needs_a_resync_naming_the_latest() {
    let w = world(&[]).await;
    for i in 0..3 {
        create_as(&w.s, &w.alice, "item", json!({"name": format!("d{i}")})).await;
    }
    let mut c = super::support::client_as(&w.s, &w.bob).await;
    // As after a restore of an older backup: the client's seq is ahead of the model's.
    let reply = c
        .request("subscribe", json!({"model": "item", "since": 10}))
        .await;
    assert_eq!(reply["status"], "error", "{reply}");
    assert_eq!(reply["message"], "resync required", "{reply}");
    assert_eq!(reply["latest"], 3, "the latest seq to resync from: {reply}");
    assert_eq!(reply["oldest"], 1, "{reply}");
    c.assert_alive().await;
    // The refused subscription left nothing behind.
    create_as(&w.s, &w.alice, "item", json!({"name": "unseen"})).await;
    c.expect_no_event(QUIET).await;

    // Resubscribing from the latest seq named goes live.
    c.subscribe_ok(json!({"model": "item", "since": 4})).await;
    let live = create_as(&w.s, &w.alice, "item", json!({"name": "live"})).await;
    let ev = c.event().await;
    change(&ev, "post", "item", &live);
    assert_eq!(seq(&ev), 5, "{ev}");
    c.expect_no_event(QUIET).await;

    // Within the retention, a resync reply names the latest seq too.
    let w = world(&[("CHANGELOG_RETENTION", "16")]).await;
    write_many(&w.s.base, &w.alice, 40, None).await;
    let mut c = super::support::client_as(&w.s, &w.bob).await;
    let reply = c
        .request("subscribe", json!({"model": "item", "since": 0}))
        .await;
    assert_eq!(reply["message"], "resync required", "{reply}");
    assert_eq!(reply["latest"], 40, "{reply}");
}

#[tokio::test]
async fn a_replayed_event_names_its_author_as_a_live_one_does() {
    let mut w = world(&[]).await;
    let a = create_as(&w.s, &w.alice, "item", json!({"name": "a"})).await;
    let b = create_as(&w.s, &w.bob, "item", json!({"name": "b"})).await;
    // A fresh server has seen neither author: the replay must look them up.
    w.s.restart().await;
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item", "since": 0})).await;
    for (id, who) in [(&a, &w.alice), (&b, &w.bob)] {
        let ev = c.event().await;
        let data = change(&ev, "post", "item", id);
        assert_eq!(data["user_id"], who.id.as_str(), "{ev}");
        assert_eq!(data["user_name"], who.name.as_str(), "{ev}");
        // Bob's own address, not Alice's: as in a live event.
        if who.id == w.bob.id {
            assert_eq!(data["user_email"], who.email.as_str(), "{ev}");
        } else {
            assert_eq!(data["user_email"], Value::Null, "{ev}");
        }
    }
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_thousand_rapid_writes_arrive_in_seq_order() {
    let w = world(&[]).await;
    const WRITERS: usize = 4;
    const EACH: usize = 250;
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (base, alice) = (w.s.base.clone(), w.alice.clone());
            tokio::spawn(async move { write_many(&base, &alice, EACH, None).await })
        })
        .collect();
    let got = collect(&mut c, WRITERS * EACH).await;
    let mut written = BTreeSet::new();
    for t in tasks {
        written.extend(t.await.unwrap());
    }
    let seqs: Vec<u64> = got.iter().map(|(s, _, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|p| p[0] < p[1]),
        "strictly increasing seq"
    );
    assert_eq!(seqs, (1..=(WRITERS * EACH) as u64).collect::<Vec<_>>());
    let ids: BTreeSet<String> = got.iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(ids.len(), WRITERS * EACH, "no duplicates");
    assert_eq!(ids, written, "every write delivered");
    c.expect_no_event(QUIET).await;
}

/// Retained events in the long-replay tests, and the size of each document's payload.
const LONG: usize = 9_000;
const PAYLOAD: usize = 1_000;

/// A server whose connections queue 64 frames, holding `LONG` retained events of about 1 KB,
/// written by the admin in bulk.
async fn long_log() -> crate::harness::World {
    let w = world(&[("WS_SEND_QUEUE", "64"), ("CHANGELOG_RETENTION", "20000")]).await;
    bulk_items(&w, 0, LONG).await;
    w
}

/// Inserts items `from..from + n` through `/bulkwrite` as the admin, 500 a request.
async fn bulk_items(w: &crate::harness::World, from: usize, n: usize) {
    let pad = "p".repeat(PAYLOAD);
    for start in (from..from + n).step_by(500) {
        let ops: Vec<Value> = (start..(start + 500).min(from + n))
            .map(
                |i| json!({"insertOne": {"document": {"name": format!("b{i}"), "n": i, "s": pad}}}),
            )
            .collect();
        let (status, body) = crate::harness::call(
            &w.s,
            reqwest::Method::POST,
            "/bulkwrite/item",
            &w.admin.basic(),
            Some(Value::Array(ops)),
        )
        .await;
        assert!(
            status.is_success(),
            "bulk write from {start}: {status} {body}"
        );
    }
}

#[tokio::test]
async fn a_replay_longer_than_the_send_queue_goes_at_the_clients_pace_then_live() {
    let w = long_log().await;
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item", "since": 0})).await;
    // Writes during the replay wait behind it and follow it without a gap.
    const DURING: usize = 200;
    let writer = {
        let (base, alice) = (w.s.base.clone(), w.alice.clone());
        tokio::spawn(async move { write_many(&base, &alice, DURING, None).await })
    };
    let got = c.events(LONG + DURING).await;
    let written = writer.await.unwrap();
    let seqs: Vec<u64> = got.iter().map(seq).collect();
    assert_eq!(
        seqs,
        (1..=(LONG + DURING) as u64).collect::<Vec<_>>(),
        "every seq once, in order, replay then live"
    );
    for ev in &got[..LONG] {
        let data = &ev["data"];
        assert_eq!(data["event"], "post", "{ev}");
        assert_eq!(data["user_name"], w.admin.name.as_str(), "{ev}");
        assert_eq!(data["user_email"], Value::Null, "{ev}");
        assert_eq!(data["item"]["s"].as_str().map(str::len), Some(PAYLOAD));
    }
    let live_ids: Vec<&str> = got[LONG..]
        .iter()
        .map(|e| e["data"]["item"]["_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        live_ids, written,
        "the writes made during the replay, in order"
    );

    let live = create_as(&w.s, &w.alice, "item", json!({"name": "after"})).await;
    let ev = c.event().await;
    change(&ev, "post", "item", &live);
    assert_eq!(seq(&ev), (LONG + DURING + 1) as u64, "{ev}");
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_client_that_does_not_read_its_replay_is_closed_with_1013() {
    let w = long_log().await;
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item", "since": 0})).await;
    // It reads nothing while the replay waits for it and live writes pile up behind it,
    // more than the bound on what may wait (16 times the queue, at least 1000).
    bulk_items(&w, LONG, 1_500).await;
    let (got, ending) = c.read_until_close(std::time::Duration::from_secs(60)).await;
    assert_eq!(
        ending,
        super::client::Ending::Closed(Some(1013)),
        "closed as too slow after {} events",
        got.len()
    );
    let seqs: Vec<u64> = got.iter().map(seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "what it got was the replay's start, in order"
    );
    assert!(
        seqs.len() < LONG,
        "it did not get everything: {}",
        seqs.len()
    );
}

/// Creates `n` items as `who` one after the other; answers their ids in order. With
/// `notify = (k, n)`, signals after the `k`-th write.
async fn write_many(
    base: &str,
    who: &Account,
    n: usize,
    notify: Option<(usize, Arc<Notify>)>,
) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let resp = client
            .post(format!("{base}/api/item"))
            .header("authorization", who.authorization())
            .json(&json!({"name": format!("w{i}"), "n": i}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "write {i}: {status} {body}");
        ids.push(body["data"]["_id"].as_str().unwrap().to_owned());
        if let Some((k, notify)) = &notify
            && i + 1 == *k
        {
            notify.notify_one();
        }
    }
    ids
}

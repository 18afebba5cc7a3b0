//! Limits and lifecycle: slow clients, bursts, oversize frames, the connection cap, the
//! upgrade path, pings and idle sockets, the subscription cap, and graceful shutdown.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

use super::client::{Ending, Frame, QUIET, WAIT, WsClient, is_reply};
use super::support::{client_as, seq, subscribed, world};
use crate::harness::{Auth, call, create_as};

/// A ping frame padded with a string to exactly `len` bytes.
fn padded_ping(len: usize) -> String {
    let empty = json!({"action": "ping", "msg_id": "big", "pad": ""}).to_string();
    let pad = "x".repeat(len - empty.len());
    let frame = json!({"action": "ping", "msg_id": "big", "pad": pad}).to_string();
    assert_eq!(frame.len(), len);
    frame
}

/// Creates one `item` named `name` with `n`, as `auth`; fails the test unless it is stored.
async fn post_item(client: &reqwest::Client, base: &str, auth: &str, name: &str, n: usize) {
    let resp = client
        .post(format!("{base}/api/item"))
        .header("authorization", auth)
        .json(&json!({"name": name, "n": n}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "write {n}: {}", resp.status());
}

#[tokio::test]
async fn a_slow_client_is_closed_with_1013_and_delays_nobody() {
    let w = world(&[("WS_SEND_QUEUE", "8")]).await;
    const WRITES: usize = 500;
    // Large items, so the socket buffers between server and the slow client fill up and the
    // server-side queue overflows.
    let payload = "x".repeat(20_000);

    let mut slow = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;
    let mut fast = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;

    // One write at a time, each awaited by the fast client before the next: a hub or writer
    // that waited on the stalled client would hold this loop up, and the bounded waits (on the
    // write's answer and on its event) fail it instead of hanging. They bound the wait, they do
    // not measure speed.
    let client = reqwest::Client::new();
    let mut seqs = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        tokio::time::timeout(
            WAIT,
            post_item(&client, &w.s.base, &w.alice.authorization(), &payload, i),
        )
        .await
        .unwrap_or_else(|_| panic!("write {i} was not answered within {WAIT:?}"));
        let event = fast.next_event(WAIT).await.unwrap_or_else(|| {
            panic!("write {i} did not reach the fast client within {WAIT:?} while another stalls")
        });
        seqs.push(seq(&event));
    }
    fast.expect_no_event(QUIET).await;
    assert_eq!(
        seqs,
        (1..=WRITES as u64).collect::<Vec<_>>(),
        "the fast client got every event in order"
    );

    let (got, ending) = slow.read_until_close(Duration::from_secs(60)).await;
    assert_eq!(
        ending,
        Ending::Closed(Some(1013)),
        "the slow client is closed with 1013 after {} events",
        got.len()
    );
    assert!(got.len() < WRITES, "the slow client did not get everything");
    let got_seqs: Vec<u64> = got.iter().map(seq).collect();
    assert!(
        got_seqs.windows(2).all(|p| p[0] < p[1]),
        "what it got was in order"
    );
}

#[tokio::test]
async fn a_client_that_reads_late_gets_every_event_then_its_reply_intact_and_in_order() {
    let w = world(&[]).await;
    const WRITES: usize = 300;
    // 12 MB of events, far more than the socket buffers hold while the client does not read:
    // frames wait in the server's queue, one of them half written, while the hub keeps
    // pushing behind them.
    let payload = "y".repeat(40_000);
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;
    let client = reqwest::Client::new();
    for i in 0..WRITES {
        post_item(&client, &w.s.base, &w.alice.authorization(), &payload, i).await;
    }
    // A request sent while the events wait: its reply goes out after them.
    c.send_text(json!({"action": "ping", "msg_id": "late"}).to_string())
        .await;
    let mut seqs = Vec::new();
    while seqs.len() < WRITES {
        match c.next_frame(WAIT).await {
            Some(Frame::Json(v)) => {
                assert!(!is_reply(&v), "a reply overtook the queued events: {v}");
                assert_eq!(
                    v["data"]["item"]["name"].as_str().map(str::len),
                    Some(40_000)
                );
                seqs.push(seq(&v));
            }
            other => panic!("after {} events: {other:?}", seqs.len()),
        }
    }
    assert_eq!(seqs, (1..=WRITES as u64).collect::<Vec<_>>());
    match c.next_frame(WAIT).await {
        Some(Frame::Json(v)) => {
            assert_eq!(
                (&v["msg_id"], &v["result"]),
                (&json!("late"), &json!("pong!")),
                "{v}"
            );
        }
        other => panic!("expected the ping's reply, got {other:?}"),
    }
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn events_pushed_while_a_backlog_drains_stay_whole_and_in_order() {
    let w = world(&[]).await;
    const WRITES: usize = 400;
    let payload = "z".repeat(40_000);
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;
    let (started, mut begun) = tokio::sync::watch::channel(0usize);
    let (base, auth) = (w.s.base.clone(), w.alice.authorization());
    let writer = tokio::spawn(async move {
        let client = reqwest::Client::new();
        for i in 0..WRITES {
            post_item(&client, &base, &auth, &payload, i).await;
            let _ = started.send(i + 1);
        }
    });
    // The client starts reading once a backlog has built up, while the writes go on: new
    // events arrive as the queue drains and the socket has room again.
    begun.wait_for(|n| *n >= WRITES / 4).await.unwrap();
    let events = c.events(WRITES).await;
    writer.await.unwrap();
    let seqs: Vec<u64> = events.iter().map(seq).collect();
    assert_eq!(seqs, (1..=WRITES as u64).collect::<Vec<_>>());
    assert!(
        events
            .iter()
            .all(|e| e["data"]["item"]["name"].as_str().map(str::len) == Some(40_000))
    );
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_burst_of_writes_arrives_in_order() {
    let w = world(&[]).await;
    const WRITES: usize = 300;
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;
    // Concurrent writes: the hub finds changes waiting behind the one it delivers and queues
    // that one, while the socket has room. The next one pushed directly must still wait for
    // the queue, or it overtakes the events queued before it.
    let client = reqwest::Client::new();
    let auth = w.alice.authorization();
    let writes = (0..WRITES).map(|i| post_item(&client, &w.s.base, &auth, "burst", i));
    futures_util::future::join_all(writes).await;
    let events = c.events(WRITES).await;
    let seqs: Vec<u64> = events.iter().map(seq).collect();
    assert_eq!(seqs, (1..=WRITES as u64).collect::<Vec<_>>());
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn every_shard_delivers_a_burst_to_each_of_its_sockets_in_order() {
    // Nine sockets over the harness's three shards, each with overlapping subscriptions (the
    // collection and a filter that every write matches): every socket gets every event once,
    // in `seq` order, whichever shard holds it.
    let w = world(&[]).await;
    const WRITES: usize = 120;
    let mut clients = Vec::new();
    for i in 0..9 {
        let who = if i % 2 == 0 { &w.alice } else { &w.bob };
        let mut c = subscribed(&w.s, who, json!({"model": "item"})).await;
        c.subscribe_ok(json!({"model": "item", "filter": {"name": {"$regex": "^burst"}}}))
            .await;
        clients.push(c);
    }
    let client = reqwest::Client::new();
    let auth = w.alice.authorization();
    let writes = (0..WRITES).map(|i| post_item(&client, &w.s.base, &auth, "burst", i));
    futures_util::future::join_all(writes).await;
    for (i, c) in clients.iter_mut().enumerate() {
        let seqs: Vec<u64> = c.events(WRITES).await.iter().map(seq).collect();
        assert_eq!(seqs, (1..=WRITES as u64).collect::<Vec<_>>(), "socket {i}");
        c.expect_no_event(QUIET).await;
    }
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_with_1009() {
    let w = world(&[("WS_MAX_MESSAGE_BYTES", "1024")]).await;
    let mut c = WsClient::connect(&w.s).await;
    // Just under the limit is fine.
    let reply = c.send_raw(&padded_ping(1000)).await;
    assert_eq!(reply["result"], "pong!", "{reply}");
    c.send_text(padded_ping(4096)).await;
    let ending = c.ending(WAIT).await;
    assert_eq!(ending, Ending::Closed(Some(1009)), "{ending}");
}

#[tokio::test]
async fn a_frame_a_little_over_the_limit_closes_with_1009() {
    let w = world(&[("WS_MAX_MESSAGE_BYTES", "1024")]).await;
    let mut c = WsClient::connect(&w.s).await;
    c.send_text(padded_ping(1500)).await;
    let ending = c.ending(WAIT).await;
    assert_eq!(ending, Ending::Closed(Some(1009)), "{ending}");
}

#[tokio::test]
async fn every_oversized_frame_gets_its_1009_not_a_reset() {
    let w = world(&[]).await;
    // Far over the default limit: the server refuses it from its header, while most of it is
    // still on the way.
    const LEN: usize = (1 << 20) + 1;
    let text = padded_ping(LEN);
    for attempt in 0..50 {
        // A send buffer far smaller than the frame: the frame's tail still waits on the
        // client's side when the server refuses its head, whatever the kernel's defaults.
        let mut c = WsClient::connect_with_send_buffer(&w.s, 16 * 1024).await;
        // The server reads the frame's tail and drops it before it closes its socket: closed
        // with unread bytes, the socket would be reset, failing the client's write (and, on
        // some systems or in clients that stop at a failed write, losing the close frame).
        let sent = c.try_send_text(text.clone()).await;
        let ending = c.ending(WAIT).await;
        assert_eq!(ending, Ending::Closed(Some(1009)), "attempt {attempt}");
        assert!(sent.is_ok(), "attempt {attempt}: a reset: {sent:?}");
    }
}

#[tokio::test]
async fn the_connection_cap_refuses_the_upgrade_with_503() {
    let w = world(&[("WS_MAX_CONNECTIONS", "2")]).await;
    let mut a = WsClient::connect(&w.s).await;
    let mut b = WsClient::connect(&w.s).await;
    a.assert_alive().await;
    b.assert_alive().await;
    match WsClient::try_connect(&w.s.base, "/websocket").await {
        Ok(_) => panic!("a third connection was accepted"),
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 503, "{resp:?}");
        }
        Err(e) => panic!("expected an HTTP 503 refusal, got {e}"),
    }
    // The two open ones are unaffected.
    a.assert_alive().await;
    b.assert_alive().await;
    // The cap counts connections over every shard: once one closes, its place is free again
    // (asked until a deadline: the server frees it when it has seen the close).
    drop(a);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut c = loop {
        match WsClient::try_connect(&w.s.base, "/websocket").await {
            Ok(c) => break c,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "the closed connection's place was not freed: {e}"
            ),
        }
        tokio::task::yield_now().await;
    };
    c.assert_alive().await;
    b.assert_alive().await;
}

#[tokio::test]
async fn upgrades_elsewhere_are_refused() {
    let w = world(&[]).await;
    for path in ["/ws", "/websocket/x", "/api/item", "/", "/healthz"] {
        match WsClient::try_connect(&w.s.base, path).await {
            Ok(_) => panic!("an upgrade at {path} was accepted"),
            Err(tungstenite::Error::Http(resp)) => {
                assert_ne!(resp.status().as_u16(), 101, "{path}: {resp:?}");
            }
            Err(e) => panic!("{path}: expected an HTTP refusal, got {e}"),
        }
    }
    // A plain GET on /websocket is not an upgrade: refused, not a crash.
    let (status, body) = call(&w.s, Method::GET, "/websocket", &Auth::None, None).await;
    assert!(status.is_client_error(), "{status} {body}");
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_open_and_a_silent_one_is_closed() {
    let w = world(&[("WS_PING_INTERVAL", "1"), ("WS_IDLE_TIMEOUT", "2")]).await;
    let mut answering = client_as(&w.s, &w.alice).await;
    answering.subscribe_ok(json!({"model": "item"})).await;
    let mut silent = client_as(&w.s, &w.alice).await;
    // The answering client reads (and so answers pings) for 3.5 s; the silent one does not
    // read at all for as long.
    let (nothing, ()) = tokio::join!(
        answering.next_event(Duration::from_millis(3500)),
        tokio::time::sleep(Duration::from_millis(3500))
    );
    assert_eq!(nothing, None::<Value>);
    answering.assert_alive().await;
    let id = create_as(&w.s, &w.alice, "item", json!({"name": "x"})).await;
    super::support::change(&answering.event().await, "post", "item", &id);

    let ending = silent.ending(WAIT).await;
    assert!(
        matches!(ending, Ending::Closed(_) | Ending::Dropped(_)),
        "{ending}"
    );
}

#[tokio::test]
async fn at_most_1000_subscriptions_per_connection() {
    let w = world(&[]).await;
    let mut c = client_as(&w.s, &w.alice).await;
    for i in 0..1000 {
        c.subscribe_ok(json!({"model": "item", "filter": {"n": i}}))
            .await;
    }
    let reply = c
        .request("subscribe", json!({"model": "item", "filter": {"n": 1000}}))
        .await;
    assert_eq!(reply["status"], "error", "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1000"),
        "{reply}"
    );
    // Ending one makes room again.
    c.unsubscribe_ok(json!({"model": "item", "filter": {"n": 0}}))
        .await;
    c.subscribe_ok(json!({"model": "item", "filter": {"n": 1000}}))
        .await;
}

#[tokio::test]
async fn shutdown_closes_open_sockets_with_1001() {
    let mut w = world(&[]).await;
    let mut c = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    let (ending, ()) = tokio::join!(c.ending(WAIT), w.s.stop());
    assert_eq!(ending, Ending::Closed(Some(1001)), "{ending}");
}

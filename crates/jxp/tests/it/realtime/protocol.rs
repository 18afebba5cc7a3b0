//! The request/reply protocol: every request and error case, one reply per request, and the
//! connection staying open after an error.

use serde_json::{Value, json};

use super::client::{QUIET, WsClient};
use super::support::{client_as, world};
use crate::harness::{World, keys_of};
use crate::harness::{create_as, create_doc_as, login_as};

/// Asserts an error reply: `status: "error"`, a `client_id`, a non-empty message mentioning
/// one of `needles` (case-insensitive), and the echoed `msg_id`/`action` where given.
#[track_caller]
fn assert_error_reply(
    reply: &Value,
    action: Option<&str>,
    msg_id: Option<&Value>,
    needles: &[&str],
) {
    assert_eq!(reply["status"], "error", "{reply}");
    assert!(
        reply["client_id"].as_str().is_some_and(|c| !c.is_empty()),
        "no client_id: {reply}"
    );
    let message = reply["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {reply}"));
    let lower = message.to_lowercase();
    assert!(
        needles.iter().any(|n| lower.contains(&n.to_lowercase())),
        "message {message:?} names none of {needles:?}"
    );
    if let Some(id) = msg_id {
        assert_eq!(reply.get("msg_id"), Some(id), "msg_id echoed: {reply}");
    }
    if let Some(a) = action
        && let Some(got) = reply.get("action")
    {
        assert_eq!(got, a, "{reply}");
    }
    assert!(
        reply.get("result").is_none(),
        "an error has no result: {reply}"
    );
}

#[tokio::test]
async fn ping_answers_pong_and_echoes_the_msg_id() {
    let w = world(&[]).await;
    let mut c = WsClient::connect(&w.s).await;
    for msg_id in [json!("abc"), json!(7), json!(2.5)] {
        let reply = c.send("ping", msg_id.clone(), json!({})).await;
        assert_eq!(
            keys_of(&reply),
            ["action", "client_id", "msg_id", "result", "status"],
            "{reply}"
        );
        assert_eq!(reply["action"], "ping");
        assert_eq!(reply["status"], "okay");
        assert_eq!(reply["msg_id"], msg_id);
        assert_eq!(reply["result"], "pong!");
        assert!(
            reply["client_id"].as_str().is_some_and(|c| c.len() >= 16),
            "{reply}"
        );
    }
    // `data` may be left out of a ping.
    let reply = c.send_raw(r#"{"action":"ping","msg_id":"bare"}"#).await;
    assert_eq!(reply["result"], "pong!", "{reply}");
    assert_eq!(reply["msg_id"], "bare", "{reply}");
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn each_connection_has_its_own_client_id() {
    let w = world(&[]).await;
    let mut a = WsClient::connect(&w.s).await;
    let mut b = WsClient::connect(&w.s).await;
    a.assert_alive().await;
    b.assert_alive().await;
    a.assert_alive().await;
    let (ida, idb) = (a.client_id.clone().unwrap(), b.client_id.clone().unwrap());
    assert_ne!(ida, idb);
    let again = a.request("ping", json!({})).await;
    assert_eq!(again["client_id"], ida.as_str(), "stable per connection");
}

/// A malformed frame, the `action` and `msg_id` its error echoes, and words the message names.
type Case = (
    &'static str,
    Option<&'static str>,
    Option<Value>,
    &'static [&'static str],
);

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_socket_stays_open() {
    let w = world(&[]).await;
    let mut c = WsClient::connect(&w.s).await;
    // (frame, echoed action, echoed msg_id, words the message names)
    let cases: Vec<Case> = vec![
        ("not json", None, None, &["json", "parse"]),
        ("{\"action\":\"ping\",", None, None, &["json", "parse"]),
        ("", None, None, &["json", "parse"]),
        ("[1,2]", None, None, &["object"]),
        ("\"ping\"", None, None, &["object"]),
        ("42", None, None, &["object"]),
        ("null", None, None, &["object"]),
        (r#"{"msg_id":1}"#, None, Some(json!(1)), &["action"]),
        (
            r#"{"msg_id":1,"action":5}"#,
            None,
            Some(json!(1)),
            &["action"],
        ),
        (
            r#"{"msg_id":"x","action":null}"#,
            None,
            Some(json!("x")),
            &["action"],
        ),
        (
            r#"{"action":"fly","msg_id":2}"#,
            Some("fly"),
            Some(json!(2)),
            &["fly"],
        ),
        (
            r#"{"action":"","msg_id":3}"#,
            None,
            Some(json!(3)),
            &["action"],
        ),
        (r#"{"action":"ping"}"#, Some("ping"), None, &["msg_id"]),
        (
            r#"{"action":"ping","msg_id":null}"#,
            Some("ping"),
            None,
            &["msg_id"],
        ),
        (
            r#"{"action":"ping","msg_id":{}}"#,
            Some("ping"),
            None,
            &["msg_id"],
        ),
        (
            r#"{"action":"ping","msg_id":[1]}"#,
            Some("ping"),
            None,
            &["msg_id"],
        ),
        (
            r#"{"action":"ping","msg_id":true}"#,
            Some("ping"),
            None,
            &["msg_id"],
        ),
        (
            r#"{"action":"auth","msg_id":4,"data":[]}"#,
            Some("auth"),
            Some(json!(4)),
            &["data"],
        ),
        (
            r#"{"action":"auth","msg_id":4,"data":"x"}"#,
            Some("auth"),
            Some(json!(4)),
            &["data"],
        ),
        (
            r#"{"action":"auth","msg_id":5,"data":{}}"#,
            Some("auth"),
            Some(json!(5)),
            &["email", "apikey", "token"],
        ),
        (
            r#"{"action":"auth","msg_id":5,"data":{"email":"a@b.c"}}"#,
            Some("auth"),
            Some(json!(5)),
            &["password"],
        ),
        (
            r#"{"action":"auth","msg_id":6,"data":{"email":1,"password":"p"}}"#,
            Some("auth"),
            Some(json!(6)),
            &["email"],
        ),
        (
            r#"{"action":"auth","msg_id":6,"data":{"apikey":123}}"#,
            Some("auth"),
            Some(json!(6)),
            &["apikey"],
        ),
        (
            r#"{"action":"auth","msg_id":6,"data":{"token":{}}}"#,
            Some("auth"),
            Some(json!(6)),
            &["token"],
        ),
        (
            r#"{"action":"subscribe","msg_id":7,"data":5}"#,
            Some("subscribe"),
            Some(json!(7)),
            &["data"],
        ),
        (
            r#"{"action":"subscribe","msg_id":7,"data":{}}"#,
            Some("subscribe"),
            Some(json!(7)),
            &["model"],
        ),
        (
            r#"{"action":"subscribe","msg_id":7,"data":{"model":5}}"#,
            Some("subscribe"),
            Some(json!(7)),
            &["model"],
        ),
        (
            r#"{"action":"subscribe","msg_id":7,"data":{"model":"item","id":5}}"#,
            Some("subscribe"),
            Some(json!(7)),
            &["id"],
        ),
        (
            r#"{"action":"subscribe","msg_id":7,"data":{"model":"item","filter":"x"}}"#,
            Some("subscribe"),
            Some(json!(7)),
            &["filter"],
        ),
        (
            r#"{"action":"subscribe","msg_id":7,"data":{"model":"item","filter":[1]}}"#,
            Some("subscribe"),
            Some(json!(7)),
            &["filter"],
        ),
        (
            r#"{"action":"subscribe","msg_id":7,"data":{"model":"item","since":-1}}"#,
            Some("subscribe"),
            Some(json!(7)),
            &["since"],
        ),
        (
            r#"{"action":"subscribe","msg_id":7,"data":{"model":"item","since":"3"}}"#,
            Some("subscribe"),
            Some(json!(7)),
            &["since"],
        ),
        (
            r#"{"action":"subscribe","msg_id":7,"data":{"model":"item","since":1.5}}"#,
            Some("subscribe"),
            Some(json!(7)),
            &["since"],
        ),
        (
            r#"{"action":"unsubscribe","msg_id":8,"data":{"model":[]}}"#,
            Some("unsubscribe"),
            Some(json!(8)),
            &["model"],
        ),
        (
            r#"{"action":"unsubscribe","msg_id":8,"data":true}"#,
            Some("unsubscribe"),
            Some(json!(8)),
            &["data"],
        ),
    ];
    for (frame, action, msg_id, needles) in cases {
        let reply = c.send_raw(frame).await;
        assert_error_reply(&reply, action, msg_id.as_ref(), needles);
        c.assert_alive().await;
    }
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn subscribe_needs_auth_first() {
    let w = world(&[]).await;
    let mut c = WsClient::connect(&w.s).await;
    let msg_id = json!("s1");
    let reply = c
        .send("subscribe", msg_id.clone(), json!({"model": "item"}))
        .await;
    assert_error_reply(&reply, Some("subscribe"), Some(&msg_id), &["auth"]);
    c.assert_alive().await;
    // Nothing was subscribed: a write is not delivered even after authenticating.
    c.auth_ok(w.alice.creds()).await;
    create_doc_as(&w.s, &w.alice, "item", json!({"name": "x"})).await;
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn subscribe_errors_unknown_forbidden_bad_id_bad_filter() {
    let w = world(&[]).await;
    let mut c = client_as(&w.s, &w.alice).await;

    let reply = c.request("subscribe", json!({"model": "nosuch"})).await;
    assert_error_reply(&reply, Some("subscribe"), None, &["nosuch"]);
    c.assert_alive().await;

    let reply = c.request("subscribe", json!({"model": "board"})).await;
    assert_eq!(reply["status"], "error", "{reply}");
    assert_eq!(reply["message"], "Forbidden", "{reply}");
    c.assert_alive().await;

    for bad in [
        "nope",
        "123",
        "zzzzzzzzzzzzzzzzzzzzzzzz",
        "0123456789abcdef0123456",
    ] {
        let reply = c
            .request("subscribe", json!({"model": "item", "id": bad}))
            .await;
        assert_error_reply(&reply, Some("subscribe"), None, &["id"]);
        c.assert_alive().await;
    }

    let reply = c
        .request(
            "subscribe",
            json!({"model": "item", "filter": {"n": {"$where": "1"}}}),
        )
        .await;
    assert_error_reply(&reply, Some("subscribe"), None, &["filter", "$where"]);
    c.assert_alive().await;

    // None of those left a subscription behind.
    create_doc_as(&w.s, &w.alice, "item", json!({"name": "x", "n": 1})).await;
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn repeat_subscribe_is_already_subscribed_and_unsubscribe_needs_a_subscription() {
    let w = world(&[]).await;
    let id = create_as(&w.s, &w.alice, "item", json!({"name": "a"})).await;
    let mut c = client_as(&w.s, &w.alice).await;

    for sub in [
        json!({"model": "item"}),
        json!({"model": "item", "id": id}),
        json!({"model": "item", "filter": {"tag": "x"}}),
    ] {
        let first = c.subscribe_ok(sub.clone()).await;
        assert_ne!(first["result"], "Already subscribed", "{first}");
        let again = c.request("subscribe", sub.clone()).await;
        assert_eq!(again["status"], "okay", "{again}");
        assert_eq!(again["result"], "Already subscribed", "{again}");
        c.assert_alive().await;
    }

    // Unsubscribing what was never subscribed is an error.
    for sub in [
        json!({"model": "parent"}),
        json!({"model": "item", "filter": {"tag": "y"}}),
        json!({"model": "item", "id": "0123456789abcdef01234567"}),
        json!({"model": "nosuch"}),
    ] {
        let reply = c.request("unsubscribe", sub.clone()).await;
        assert_eq!(reply["status"], "error", "unsubscribe {sub}: {reply}");
        assert!(
            reply["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{reply}"
        );
        c.assert_alive().await;
    }

    // A real one ends once; the second time it is an error.
    c.unsubscribe_ok(json!({"model": "item"})).await;
    let reply = c.request("unsubscribe", json!({"model": "item"})).await;
    assert_eq!(reply["status"], "error", "{reply}");
    c.assert_alive().await;
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn auth_with_password_apikey_or_token() {
    let w = world(&[]).await;
    let session = login_as(&w.s, &w.alice).await;
    let apikey = session.apikey.as_deref().expect("login answers an apikey");
    let token = session.token.as_str();
    for creds in [
        w.alice.creds(),
        json!({"apikey": apikey}),
        json!({"token": token}),
    ] {
        let mut c = WsClient::connect(&w.s).await;
        let reply = c.request("auth", creds.clone()).await;
        assert_eq!(reply["status"], "okay", "{creds}: {reply}");
        assert_eq!(reply["action"], "auth", "{reply}");
        assert_eq!(reply["result"], "Authed", "{reply}");
        // The identity holds: alice may subscribe to item, and only admins and editors to board.
        c.subscribe_ok(json!({"model": "item"})).await;
        let reply = c.request("subscribe", json!({"model": "board"})).await;
        assert_eq!(reply["message"], "Forbidden", "{creds}: {reply}");
    }
}

#[tokio::test]
async fn bad_credentials_are_unable_to_authenticate() {
    let World { s, alice, .. } = world(&[]).await;
    let mut c = WsClient::connect(&s).await;
    for creds in [
        json!({"email": alice.email, "password": "wrong"}),
        json!({"email": "nobody@example.com", "password": alice.password}),
        json!({"apikey": "0123456789abcdef0123456789abcdef"}),
        json!({"token": "0123456789abcdef0123456789abcdef"}),
        json!({"token": "not.a.jwt"}),
    ] {
        let reply = c.request("auth", creds.clone()).await;
        assert_eq!(reply["status"], "error", "{creds}: {reply}");
        assert_eq!(
            reply["message"], "Unable to authenticate",
            "{creds}: {reply}"
        );
        assert_eq!(reply["action"], "auth", "{reply}");
        c.assert_alive().await;
        let reply = c.request("subscribe", json!({"model": "item"})).await;
        assert_eq!(reply["status"], "error", "still not authenticated: {reply}");
    }
    // And a good one still works on the same socket.
    c.auth_ok(alice.creds()).await;
    c.subscribe_ok(json!({"model": "item"})).await;
}

#[tokio::test]
async fn every_request_gets_exactly_one_reply() {
    let w = world(&[]).await;
    let mut c = client_as(&w.s, &w.alice).await;
    let frames = [
        (json!("p1"), json!({"action": "ping", "msg_id": "p1"})),
        (
            json!("s1"),
            json!({"action": "subscribe", "msg_id": "s1", "data": {"model": "item"}}),
        ),
        (
            json!("s2"),
            json!({"action": "subscribe", "msg_id": "s2", "data": {"model": "item"}}),
        ),
        (
            json!("s3"),
            json!({"action": "subscribe", "msg_id": "s3", "data": {"model": "nosuch"}}),
        ),
        (
            json!("s4"),
            json!({"action": "subscribe", "msg_id": "s4", "data": {"model": "board"}}),
        ),
        (json!(10), json!({"action": "fly", "msg_id": 10})),
        (
            json!("a1"),
            json!({"action": "auth", "msg_id": "a1", "data": w.alice.creds()}),
        ),
        (
            json!("u1"),
            json!({"action": "unsubscribe", "msg_id": "u1", "data": {"model": "parent"}}),
        ),
        (json!("p2"), json!({"action": "ping", "msg_id": "p2"})),
    ];
    for (_, f) in &frames {
        c.send_text(f.to_string()).await;
    }
    let mut got = Vec::new();
    for _ in &frames {
        let reply = c.next_reply("a pipelined request").await;
        got.push(reply["msg_id"].to_string());
    }
    let mut want: Vec<String> = frames.iter().map(|(id, _)| id.to_string()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "one reply per request");
    // Nothing more: no second reply to any of them.
    c.expect_no_event(QUIET).await;
    c.assert_alive().await;
}

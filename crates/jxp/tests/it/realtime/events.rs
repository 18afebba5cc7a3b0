//! Pushed change events: their shape, collection and document subscriptions, filters,
//! unsubscribe, `_silence`, several clients, private fields and every write route.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::client::QUIET;
use super::support::{change, seq, subscribed, world};
use crate::harness::{Auth, call, create_as, create_doc_as, delete_as, id_of, update_as, write_as};

#[tokio::test]
async fn collection_events_have_the_full_shape() {
    let w = world(&[]).await;
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;
    let client_id = c.client_id.clone().unwrap();

    let created = create_doc_as(&w.s, &w.alice, "item", json!({"name": "a", "n": 1})).await;
    let id = id_of(&created);
    let post = c.event().await;
    let keys: BTreeSet<&str> = post
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["client_id", "data"]), "{post}");
    assert_eq!(post["client_id"], client_id.as_str(), "{post}");
    let data = change(&post, "post", "item", &id);
    let keys: BTreeSet<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "event",
            "item",
            "modelname",
            "seq",
            "user_email",
            "user_id",
            "user_name"
        ]),
        "{post}"
    );
    assert_eq!(data["item"], created, "the item is the document as created");
    assert_eq!(data["user_id"], w.alice.id.as_str(), "{post}");
    assert_eq!(data["user_name"], w.alice.name.as_str(), "{post}");
    // Another user's address is for them and admins only, as in the user model.
    assert_eq!(data["user_email"], Value::Null, "{post}");
    let (status, got) = call(
        &w.s,
        Method::GET,
        &format!("/api/item/{id}"),
        &w.bob.basic(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(
        data["item"], got["data"],
        "the item is what a GET by the subscriber answers"
    );

    let updated = update_as(&w.s, &w.admin, "item", &id, json!({"name": "b"})).await;
    let put = c.event().await;
    let data = change(&put, "put", "item", &id);
    assert_eq!(data["item"], updated, "{put}");
    assert_eq!(data["item"]["name"], "b");
    assert_eq!(data["user_id"], w.admin.id.as_str(), "{put}");
    assert_eq!(data["user_name"], "Admin", "{put}");
    assert_eq!(data["user_email"], Value::Null, "{put}");
    assert!(seq(&put) > seq(&post), "{post} then {put}");

    delete_as(&w.s, &w.alice, "item", &id, "").await;
    let del = c.event().await;
    let data = change(&del, "del", "item", &id);
    assert_eq!(
        data["item"]["_deleted"], true,
        "a soft delete sends the deleted document: {del}"
    );
    assert_eq!(data["item"]["name"], "b", "{del}");
    assert_eq!(data["user_id"], w.alice.id.as_str(), "{del}");
    assert!(seq(&del) > seq(&put), "{put} then {del}");
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_document_subscription_gets_only_that_documents_put_and_del() {
    let w = world(&[]).await;
    let a = create_as(&w.s, &w.alice, "item", json!({"name": "a"})).await;
    let b = create_as(&w.s, &w.alice, "item", json!({"name": "b"})).await;
    let mut c = subscribed(&w.s, &w.alice, json!({"model": "item", "id": a})).await;
    assert_eq!(
        c.request("ping", json!({})).await["result"],
        "pong!",
        "still open"
    );

    create_doc_as(&w.s, &w.alice, "item", json!({"name": "c"})).await;
    update_as(&w.s, &w.alice, "item", &b, json!({"name": "b2"})).await;
    c.expect_no_event(QUIET).await;

    update_as(&w.s, &w.alice, "item", &a, json!({"name": "a2"})).await;
    let put = c.event().await;
    assert_eq!(change(&put, "put", "item", &a)["item"]["name"], "a2");

    delete_as(&w.s, &w.alice, "item", &b, "").await;
    c.expect_no_event(QUIET).await;

    delete_as(&w.s, &w.alice, "item", &a, "").await;
    let del = c.event().await;
    assert_eq!(change(&del, "del", "item", &a)["item"]["_deleted"], true);
    assert!(seq(&del) > seq(&put));
    create_doc_as(&w.s, &w.alice, "item", json!({"name": "d"})).await;
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_filter_is_the_and_of_its_conditions_with_operators() {
    let w = world(&[]).await;
    let mut c = subscribed(
        &w.s,
        &w.alice,
        json!({"model": "item", "filter": {"tag": "a", "n": {"$gte": 3}}}),
    )
    .await;
    let low = create_as(&w.s, &w.alice, "item", json!({"tag": "a", "n": 1})).await;
    create_doc_as(&w.s, &w.alice, "item", json!({"tag": "b", "n": 5})).await;
    create_doc_as(&w.s, &w.alice, "item", json!({"n": 9})).await;
    let three = create_as(&w.s, &w.alice, "item", json!({"tag": "a", "n": 3})).await;
    let seven = create_as(&w.s, &w.alice, "item", json!({"tag": "a", "n": 7})).await;
    // An update that makes a document match is delivered; one that stops it matching is not.
    update_as(&w.s, &w.alice, "item", &low, json!({"n": 4})).await;
    update_as(&w.s, &w.alice, "item", &seven, json!({"n": 2})).await;

    let got = c.events(3).await;
    change(&got[0], "post", "item", &three);
    change(&got[1], "post", "item", &seven);
    change(&got[2], "put", "item", &low);
    assert!(seq(&got[0]) < seq(&got[1]) && seq(&got[1]) < seq(&got[2]));
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn more_operator_filters() {
    let w = world(&[]).await;
    let mut c = subscribed(
        &w.s,
        &w.alice,
        json!({"model": "item", "filter": {"tag": {"$in": ["x", "y"]}, "n": {"$lt": 10, "$ne": 5}}}),
    )
    .await;
    create_doc_as(&w.s, &w.alice, "item", json!({"tag": "x", "n": 5})).await;
    create_doc_as(&w.s, &w.alice, "item", json!({"tag": "z", "n": 1})).await;
    create_doc_as(&w.s, &w.alice, "item", json!({"tag": "y", "n": 10})).await;
    let hit = create_as(&w.s, &w.alice, "item", json!({"tag": "y", "n": 9})).await;
    change(&c.event().await, "post", "item", &hit);
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_text_filter_value_matches_a_number_field() {
    let w = world(&[]).await;
    // `n` is a Number: "5" matches 5, as the REST filter compares.
    let mut number_as_text = subscribed(
        &w.s,
        &w.alice,
        json!({"model": "item", "filter": {"n": "5"}}),
    )
    .await;
    let mut text_for_text = subscribed(
        &w.s,
        &w.alice,
        json!({"model": "item", "filter": {"s": "5"}}),
    )
    .await;

    let five = create_as(&w.s, &w.alice, "item", json!({"n": 5, "s": "5"})).await;
    create_doc_as(&w.s, &w.alice, "item", json!({"n": 6, "s": "6"})).await;

    change(&number_as_text.event().await, "post", "item", &five);
    change(&text_for_text.event().await, "post", "item", &five);
    number_as_text.expect_no_event(QUIET).await;
    text_for_text.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_number_filter_value_does_not_match_a_string_field() {
    let w = world(&[]).await;
    // `s` is a String: 5 does not match "5" (only a Number field coerces).
    let mut number_for_text =
        subscribed(&w.s, &w.alice, json!({"model": "item", "filter": {"s": 5}})).await;
    let mut witness = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    let five = create_as(&w.s, &w.alice, "item", json!({"n": 5, "s": "5"})).await;
    change(&witness.event().await, "post", "item", &five);
    number_for_text.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let w = world(&[]).await;
    let a = create_as(&w.s, &w.alice, "item", json!({"name": "a"})).await;
    let mut c = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    c.subscribe_ok(json!({"model": "item", "id": a})).await;
    let b = create_as(&w.s, &w.alice, "item", json!({"name": "b"})).await;
    change(&c.event().await, "post", "item", &b);

    let reply = c.request("unsubscribe", json!({"model": "item"})).await;
    assert_eq!(reply["status"], "okay", "{reply}");
    assert_eq!(reply["action"], "unsubscribe", "{reply}");
    create_doc_as(&w.s, &w.alice, "item", json!({"name": "c"})).await;
    update_as(&w.s, &w.alice, "item", &b, json!({"name": "b2"})).await;
    c.expect_no_event(QUIET).await;

    // The document subscription is a different one and still delivers.
    update_as(&w.s, &w.alice, "item", &a, json!({"name": "a2"})).await;
    change(&c.event().await, "put", "item", &a);
    c.unsubscribe_ok(json!({"model": "item", "id": a})).await;
    update_as(&w.s, &w.alice, "item", &a, json!({"name": "a3"})).await;
    delete_as(&w.s, &w.alice, "item", &a, "").await;
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn silenced_writes_emit_nothing() {
    let w = world(&[]).await;
    let mut c = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    let quiet = write_as(
        &w.s,
        &w.alice,
        Method::POST,
        "/api/item?_silence=true",
        Some(json!({"name": "q1"})),
    )
    .await;
    let quiet_id = id_of(&quiet["data"]);
    write_as(
        &w.s,
        &w.alice,
        Method::POST,
        "/api/item",
        Some(json!({"name": "q2", "_silence": true})),
    )
    .await;
    write_as(
        &w.s,
        &w.alice,
        Method::PUT,
        &format!("/api/item/{quiet_id}?_silence=true"),
        Some(json!({"name": "q3"})),
    )
    .await;
    write_as(
        &w.s,
        &w.alice,
        Method::PUT,
        &format!("/api/item/{quiet_id}"),
        Some(json!({"name": "q4", "_silence": true})),
    )
    .await;
    write_as(
        &w.s,
        &w.alice,
        Method::POST,
        &format!("/update/item/{quiet_id}?_silence=true"),
        Some(json!({"name": "q5"})),
    )
    .await;
    delete_as(&w.s, &w.alice, "item", &quiet_id, "?_silence=true").await;
    c.expect_no_event(QUIET).await;

    let loud = create_as(&w.s, &w.alice, "item", json!({"name": "loud"})).await;
    let ev = c.event().await;
    change(&ev, "post", "item", &loud);
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn two_clients_both_receive() {
    let w = world(&[]).await;
    let mut a = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    let mut b = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;
    let id = create_as(&w.s, &w.admin, "item", json!({"name": "x"})).await;
    let ea = a.event().await;
    let eb = b.event().await;
    change(&ea, "post", "item", &id);
    change(&eb, "post", "item", &id);
    assert_eq!(ea["data"], eb["data"], "the same event");
    assert_eq!(ea["client_id"], a.client_id.clone().unwrap().as_str());
    assert_eq!(eb["client_id"], b.client_id.clone().unwrap().as_str());
    assert_ne!(ea["client_id"], eb["client_id"]);
}

/// Subscribers leaving in any order, by closing or by unsubscribing, leave every other
/// subscription in place: each remaining one gets each event once.
#[tokio::test]
async fn subscribers_leaving_in_any_order_leave_the_others_subscribed() {
    let w = world(&[]).await;
    let mut clients = Vec::new();
    for i in 0..24 {
        let mut c = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
        if i % 2 == 0 {
            c.subscribe_ok(json!({"model": "item", "filter": {"name": "x"}}))
                .await;
        }
        clients.push(Some(c));
    }
    // A third of them close, in an order that is not the order they came in.
    for i in [7, 2, 19, 11, 0, 23, 14, 5] {
        if let Some(c) = clients[i].take() {
            c.close().await;
        }
    }
    // Some of the rest keep only their filtered subscription.
    let filtered_only = [4, 16, 10];
    for i in filtered_only {
        if let Some(c) = clients[i].as_mut() {
            c.unsubscribe_ok(json!({"model": "item"})).await;
        }
    }
    for name in ["x", "y", "x"] {
        let id = create_as(&w.s, &w.admin, "item", json!({"name": name})).await;
        for (i, c) in clients.iter_mut().enumerate() {
            let Some(c) = c else { continue };
            if filtered_only.contains(&i) && name == "y" {
                // Not for them: the next event they read must be the next "x".
                continue;
            }
            let ev = c.event().await;
            change(&ev, "post", "item", &id);
        }
    }
    // Nothing more, duplicates included; waited for side by side.
    futures_util::future::join_all(
        clients
            .iter_mut()
            .flatten()
            .map(|c| c.expect_no_event(QUIET)),
    )
    .await;
}

#[tokio::test]
async fn private_fields_never_appear_in_items() {
    let w = world(&[]).await;
    let mut c = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    let id = create_as(
        &w.s,
        &w.alice,
        "item",
        json!({"name": "p", "secret": "s3cret", "password": "hunter2"}),
    )
    .await;
    update_as(
        &w.s,
        &w.alice,
        "item",
        &id,
        json!({"secret": "other", "password": "pw2", "name": "q"}),
    )
    .await;
    delete_as(&w.s, &w.alice, "item", &id, "").await;
    let got = c.events(3).await;
    for (ev, kind) in got.iter().zip(["post", "put", "del"]) {
        let item = &change(ev, kind, "item", &id)["item"];
        assert!(item.get("secret").is_none(), "private field in {ev}");
        assert!(item.get("password").is_none(), "password in {ev}");
        let text = ev.to_string();
        for leaked in ["s3cret", "hunter2", "other", "pw2", "$2"] {
            assert!(!text.contains(leaked), "{leaked:?} leaked in {ev}");
        }
    }
}

#[tokio::test]
async fn every_write_route_emits_its_event() {
    let w = world(&[]).await;
    let mut c = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    c.subscribe_ok(json!({"model": "parent"})).await;
    let mut last = 0;
    let mut next = |ev: &Value| {
        let s = seq(ev);
        if ev["data"]["modelname"] == "item" {
            assert!(s > last, "item seq goes up: {last} then {ev}");
            last = s;
        }
    };

    // POST /api/:model
    let id = create_as(&w.s, &w.alice, "item", json!({"name": "a"})).await;
    let ev = c.event().await;
    change(&ev, "post", "item", &id);
    next(&ev);
    // PUT /api/:model/:id
    update_as(&w.s, &w.alice, "item", &id, json!({"name": "b"})).await;
    let ev = c.event().await;
    assert_eq!(change(&ev, "put", "item", &id)["item"]["name"], "b");
    next(&ev);
    // POST /update/:model/:id
    write_as(
        &w.s,
        &w.alice,
        Method::POST,
        &format!("/update/item/{id}"),
        Some(json!({"name": "c"})),
    )
    .await;
    let ev = c.event().await;
    assert_eq!(change(&ev, "put", "item", &id)["item"]["name"], "c");
    next(&ev);
    // DELETE (soft)
    delete_as(&w.s, &w.alice, "item", &id, "").await;
    let ev = c.event().await;
    assert_eq!(change(&ev, "del", "item", &id)["item"]["_deleted"], true);
    next(&ev);
    // PUT {_deleted: false} undeletes
    update_as(&w.s, &w.alice, "item", &id, json!({"_deleted": false})).await;
    let ev = c.event().await;
    assert_eq!(change(&ev, "put", "item", &id)["item"]["_deleted"], false);
    next(&ev);
    // DELETE ?_permaDelete=1
    delete_as(&w.s, &w.alice, "item", &id, "?_permaDelete=1").await;
    let ev = c.event().await;
    assert_eq!(change(&ev, "del", "item", &id)["item"]["_id"], id.as_str());
    next(&ev);

    // DELETE ?_cascade=1: the referrer's del arrives too.
    let parent = create_as(&w.s, &w.alice, "parent", json!({"name": "P"})).await;
    change(&c.event().await, "post", "parent", &parent);
    let child = create_as(
        &w.s,
        &w.alice,
        "item",
        json!({"name": "child", "parent_id": parent}),
    )
    .await;
    let ev = c.event().await;
    change(&ev, "post", "item", &child);
    next(&ev);
    let (status, body) = call(
        &w.s,
        Method::DELETE,
        &format!("/api/parent/{parent}"),
        &w.alice.basic(),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a referred document needs _cascade: {body}"
    );
    c.expect_no_event(QUIET).await;
    delete_as(&w.s, &w.alice, "parent", &parent, "?_cascade=1").await;
    let got = c.events(2).await;
    let mut seen: Vec<(String, String, String)> = got
        .iter()
        .map(|e| {
            let d = &e["data"];
            assert_eq!(d["item"]["_deleted"], true, "{e}");
            (
                d["event"].as_str().unwrap().to_owned(),
                d["modelname"].as_str().unwrap().to_owned(),
                d["item"]["_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut want = vec![
        ("del".to_owned(), "item".to_owned(), child.clone()),
        ("del".to_owned(), "parent".to_owned(), parent.clone()),
    ];
    want.sort();
    assert_eq!(seen, want, "{got:?}");
    for ev in &got {
        next(ev);
    }
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_rejected_write_emits_nothing() {
    let w = world(&[]).await;
    let mut c = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    let id = create_as(&w.s, &w.alice, "item", json!({"name": "a"})).await;
    change(&c.event().await, "post", "item", &id);
    let (status, body) = call(
        &w.s,
        Method::POST,
        "/api/item",
        &w.alice.basic(),
        Some(json!({"n": "not a number"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(
        &w.s,
        Method::PUT,
        &format!("/api/item/{id}"),
        &w.alice.basic(),
        Some(json!({"n": "NaN?"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(
        &w.s,
        Method::POST,
        "/api/item",
        &Auth::None,
        Some(json!({"name": "anon"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_document_and_its_collection_yield_one_event_per_change() {
    let w = world(&[]).await;
    let a = create_as(&w.s, &w.alice, "item", json!({"name": "a", "tag": "t"})).await;
    let mut c = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    c.subscribe_ok(json!({"model": "item", "id": a})).await;
    c.subscribe_ok(json!({"model": "item", "filter": {"tag": "t"}}))
        .await;

    update_as(&w.s, &w.alice, "item", &a, json!({"name": "a2"})).await;
    let put = c.event().await;
    change(&put, "put", "item", &a);
    c.expect_no_event(QUIET).await;

    let b = create_as(&w.s, &w.alice, "item", json!({"name": "b", "tag": "t"})).await;
    change(&c.event().await, "post", "item", &b);
    c.expect_no_event(QUIET).await;

    delete_as(&w.s, &w.alice, "item", &a, "").await;
    let del = c.event().await;
    change(&del, "del", "item", &a);
    assert!(seq(&del) > seq(&put));
    c.expect_no_event(QUIET).await;
}

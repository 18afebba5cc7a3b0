//! `updateMany` and `deleteMany` over more documents than one page of matches: every match is
//! changed, each through the write path with its own event, and a document the write path
//! refuses stops the operation there, leaving the ones before it changed.

use serde_json::{Value, json};

use crate::aggregate::world;
use crate::harness::{Auth, TestServer, World, call};
use crate::realtime::client::WsClient;
use reqwest::{Method, StatusCode};
use std::time::Duration;

/// `n` is bounded, so an `$inc` can be refused by validation.
const MANY: &str = r#"
name = "Many"
[fields]
k = "Number"
n = { type = "Number", min = 0, max = 100 }
[perms]
admin = "crud"
user = "r"
[options]
advanced_queries = { bulkwrite = true }
"#;

/// More than two of the pages `updateMany`/`deleteMany` read at a time (500).
const DOCS: u64 = 1_200;

/// `POST /bulkwrite/many` as the admin, expecting 200; answers `data`.
async fn bulk_admin(s: &TestServer, auth: &Auth, body: Value) -> Value {
    let (status, resp) = call(s, Method::POST, "/bulkwrite/many", auth, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    resp["data"].clone()
}

/// Inserts documents `k` = 0..DOCS with `n` = 0, the one at `odd` with `n` = 50.
async fn seed(s: &TestServer, auth: &Auth, odd: u64) {
    let docs: Vec<Value> = (0..DOCS)
        .map(|k| {
            let n = if k == odd { 50 } else { 0 };
            json!({"insertOne": {"document": {"k": k, "n": n}}})
        })
        .collect();
    for chunk in docs.chunks(1000) {
        let data = bulk_admin(s, auth, Value::Array(chunk.to_vec())).await;
        assert_eq!(data["ok"], 1, "{data}");
    }
}

/// The live documents, as `(_id, n)`, in id order, read a page at a time.
async fn all(s: &TestServer, auth: &Auth) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for page in 1.. {
        let (status, resp) = call(
            s,
            Method::GET,
            &format!("/api/many?sort=_id&limit=500&page={page}"),
            auth,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        let data = resp["data"].as_array().unwrap();
        out.extend(data.iter().map(|d| {
            (
                d["_id"].as_str().unwrap().to_owned(),
                d["n"].as_i64().unwrap_or(-1),
            )
        }));
        if data.len() < 500 {
            break;
        }
    }
    out
}

/// Bob (a reader), subscribed to the model's events.
async fn subscriber(w: &World) -> WsClient {
    let mut c = WsClient::connect(&w.s).await;
    c.auth_ok(json!({"email": w.bob.email, "password": w.bob.password}))
        .await;
    c.subscribe_ok(json!({"model": "many"})).await;
    c
}

/// The next `n` events' `(event, _id)`, then none more within a moment.
async fn events(c: &mut WsClient, n: usize) -> Vec<(String, String)> {
    let got = c
        .events(n)
        .await
        .iter()
        .map(|e| {
            (
                e["data"]["event"].as_str().unwrap().to_owned(),
                e["data"]["item"]["_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    c.expect_no_event(Duration::from_millis(300)).await;
    got
}

#[tokio::test]
async fn many_operations_change_every_match_past_one_page_with_one_event_each() {
    let w = world(&[("many", MANY)]).await;
    let admin = w.admin.basic();
    seed(&w.s, &admin, DOCS).await;
    let mut c = subscriber(&w).await;

    let data = bulk_admin(
        &w.s,
        &admin,
        json!([{"updateMany": {"filter": {}, "update": {"$set": {"n": 7}}}}]),
    )
    .await;
    assert_eq!(data["ok"], 1, "{data}");
    assert_eq!(
        (data["nMatched"].as_u64(), data["nModified"].as_u64()),
        (Some(DOCS), Some(DOCS))
    );
    let before = all(&w.s, &admin).await;
    assert_eq!(before.len() as u64, DOCS);
    assert!(
        before.iter().all(|(_, n)| *n == 7),
        "every document updated"
    );
    let mut ids: Vec<String> = before.iter().map(|(id, _)| id.clone()).collect();
    let mut put = events(&mut c, DOCS as usize).await;
    assert!(put.iter().all(|(e, _)| e == "put"), "{put:?}");
    put.sort();
    put.dedup();
    ids.sort();
    let put_ids: Vec<String> = put.into_iter().map(|(_, id)| id).collect();
    assert_eq!(put_ids, ids, "one event per document");

    let data = bulk_admin(&w.s, &admin, json!([{"deleteMany": {"filter": {"n": 7}}}])).await;
    assert_eq!(data["nRemoved"].as_u64(), Some(DOCS), "{data}");
    assert!(all(&w.s, &admin).await.is_empty(), "nothing left to read");
    let mut del = events(&mut c, DOCS as usize).await;
    assert!(del.iter().all(|(e, _)| e == "del"), "{del:?}");
    del.sort();
    del.dedup();
    let del_ids: Vec<String> = del.into_iter().map(|(_, id)| id).collect();
    assert_eq!(del_ids, ids, "one event per document");
    // Soft deleted, as `DELETE` does: a document comes back with `_deleted: false`.
    let (status, resp) = call(
        &w.s,
        Method::PUT,
        &format!("/api/many/{}", ids[0]),
        &admin,
        Some(json!({"_deleted": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(all(&w.s, &admin).await.len(), 1);
}

#[tokio::test]
async fn a_refused_document_stops_a_many_operation_where_it_stands() {
    let w = world(&[("many", MANY)]).await;
    let admin = w.admin.basic();
    let odd = 700;
    seed(&w.s, &admin, odd).await;
    let docs = all(&w.s, &admin).await;
    let (odd_id, _) = docs.iter().find(|(_, n)| *n == 50).unwrap().clone();
    let mut c = subscriber(&w).await;

    // $inc 60 takes the odd document past the model's max of 100: validation refuses it.
    let data = bulk_admin(
        &w.s,
        &admin,
        json!([{"updateMany": {"filter": {}, "update": {"$inc": {"n": 60}}}}]),
    )
    .await;
    assert_eq!(data["ok"], 0, "{data}");
    let errors = data["writeErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{data}");
    assert_eq!(
        (errors[0]["index"].as_u64(), errors[0]["status"].as_u64()),
        (Some(0), Some(400)),
        "{data}"
    );

    // Documents before the refused one (in id order) are changed, it and those after are not.
    let after = all(&w.s, &admin).await;
    let changed: Vec<&String> = after
        .iter()
        .filter(|(_, n)| *n == 60)
        .map(|(id, _)| id)
        .collect();
    let expected: Vec<&String> = after
        .iter()
        .map(|(id, _)| id)
        .filter(|id| **id < odd_id)
        .collect();
    assert!(!expected.is_empty() && (expected.len() as u64) < DOCS);
    assert_eq!(changed, expected);
    assert!(
        after
            .iter()
            .filter(|(id, _)| *id >= odd_id)
            .all(|(id, n)| *n == if *id == odd_id { 50 } else { 0 }),
        "nothing from the refused document on was written"
    );
    let put = events(&mut c, expected.len()).await;
    assert!(
        put.iter().all(|(e, id)| e == "put" && *id < odd_id),
        "{put:?}"
    );
}

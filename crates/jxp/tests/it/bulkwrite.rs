//! `POST /bulkwrite/:model`: each operation, MongoDB's result counters and per-operation
//! results, JXP's gate (admins, or models that opt in) and per-operation rights, the request
//! refused whole on bad input or a missing right, ordered and unordered runs, and the change
//! events every operation produces.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::aggregate::world;
use crate::harness::{Account, Auth, TestServer, World, assert_error, call, create_as};
use crate::realtime::client::WsClient;

/// Open to anyone and opted in to bulk writes.
const OPEN: &str = r#"
name = "Bulk"
[fields]
name = { type = "String", unique = true }
n = { type = "Number", min = 0, max = 100 }
tags = ["String"]
note = "String"
secret = { type = "String", private = true }
[perms]
all = "crud"
[options]
advanced_queries = { bulkwrite = true }
"#;

/// Users create and read; owners update and delete their own; opted in.
const OWNED: &str = r#"
name = "Mine"
[fields]
name = "String"
n = "Number"
[perms]
admin = "crud"
user = "cr"
owner = "ud"
[options]
advanced_queries = { bulkwrite = true }
"#;

/// Users may create, read and update but never delete; opted in.
const NODELETE: &str = r#"
name = "Keep"
[fields]
name = "String"
[perms]
admin = "crud"
user = "cru"
[options]
advanced_queries = { bulkwrite = true }
"#;

async fn bulk(
    s: &TestServer,
    model: &str,
    who: Option<&Account>,
    body: Value,
) -> (StatusCode, Value) {
    call(
        s,
        Method::POST,
        &format!("/bulkwrite/{model}"),
        &Auth::of(who),
        Some(body),
    )
    .await
}

/// `data` of a 200 answer.
async fn bulk_ok(s: &TestServer, model: &str, who: Option<&Account>, body: Value) -> Value {
    let (status, resp) = bulk(s, model, who, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}: {resp}");
    resp["data"].clone()
}

/// Live documents of `model` as the admin reads them, by `name`.
async fn names(w: &World, model: &str) -> Vec<String> {
    let (status, resp) = call(
        &w.s,
        Method::GET,
        &format!("/api/{model}?sort=name"),
        &w.admin.basic(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    resp["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap_or("?").to_owned())
        .collect()
}

async fn one(w: &World, model: &str, name: &str) -> Value {
    let (status, resp) = call(
        &w.s,
        Method::GET,
        &format!("/api/{model}?filter[name]={name}"),
        &w.admin.basic(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["data"].as_array().unwrap().len(), 1, "{resp}");
    resp["data"][0].clone()
}

fn counts(data: &Value) -> [u64; 5] {
    [
        "nInserted",
        "nUpserted",
        "nMatched",
        "nModified",
        "nRemoved",
    ]
    .map(|k| data[k].as_u64().unwrap_or_else(|| panic!("no {k}: {data}")))
}

#[tokio::test]
async fn each_operation_does_what_mongodb_does() {
    let w = world(&[("bulk", OPEN)]).await;
    for (name, n) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
        create_as(
            &w.s,
            &w.alice,
            "bulk",
            json!({"name": name, "n": n, "secret": "s"}),
        )
        .await;
    }
    let data = bulk_ok(
        &w.s,
        "bulk",
        None,
        json!([
            {"insertOne": {"document": {"name": "e", "n": 5}}},
            {"updateOne": {"filter": {"name": "a"}, "update": {"$set": {"note": "x"}, "$inc": {"n": 10}, "$push": {"tags": "t"}}}},
            {"updateOne": {"filter": {"name": "b"}, "update": {"n": 2}}},
            {"updateOne": {"filter": {"name": "f"}, "update": {"n": 6}, "upsert": true}},
            {"updateOne": {"filter": {"name": "zz"}, "update": {"$set": {"n": 1}}}},
            {"replaceOne": {"filter": {"name": "c"}, "replacement": {"name": "c2", "tags": ["r"]}}},
            {"deleteOne": {"filter": {"name": {"$in": ["e", "d"]}}}}
        ]),
    )
    .await;
    // One match changed (a), one matched unchanged (b), one upsert (f), one miss (zz), one
    // replace (c), one delete (d, the first of n >= 4 in id order).
    assert_eq!(counts(&data), [1, 1, 3, 2, 1], "{data}");
    assert_eq!(data["ok"], 1, "{data}");
    assert_eq!(data["writeErrors"], json!([]), "{data}");
    assert_eq!(data["insertedIds"][0]["index"], 0, "{data}");
    assert_eq!(data["upserted"][0]["index"], 3, "{data}");
    let results = data["results"].as_array().unwrap();
    assert_eq!(results.len(), 7, "{data}");
    assert!(results.iter().all(|r| r["status"] == "ok"), "{data}");
    assert_eq!(results[4]["matched"], 0, "{data}");

    assert_eq!(names(&w, "bulk").await, ["a", "b", "c2", "e", "f"]);
    let a = one(&w, "bulk", "a").await;
    assert_eq!(
        (a["n"].clone(), a["note"].clone(), a["tags"].clone()),
        (json!(11), json!("x"), json!(["t"])),
        "{a}"
    );
    assert_eq!(a["__v"], 1, "an update counts a version: {a}");
    let b = one(&w, "bulk", "b").await;
    assert_eq!(
        b["__v"], 0,
        "an update that changes nothing writes nothing: {b}"
    );
    let c2 = one(&w, "bulk", "c2").await;
    assert!(
        c2.get("n").is_none_or(Value::is_null),
        "a replacement drops what it leaves out: {c2}"
    );
    assert_eq!(c2["tags"], json!(["r"]), "{c2}");
    assert!(
        c2.get("secret").is_none(),
        "private fields stay private: {c2}"
    );
    assert_eq!(one(&w, "bulk", "f").await["n"], 6);

    // The many-document forms, for an admin.
    let data = bulk_ok(
        &w.s,
        "bulk",
        Some(&w.admin),
        json!([
            {"updateMany": {"filter": {"n": {"$lt": 7}}, "update": {"$set": {"note": "low"}}}},
            {"deleteMany": {"filter": {"note": "low"}}}
        ]),
    )
    .await;
    // b (2), e (5), f (6) are below 7 and c2 has no n.
    assert_eq!(counts(&data), [0, 0, 3, 3, 3], "{data}");
    assert_eq!(names(&w, "bulk").await, ["a", "c2"]);
    let (_, deleted) = call(
        &w.s,
        Method::GET,
        "/api/bulk?showDeleted=1&filter[_deleted]=true",
        &w.admin.basic(),
        None,
    )
    .await;
    assert_eq!(
        deleted["data"].as_array().unwrap().len(),
        4,
        "deletes are soft, as DELETE's: {deleted}"
    );
}

#[tokio::test]
async fn non_admins_need_the_model_to_opt_in() {
    let w = world(&[]).await;
    let before = w.s.total("test").await;
    let got = bulk(
        &w.s,
        "test",
        Some(&w.alice),
        json!([{"insertOne": {"document": {"foo": "x"}}}]),
    )
    .await;
    assert_error(
        &got,
        StatusCode::FORBIDDEN,
        "POST /bulkwrite is disabled for model test",
    );
    let got = bulk(
        &w.s,
        "test",
        None,
        json!([{"insertOne": {"document": {"foo": "x"}}}]),
    )
    .await;
    assert_error(&got, StatusCode::FORBIDDEN, "disabled for model test");
    assert_eq!(w.s.total("test").await, before, "nothing written");
    // Admins may use it on any model.
    let data = bulk_ok(
        &w.s,
        "test",
        Some(&w.admin),
        json!([{"insertOne": {"document": {"foo": "x"}}}]),
    )
    .await;
    assert_eq!(counts(&data), [1, 0, 0, 0, 0], "{data}");
}

#[tokio::test]
async fn every_operation_needs_its_right() {
    let w = world(&[("mine", OWNED), ("keep", NODELETE)]).await;
    let alices = create_as(&w.s, &w.alice, "mine", json!({"name": "alice's", "n": 1})).await;
    create_as(&w.s, &w.bob, "mine", json!({"name": "bob's", "n": 1})).await;

    // Owners change their own.
    let data = bulk_ok(
        &w.s,
        "mine",
        Some(&w.bob),
        json!([
            {"updateOne": {"filter": {"name": "bob's"}, "update": {"$set": {"n": 2}}}},
            {"updateOne": {"filter": {"name": "nobody's"}, "update": {"$set": {"n": 3}}}}
        ]),
    )
    .await;
    assert_eq!(counts(&data), [0, 0, 1, 1, 0], "{data}");
    assert_eq!(one(&w, "mine", "bob's").await["n"], 2);
    // An operation whose filter selects someone else's document refuses the whole request,
    // as a DELETE or PUT of that document is refused, rather than matching nothing.
    for (index, op, verb) in [
        (
            1,
            json!({"updateOne": {"filter": {"_id": alices}, "update": {"$set": {"n": 99}}}}),
            "update",
        ),
        (
            1,
            json!({"replaceOne": {"filter": {"name": "alice's"}, "replacement": {"name": "x"}}}),
            "update",
        ),
        (
            1,
            json!({"deleteOne": {"filter": {"name": "alice's"}}}),
            "delete",
        ),
        (1, json!({"deleteOne": {"filter": {}}}), "delete"),
    ] {
        let got = bulk(
            &w.s,
            "mine",
            Some(&w.bob),
            json!([{"insertOne": {"document": {"name": "new"}}}, op]),
        )
        .await;
        assert_error(
            &got,
            StatusCode::FORBIDDEN,
            &format!("operation {index}: you may not {verb} mine"),
        );
    }
    assert_eq!(one(&w, "mine", "alice's").await["n"], 1);
    assert_eq!(names(&w, "mine").await.len(), 2, "nothing written");

    // A right the caller lacks refuses the whole request before anything runs.
    let before = names(&w, "keep").await;
    let got = bulk(
        &w.s,
        "keep",
        Some(&w.alice),
        json!([
            {"insertOne": {"document": {"name": "new"}}},
            {"deleteOne": {"filter": {"name": "new"}}}
        ]),
    )
    .await;
    assert_error(
        &got,
        StatusCode::FORBIDDEN,
        "operation 1: you may not delete keep",
    );
    assert_eq!(names(&w, "keep").await, before, "nothing written");

    // An upsert needs create as well as update; anonymous callers have neither here.
    let got = bulk(
        &w.s,
        "mine",
        None,
        json!([{"updateOne": {"filter": {"name": "x"}, "update": {"n": 1}, "upsert": true}}]),
    )
    .await;
    assert_error(&got, StatusCode::FORBIDDEN, "operation 0: you may not");

    // The many-document forms are for admins only.
    for op in [
        json!({"updateMany": {"filter": {}, "update": {"$set": {"n": 0}}}}),
        json!({"deleteMany": {"filter": {}}}),
    ] {
        let got = bulk(&w.s, "mine", Some(&w.alice), json!([op])).await;
        assert_error(&got, StatusCode::FORBIDDEN, "requires an admin");
    }
    assert_eq!(one(&w, "mine", "bob's").await["n"], 2);
    assert_eq!(names(&w, "mine").await.len(), 2);
}

#[tokio::test]
async fn bad_requests_are_refused_whole_with_the_reason() {
    let w = world(&[("bulk", OPEN)]).await;
    let insert = json!({"insertOne": {"document": {"name": "first"}}});
    let cases = [
        (json!({"foo": 1}), "query missing or not of type array"),
        (json!("x"), "query missing or not of type array"),
        (
            json!({"query": [insert], "ordered": "no"}),
            "\"ordered\" must be true or false",
        ),
        (json!([]), "no operations"),
        (
            json!([insert, {"dropCollection": {}}]),
            "operation 1: operation dropCollection is not allowed",
        ),
        (
            json!([insert, {"insertOne": {}, "deleteOne": {}}]),
            "operation 1: must be an object with one key",
        ),
        (
            json!([insert, {"insertOne": {"document": 3}}]),
            "operation 1: \"document\" must be an object",
        ),
        (
            json!([insert, {"updateOne": {"update": {"$set": {"n": 1}}}}]),
            "operation 1: \"filter\" is missing",
        ),
        (
            json!([insert, {"updateOne": {"filter": {}, "update": {"$rename": {"n": 3}}}}]),
            "$rename n",
        ),
        (
            json!([insert, {"updateOne": {"filter": {}, "update": {"$where": {"n": 1}}}}]),
            "unsupported update operator $where",
        ),
        (
            json!([insert, {"updateOne": {"filter": {}, "update": [{"$set": {"n": 1}}]}}]),
            "pipelines are not supported",
        ),
        (
            json!([insert, {"updateOne": {"filter": {}, "update": {"$set": {"_id": "x"}}}}]),
            "_id cannot be changed",
        ),
        (
            json!([insert, {"updateOne": {"filter": {"$where": "1"}, "update": {"n": 1}}}]),
            "$where",
        ),
        (
            json!([insert, {"replaceOne": {"filter": {}, "replacement": {"$set": {"n": 1}}}}]),
            "cannot hold operators",
        ),
        (
            json!([insert, {"deleteOne": {"filter": {"n": {"$bogus": 1}}}}]),
            "$bogus",
        ),
        (
            json!([insert, {"updateOne": {"filter": {}, "update": {"n": 1}, "upsert": "yes"}}]),
            "\"upsert\" must be true or false",
        ),
    ];
    for (body, want) in cases {
        let got = bulk(&w.s, "bulk", None, body.clone()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, want);
    }
    let many: Vec<Value> = (0..1001).map(|_| insert.clone()).collect();
    let got = bulk(&w.s, "bulk", None, Value::Array(many)).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "at most 1000");
    assert_eq!(
        names(&w, "bulk").await,
        Vec::<String>::new(),
        "nothing written by any of them"
    );
    let got = bulk(&w.s, "nosuch", None, json!([insert])).await;
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{:?}", got.1);
}

#[tokio::test]
async fn the_first_failure_stops_an_ordered_run_and_not_an_unordered_one() {
    let w = world(&[("bulk", OPEN)]).await;
    create_as(&w.s, &w.alice, "bulk", json!({"name": "taken", "n": 1})).await;
    let ops = json!([
        {"insertOne": {"document": {"name": "one"}}},
        {"insertOne": {"document": {"name": "taken"}}},
        {"updateOne": {"filter": {"name": "one"}, "update": {"$inc": {"n": 500}}}},
        {"insertOne": {"document": {"name": "two"}}}
    ]);
    let data = bulk_ok(&w.s, "bulk", None, ops.clone()).await;
    assert_eq!(data["ok"], 0, "{data}");
    assert_eq!(counts(&data), [1, 0, 0, 0, 0], "{data}");
    let errors = data["writeErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{data}");
    assert_eq!(errors[0]["index"], 1, "{data}");
    assert_eq!(errors[0]["code"], "Conflict", "{data}");
    assert_eq!(errors[0]["status"], 409, "{data}");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("name"),
        "{data}"
    );
    assert_eq!(
        data["results"].as_array().unwrap().len(),
        2,
        "nothing ran after the failure: {data}"
    );
    assert_eq!(names(&w, "bulk").await, ["one", "taken"]);

    // Unordered: every operation runs; the $inc past the model's max fails validation alone.
    let ops = json!({"ordered": false, "query": [
        {"insertOne": {"document": {"name": "taken"}}},
        {"updateOne": {"filter": {"name": "one"}, "update": {"$inc": {"n": 500}}}},
        {"insertOne": {"document": {"name": "two"}}}
    ]});
    let data = bulk_ok(&w.s, "bulk", None, ops).await;
    let failed: Vec<(u64, u64)> = data["writeErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(failed, [(0, 409), (1, 400)], "{data}");
    assert_eq!(counts(&data), [1, 0, 0, 0, 0], "{data}");
    assert_eq!(names(&w, "bulk").await, ["one", "taken", "two"]);
    assert!(
        one(&w, "bulk", "one")
            .await
            .get("n")
            .is_none_or(Value::is_null),
        "the invalid update wrote nothing"
    );
}

/// Unordered, a run of inserts is sent to the store together; each is still its own write:
/// one that meets a unique index fails alone, and the answer lists every insert in the
/// order it was asked for.
#[tokio::test]
async fn an_unordered_run_of_inserts_goes_in_together_each_on_its_own() {
    let w = world(&[("bulk", OPEN)]).await;
    create_as(&w.s, &w.alice, "bulk", json!({"name": "taken"})).await;
    let query: Vec<Value> = (0..300)
        .map(|i| {
            let name = if i == 120 {
                "taken".to_owned()
            } else {
                format!("doc {i:03}")
            };
            json!({"insertOne": {"document": {"name": name, "n": i % 100}}})
        })
        .collect();
    let data = bulk_ok(
        &w.s,
        "bulk",
        None,
        json!({"ordered": false, "query": query}),
    )
    .await;
    assert_eq!(counts(&data), [299, 0, 0, 0, 0], "{data}");
    let errors = data["writeErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{data}");
    assert_eq!(
        (errors[0]["index"].clone(), errors[0]["status"].clone()),
        (json!(120), json!(409))
    );
    let indexes: Vec<u64> = data["insertedIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..300).filter(|i| *i != 120).collect();
    assert_eq!(indexes, expected);
    let results = data["results"].as_array().unwrap();
    assert_eq!(results.len(), 300, "every insert was tried");
    assert_eq!(w.s.total("bulk").await, 300);
    let (status, doc) = call(
        &w.s,
        Method::GET,
        &format!(
            "/api/bulk/{}",
            data["insertedIds"][299 - 1]["_id"].as_str().unwrap()
        ),
        &w.admin.basic(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["data"]["name"], "doc 299", "{doc}");
}

#[tokio::test]
async fn every_operation_reaches_subscribers_and_silence_skips_them() {
    let w = world(&[("bulk", OPEN)]).await;
    let keep = create_as(&w.s, &w.alice, "bulk", json!({"name": "keep"})).await;
    let gone = create_as(&w.s, &w.alice, "bulk", json!({"name": "gone"})).await;
    let mut c = WsClient::connect(&w.s).await;
    c.auth_ok(json!({"email": w.bob.email, "password": w.bob.password}))
        .await;
    c.subscribe_ok(json!({"model": "bulk"})).await;
    let data = bulk_ok(
        &w.s,
        "bulk",
        None,
        json!([
            {"insertOne": {"document": {"name": "new"}}},
            {"updateOne": {"filter": {"_id": keep}, "update": {"$set": {"n": 1}}}},
            {"updateOne": {"filter": {"name": "up"}, "update": {"n": 2}, "upsert": true}},
            {"deleteOne": {"filter": {"_id": gone}}}
        ]),
    )
    .await;
    let new_id = data["insertedIds"][0]["_id"].as_str().unwrap().to_owned();
    let up_id = data["upserted"][0]["_id"].as_str().unwrap().to_owned();
    let events = c.events(4).await;
    let got: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["data"]["event"].as_str().unwrap().to_owned(),
                e["data"]["item"]["_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("post".to_owned(), new_id),
            ("put".to_owned(), keep.clone()),
            ("post".to_owned(), up_id),
            ("del".to_owned(), gone)
        ]
    );
    assert_eq!(events[1]["data"]["item"]["n"], 1, "{}", events[1]);
    assert!(
        events
            .iter()
            .all(|e| e["data"]["item"].get("secret").is_none())
    );

    // `_silence`: written, not announced. The marker write after it is the next event.
    let (status, resp) = call(
        &w.s,
        Method::POST,
        "/bulkwrite/bulk?_silence=1",
        &Auth::None,
        Some(json!([{"updateOne": {"filter": {"_id": keep}, "update": {"$set": {"n": 5}}}}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(one(&w, "bulk", "keep").await["n"], 5);
    let marker = create_as(&w.s, &w.alice, "bulk", json!({"name": "marker"})).await;
    let next = c
        .next_event(Duration::from_secs(5))
        .await
        .expect("the marker's event");
    assert_eq!(
        next["data"]["item"]["_id"],
        marker.as_str(),
        "the silenced write sent no event: {next}"
    );
}

#[tokio::test]
async fn the_open_test_model_stays_closed_to_non_admins_by_default() {
    // The default of `advanced_queries.bulkwrite` is off, as JXP documents.
    let s = TestServer::open().await;
    let got = s
        .post(
            "/bulkwrite/test",
            json!([{"insertOne": {"document": {"foo": "x"}}}]),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "disabled for model test");
}

/// Users may create and update but not read: their filters still select what they update.
const WRITE_ONLY: &str = r#"
name = "Drop"
[fields]
name = "String"
n = "Number"
[perms]
admin = "crud"
user = "cu"
[options]
advanced_queries = { bulkwrite = true }
"#;

#[tokio::test]
async fn an_update_right_needs_no_read_right() {
    let w = world(&[("drop", WRITE_ONLY)]).await;
    let data = bulk_ok(
        &w.s,
        "drop",
        Some(&w.alice),
        json!([
            {"insertOne": {"document": {"name": "x", "n": 1}}},
            {"updateOne": {"filter": {"name": "x"}, "update": {"$inc": {"n": 1}}}}
        ]),
    )
    .await;
    assert_eq!(counts(&data), [1, 0, 1, 1, 0], "{data}");
    assert_eq!(one(&w, "drop", "x").await["n"], 2);
}

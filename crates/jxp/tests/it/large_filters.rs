//! Filters far larger than a database takes as written: a `$in`/`$nin` of 40,000 values on
//! every route that reads a filter answers 200 with the right documents, a filter of more
//! comparisons than the documented cap is a 400 that says so, and a NUL byte in search text or
//! a filter value is a 400. None of them is a 500.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestServer, World, assert_error, call};

/// A model open to everyone and opted in to bulk writes.
const BULK: &str = r#"
name = "Bulk"
[fields]
name = "String"
n = "Number"
note = "String"
[perms]
all = "crud"
[options]
advanced_queries = { bulkwrite = true }
"#;

/// 40,000 numbers that hold 1 and 3 and none of 2, 4 and 5.
fn big_set() -> Vec<Value> {
    let mut values: Vec<Value> = (10..40_008).map(Value::from).collect();
    values.extend([json!(1), json!(3)]);
    values
}

/// Documents with `n` from 1 to 5 in `model`, `field` (and `bar`, which `test` holds
/// unique) "d1" … "d5".
async fn five(s: &TestServer, model: &str, field: &str) {
    for n in 1..=5 {
        let name = format!("d{n}");
        s.create(model, json!({ field: name, "bar": name, "n": n }))
            .await;
    }
}

/// The `n` values of a list answer, sorted.
fn ns(body: &Value) -> Vec<i64> {
    let mut v: Vec<i64> = body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {body}"))
        .iter()
        .filter_map(|d| d["n"].as_i64())
        .collect();
    v.sort_unstable();
    v
}

#[tokio::test]
async fn a_huge_in_works_on_query_and_aggregate() {
    let s = TestServer::open().await;
    five(&s, "test", "foo").await;
    let (status, body) = s
        .post("/query/test", json!({"query": {"n": {"$in": big_set()}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ns(&body), [1, 3]);
    let (status, body) = s
        .post("/query/test", json!({"query": {"n": {"$nin": big_set()}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ns(&body), [2, 4, 5]);
    // Strings, and a set inside a wide `$or`.
    let names: Vec<String> = (0..40_000)
        .map(|i| format!("x{i}"))
        .chain(["d2".into()])
        .collect();
    let (status, body) = s
        .post(
            "/query/test",
            json!({"query": {"$or": [{"foo": {"$in": names}}, {"n": 5}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ns(&body), [2, 5]);
    let (status, body) = s
        .post(
            "/aggregate/test",
            json!([{"$match": {"n": {"$in": big_set()}}}, {"$count": "c"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!([{"c": 2}]));
}

#[tokio::test]
async fn large_sets_in_the_query_string_work_on_lists_and_counts() {
    let s = TestServer::open().await;
    five(&s, "test", "foo").await;
    // As many values as a URL may carry (about 64 KB).
    let list: Vec<String> = (10_000..19_000)
        .map(|i| i.to_string())
        .chain(["1".into(), "3".into()])
        .collect();
    let qs = format!("filter[n]=$in:{}", list.join(","));
    let (status, body) = s.get(&format!("/api/test?{qs}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ns(&body), [1, 3]);
    let (status, body) = s.get(&format!("/count/test?{qs}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 2);
    let qs = format!("filter[n]=$nin:{}", list.join(","));
    let (status, body) = s.get(&format!("/count/test?{qs}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 3);
}

#[tokio::test]
async fn a_huge_in_works_in_bulk_matches() {
    let w = World::start(&[("bulk", BULK)], &[], ["alice", "bob"]).await;
    five(&w.s, "bulk", "name").await;
    let (status, body) = call(
        &w.s,
        Method::POST,
        "/bulkwrite/bulk",
        &w.admin.basic(),
        Some(json!([
            {"updateMany": {"filter": {"n": {"$in": big_set()}}, "update": {"$set": {"note": "in"}}}},
            {"deleteMany": {"filter": {"n": {"$nin": big_set()}}}}
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["nMatched"], 2, "{body}");
    assert_eq!(body["data"]["nRemoved"], 3, "{body}");
    let (status, body) = call(&w.s, Method::GET, "/api/bulk", &w.admin.basic(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ns(&body), [1, 3]);
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["note"] == "in"),
        "{body}"
    );
}

#[tokio::test]
async fn too_many_comparisons_are_a_400_and_the_cap_itself_works() {
    let s = TestServer::open().await;
    five(&s, "test", "foo").await;
    // Exactly the cap: far deeper than SQLite nests a flat OR.
    let at_cap: Vec<Value> = (0..1000).map(|i| json!({"n": i})).collect();
    let (status, body) = s
        .post("/query/test", json!({"query": {"$or": at_cap}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ns(&body), [1, 2, 3, 4, 5]);
    let (status, body) = s
        .post(
            "/aggregate/test",
            json!([{"$match": {"$or": (0..1000).map(|i| json!({"n": i})).collect::<Vec<_>>()}}, {"$count": "c"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!([{"c": 5}]));
    let over: Vec<Value> = (0..5000).map(|i| json!({"n": i})).collect();
    let got = s
        .post("/query/test", json!({"query": {"$or": over.clone()}}))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "at most 1000 comparisons");
    let items: Vec<String> = (0..5000).map(|i| format!("t{i}")).collect();
    let got = s
        .post("/query/test", json!({"query": {"shmack": {"$all": items}}}))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "at most 1000 comparisons");
    // Repeated `filter[..]` keys count too.
    let qs: Vec<String> = (0..1001).map(|i| format!("filter[n]=$ne:{i}")).collect();
    let got = s.get(&format!("/count/test?{}", qs.join("&"))).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "at most 1000 comparisons");
}

#[tokio::test]
async fn nul_in_search_text_or_a_filter_value_is_a_400() {
    let s = TestServer::open().await;
    s.create("test", json!({"foo": "kubla", "fulltext": "kubla khan"}))
        .await;
    for path in [
        "/api/test?search=kub%00la",
        "/count/test?search=kub%00la",
        "/api/test?search[foo]=kub%00la",
        "/csv/test?search=kub%00la",
    ] {
        let got = s.get(path).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "NUL");
    }
    // PostgreSQL's text cannot hold a NUL: refused on both databases alike.
    let got = s
        .post("/query/test", json!({"query": {"foo": "kub\u{0}la"}}))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "NUL");
    let got = s
        .post(
            "/query/test",
            json!({"query": {"foo": {"$in": ["a", "kub\u{0}la"]}}}),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "NUL");
    let got = s.get("/api/test?filter[foo]=kub%00la").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "NUL");
    let (status, body) = s.get("/api/test?filter[foo]=kubla").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
}

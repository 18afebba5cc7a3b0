//! `QUERY_MEMORY_LIMIT`: a request that would multiply stored documents in memory (a
//! `$lookup` of everything with everything, a populate of one large document many times, a
//! bulk match over large documents) is refused with a 413 naming the limit, quickly and before
//! it builds them, while ordinary requests still work and the server answers afterwards.

use std::time::{Duration, Instant};

use jxp_core::{Identity, WriteOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error, call, setup_admin};

/// A model anyone may do anything with, aggregations and bulk writes included, whose
/// documents can link to each other.
const BLOB: &str = r#"
name = "Blob"
[fields]
foo = "String"
pad = "String"
links = ["ObjectId"]
link_ids = [{ type = "ObjectId", link = "Blob", map_to = "linked" }]
[perms]
all = "crud"
[options]
advanced_queries = { bulkwrite = true }
"#;

/// Writes `n` documents of about `size` bytes, all with `foo = "same"`, straight through the
/// app (much faster than HTTP for megabytes), and answers their ids.
async fn blobs(s: &TestServer, n: usize, size: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let doc = json!({"foo": "same", "pad": format!("{i:06}{}", "x".repeat(size))});
        let created = s
            .app()
            .create(
                &Identity::system(),
                "blob",
                doc.as_object().cloned().unwrap(),
                WriteOptions::default(),
            )
            .await
            .unwrap();
        ids.push(created["_id"].as_str().unwrap().to_owned());
    }
    ids
}

/// The resident set of this process in bytes, where `/proc` tells it.
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `updateMany` (an admin's operation) of every `foo = "same"` document to `"moved"`.
async fn move_all(s: &TestServer) -> (StatusCode, Value) {
    let admin = setup_admin(s).await;
    let ops =
        json!([{"updateMany": {"filter": {"foo": "same"}, "update": {"$set": {"foo": "moved"}}}}]);
    call(
        s,
        Method::POST,
        "/bulkwrite/blob",
        &admin.basic(),
        Some(ops),
    )
    .await
}

/// The 413 a query over the 1 MB budget gets.
fn assert_over_budget(got: &(StatusCode, Value)) {
    assert_error(
        got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "the query's working set is over the limit of 1 MB; narrow it",
    );
}

fn self_join() -> Value {
    json!([
        {"$lookup": {"from": "blob", "localField": "foo", "foreignField": "foo", "as": "s"}},
        {"$count": "c"}
    ])
}

#[tokio::test]
async fn a_lookup_of_everything_with_everything_is_refused_before_it_is_built() {
    let s = TestServer::start(&[("blob", BLOB)], &[]).await;
    // 300 documents of 20 KB that all join each other: 1.8 GB if built.
    blobs(&s, 300, 20_000).await;
    let before = rss();
    let started = Instant::now();
    let got = s.post("/aggregate/blob", self_join()).await;
    let took = started.elapsed();
    assert_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "the query's working set is over the limit of 64 MB; narrow it",
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    if let (Some(before), Some(after)) = (before, rss()) {
        // Generous: other tests share the process. Built, the join alone is 1.8 GB.
        let grown = after.saturating_sub(before);
        assert!(grown < 768 * 1024 * 1024, "RSS grew by {grown} bytes");
    }
    // The server still answers, and a narrowed join works.
    let (status, body) = s
        .post(
            "/aggregate/blob",
            json!([
                {"$limit": 3},
                {"$lookup": {"from": "blob", "localField": "foo", "foreignField": "foo", "as": "s"}},
                {"$project": {"n": {"$size": "$s"}}}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ns: Vec<&Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["n"])
        .collect();
    assert_eq!(ns, vec![&json!(300), &json!(300), &json!(300)], "{body}");
}

#[tokio::test]
async fn small_joins_populates_and_bulk_matches_work_within_a_small_budget() {
    let s = TestServer::start(&[("blob", BLOB)], &[("QUERY_MEMORY_LIMIT", "1mb")]).await;
    let ids = blobs(&s, 5, 1_000).await;
    let (status, body) = s.post("/aggregate/blob", self_join()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!([{"c": 5}]), "{body}");
    let id = s
        .create(
            "blob",
            json!({"foo": "other", "link_ids": [ids[0], ids[1]]}),
        )
        .await;
    let (status, body) = s.get(&format!("/api/blob/{id}?populate=linked")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["linked"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    let (status, body) = move_all(&s).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["nModified"], 5, "{body}");
}

#[tokio::test]
async fn populate_refuses_copies_over_the_budget() {
    let s = TestServer::start(&[("blob", BLOB)], &[("QUERY_MEMORY_LIMIT", "1mb")]).await;
    let big = blobs(&s, 1, 20_000).await.remove(0);
    // One 20 KB document linked 100 times: 2 MB of copies in one answer.
    let id = s
        .create(
            "blob",
            json!({"foo": "many", "link_ids": vec![big.clone(); 100]}),
        )
        .await;
    let got = s.get(&format!("/api/blob/{id}?populate=linked")).await;
    assert_over_budget(&got);
    let got = s.get("/api/blob?filter[foo]=many&populate=linked").await;
    assert_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "over the limit of 1 MB",
    );
    // Without populate, the same document is an ordinary answer.
    let (status, body) = s.get(&format!("/api/blob/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_bulk_match_over_the_budget_is_refused_and_changes_nothing() {
    let s = TestServer::start(&[("blob", BLOB)], &[("QUERY_MEMORY_LIMIT", "1mb")]).await;
    // 100 documents of 20 KB: one page of matches is 2 MB.
    blobs(&s, 100, 20_000).await;
    let (status, body) = move_all(&s).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let errors = body["data"]["writeErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["status"], 413, "{body}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 1 MB"),
        "{body}"
    );
    let (status, body) = s.get("/count/blob?filter[foo]=moved").await;
    assert_eq!(
        (status, &body["count"]),
        (StatusCode::OK, &json!(0)),
        "{body}"
    );
    // The same budget refuses the aggregate too, and the server still answers.
    let got = s.post("/aggregate/blob", self_join()).await;
    assert_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "over the limit of 1 MB",
    );
    let (status, body) = s.get("/count/blob?filter[foo]=same").await;
    assert_eq!(
        (status, &body["count"]),
        (StatusCode::OK, &json!(100)),
        "{body}"
    );
}

#[tokio::test]
async fn an_aggregate_whose_first_read_is_over_the_budget_is_refused() {
    let s = TestServer::start(&[("blob", BLOB)], &[("QUERY_MEMORY_LIMIT", "1mb")]).await;
    // 60 documents of 20 KB: the pipeline's read alone is over 1 MB, whatever follows it.
    blobs(&s, 60, 20_000).await;
    let got = s
        .post("/aggregate/blob", json!([{"$project": {"foo": 1}}]))
        .await;
    assert_over_budget(&got);
    // A read narrowed to what fits answers.
    let (status, body) = s
        .post(
            "/aggregate/blob",
            json!([{"$limit": 10}, {"$project": {"foo": 1}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(10), "{body}");
}

#[tokio::test]
async fn a_group_over_more_documents_than_the_budget_holds_answers_from_pages() {
    let s = TestServer::start(&[("blob", BLOB)], &[("QUERY_MEMORY_LIMIT", "1mb")]).await;
    // 60 documents of 20 KB: 1.2 MB read at once, over the budget; one group.
    blobs(&s, 60, 20_000).await;
    // `$last` is not grouped in SQL: the documents go through the group in pages.
    let grouped = json!([
        {"$match": {"foo": "same"}},
        {"$group": {"_id": "$foo", "n": {"$sum": 1}, "last": {"$last": "$foo"}}}
    ]);
    let (status, body) = s.post("/aggregate/blob", grouped).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!([{"_id": "same", "n": 60, "last": "same"}]),
        "{body}"
    );
    // A `$match` the database does not run is applied to each page before the group.
    let (status, body) = s
        .post(
            "/aggregate/blob",
            json!([
                {"$match": {"$expr": {"$gte": ["$pad", "000050"]}}},
                {"$group": {"_id": null, "n": {"$sum": 1}, "late": {"$min": {"$gte": ["$pad", "000055"]}}}}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!([{"_id": null, "n": 10, "late": false}]),
        "{body}"
    );
    // What the groups themselves keep is still charged: all the pads in one group is not
    // answered.
    let got = s
        .post(
            "/aggregate/blob",
            json!([{"$group": {"_id": null, "pads": {"$push": "$pad"}}}]),
        )
        .await;
    assert_over_budget(&got);
}

#[tokio::test]
async fn groups_the_database_counts_are_charged_and_refused_past_the_budget() {
    let s = TestServer::start(&[("blob", BLOB)], &[("QUERY_MEMORY_LIMIT", "1mb")]).await;
    // 60 documents of 20 KB, each `pad` a group key of its own: 1.2 MB of groups.
    blobs(&s, 60, 20_000).await;
    let by_pad = json!([{"$group": {"_id": "$pad", "n": {"$sum": 1}}}]);
    let got = s.post("/aggregate/blob", by_pad).await;
    assert_over_budget(&got);
    // The same documents in few groups answer: the documents themselves are never held.
    let (status, body) = s
        .post(
            "/aggregate/blob",
            json!([{"$group": {"_id": "$foo", "n": {"$sum": 1}}}, {"$count": "groups"}]),
        )
        .await;
    assert_eq!(
        (status, &body["data"]),
        (StatusCode::OK, &json!([{"groups": 1}])),
        "{body}"
    );
    // With the window cut before the groups are answered, the budget holds them.
    let (status, body) = s
        .post(
            "/aggregate/blob",
            json!([{"$group": {"_id": "$pad", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}, {"$limit": 2}, {"$project": {"n": 1}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2), "{body}");
}

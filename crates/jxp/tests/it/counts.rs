//! Counts kept between writes (`COUNT_CACHE_ENABLED`, on by default). Every count here is
//! asked twice, so the second answer is the kept one: across writes of every kind (create,
//! update, delete, bulk), `/count` (with or without a full-text search), a list's `count` and
//! a lone `$count` stay what the documents are, and callers who see different documents never share a count. With the
//! cache off the answers are the same.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Account, World, call_ok, create_as, delete_as, exec_sql, get, update_as};

/// Users create; owners read and write their own; admins see everything and bulk-write.
const BOX: &str = r#"
name = "Box"
[fields]
cat = { type = "String", index = true }
n = "Number"
title = { type = "String", index = "text" }
[perms]
admin = "crud"
owner = "crud"
user = "c"
[options]
advanced_queries = { bulkwrite = true }
"#;

/// `/count/box{query}` as `who`, asked twice: both answers must agree.
async fn count(w: &World, who: &Account, query: &str) -> u64 {
    let path = format!("/count/box{query}");
    let (status, first) = get(&w.s, &path, &who.basic()).await;
    assert_eq!(status, StatusCode::OK, "{path}: {first}");
    let (_, again) = get(&w.s, &path, &who.basic()).await;
    assert_eq!(first, again, "{path} asked again");
    first["count"].as_u64().unwrap()
}

/// The counts of `cat=a` for the admin, Alice and Bob, and of `cat=b` and everything for
/// the admin.
async fn counts(w: &World) -> [u64; 5] {
    [
        count(w, &w.admin, "?filter[cat]=a").await,
        count(w, &w.alice, "?filter[cat]=a").await,
        count(w, &w.bob, "?filter[cat]=a").await,
        count(w, &w.admin, "?filter[cat]=b").await,
        count(w, &w.admin, "").await,
    ]
}

async fn create(w: &World, who: &Account, cat: &str) -> String {
    create_as(&w.s, who, "box", json!({"cat": cat, "n": 1})).await
}

async fn counts_follow_writes(env: &[(&str, &str)]) {
    let w = World::start(&[("box", BOX)], env, ["alice", "bob"]).await;
    let mut alice = Vec::new();
    for _ in 0..3 {
        alice.push(create(&w, &w.alice, "a").await);
    }
    let bobs_a = create(&w, &w.bob, "a").await;
    create(&w, &w.bob, "a").await;
    create(&w, &w.bob, "b").await;
    assert_eq!(counts(&w).await, [5, 3, 2, 1, 6]);

    create(&w, &w.alice, "a").await;
    assert_eq!(counts(&w).await, [6, 4, 2, 1, 7], "after a create");

    update_as(&w.s, &w.admin, "box", &bobs_a, json!({"cat": "b"})).await;
    assert_eq!(counts(&w).await, [5, 4, 1, 2, 7], "after an update");

    delete_as(&w.s, &w.alice, "box", &alice[0], "").await;
    assert_eq!(counts(&w).await, [4, 3, 1, 2, 6], "after a delete");

    // A write that is refused changes nothing.
    let (status, _) = crate::harness::put(
        &w.s,
        &format!("/api/box/{}", alice[1]),
        &w.bob.basic(),
        json!({"cat": "b"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another owner's document is not found"
    );
    assert_eq!(counts(&w).await, [4, 3, 1, 2, 6], "after a refused write");

    call_ok(
        &w.s,
        Method::POST,
        "/bulkwrite/box",
        &w.admin.basic(),
        Some(json!([
            {"insertOne": {"document": {"cat": "a", "n": 2}}},
            {"insertOne": {"document": {"cat": "a", "n": 2}}},
            {"deleteMany": {"filter": {"cat": "b"}}}
        ])),
    )
    .await;
    assert_eq!(counts(&w).await, [6, 3, 1, 0, 6], "after a bulk write");

    // A list's count and a `$count` pushed into the database read the same counts.
    let (status, page) = get(&w.s, "/api/box?filter[cat]=a&page=1", &w.admin.basic()).await;
    assert_eq!(
        (status, &page["count"]),
        (StatusCode::OK, &json!(6)),
        "{page}"
    );
    create(&w, &w.alice, "a").await;
    let (_, page) = get(&w.s, "/api/box?filter[cat]=a&page=1", &w.alice.basic()).await;
    assert_eq!(page["count"], 4, "{page}");
    let pipeline = json!([{"$match": {"cat": "a"}}, {"$count": "n"}]);
    for _ in 0..2 {
        let counted = call_ok(
            &w.s,
            Method::POST,
            "/aggregate/box",
            &w.admin.basic(),
            Some(pipeline.clone()),
        )
        .await;
        assert_eq!(counted["data"], json!([{"n": 7}]));
    }
    assert_eq!(counts(&w).await, [7, 4, 1, 0, 7], "after the last create");

    // Counts of a full-text search, and a search's list count, follow writes too.
    let kubla = "?search=kubla";
    assert_eq!(count(&w, &w.admin, kubla).await, 0);
    let poem = create_as(
        &w.s,
        &w.alice,
        "box",
        json!({"cat": "a", "title": "In Xanadu did Kubla Khan"}),
    )
    .await;
    assert_eq!(count(&w, &w.admin, kubla).await, 1);
    assert_eq!(count(&w, &w.bob, kubla).await, 0, "Alice's document");
    update_as(
        &w.s,
        &w.admin,
        "box",
        &poem,
        json!({"title": "A stately pleasure-dome"}),
    )
    .await;
    assert_eq!(count(&w, &w.admin, kubla).await, 0, "after an update");
    let (_, page) = get(&w.s, "/api/box?search=stately&page=1", &w.admin.basic()).await;
    assert_eq!(page["count"], 1, "{page}");
}

#[tokio::test]
async fn kept_counts_follow_every_kind_of_write_and_each_callers_scope() {
    counts_follow_writes(&[]).await;
}

#[tokio::test]
async fn without_the_count_cache_the_counts_are_the_same() {
    counts_follow_writes(&[("COUNT_CACHE_ENABLED", "false")]).await;
}

/// Counts asked while writers run: once every write has been answered, every count agrees
/// with the documents, however the counts and the writes interleaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_asked_during_concurrent_writes_end_true() {
    let w = World::start(&[("box", BOX)], &[], ["alice", "bob"]).await;
    let admin = w.admin.authorization();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (s, auth) = (w.s.client.clone(), admin.clone());
            let base = w.s.base.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    let cat = if (t + i) % 2 == 0 { "a" } else { "b" };
                    let resp = s
                        .post(format!("{base}/api/box"))
                        .header("authorization", &auth)
                        .json(&json!({"cat": cat, "n": i}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (s, auth) = (w.s.client.clone(), admin.clone());
            let base = w.s.base.clone();
            tokio::spawn(async move {
                let mut last = 0;
                for _ in 0..50 {
                    let resp = s
                        .get(format!("{base}/count/box"))
                        .header("authorization", &auth)
                        .send()
                        .await
                        .unwrap();
                    let body: Value = resp.json().await.unwrap();
                    let n = body["count"].as_u64().unwrap();
                    // Writes only add: a count never goes back.
                    assert!(n >= last, "{n} after {last}");
                    last = n;
                }
            })
        })
        .collect();
    for task in writers.into_iter().chain(readers) {
        task.await.unwrap();
    }
    assert_eq!(
        [
            count(&w, &w.admin, "").await,
            count(&w, &w.admin, "?filter[cat]=a").await,
            count(&w, &w.admin, "?filter[cat]=b").await
        ],
        [100, 50, 50]
    );
}

/// A change made in the database past jxp announces nothing, so kept counts do not see it
/// until an admin clears the caches: `/cache/clear` forgets them too.
#[tokio::test]
async fn cache_clear_forgets_kept_counts() {
    let w = World::start(&[("box", BOX)], &[], ["alice", "bob"]).await;
    for _ in 0..3 {
        create(&w, &w.admin, "a").await;
    }
    assert_eq!(count(&w, &w.admin, "?filter[cat]=a").await, 3);
    exec_sql(
        &w.s.database_url,
        "DELETE FROM m_box WHERE rid = (SELECT min(rid) FROM m_box)",
    )
    .await;
    assert_eq!(count(&w, &w.admin, "?filter[cat]=a").await, 3, "kept");
    call_ok(&w.s, Method::GET, "/cache/clear", &w.admin.basic(), None).await;
    assert_eq!(count(&w, &w.admin, "?filter[cat]=a").await, 2, "read again");
}

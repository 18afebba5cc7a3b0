//! `POST /aggregate/:model`: every stage over HTTP, both body forms and the wrappers with
//! private fields kept out (`stages`); errors naming the stage, the reader's scope, `$lookup`
//! permissions, the `advanced_queries` opt-out and the response-size limit (`refusals`). Also
//! the models and world of owners, tags and closed documents the `/query`, `/csv`, `/explain`
//! and `/bulkwrite` tests share.

mod in_database;
mod refusals;
mod stages;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, World};

/// A model only its owners (and admins) read; with a private field and a link to `tag`.
pub const OWNED: &str = r#"
name = "Owned"
[fields]
title = "String"
n = "Number"
tag_id = { type = "ObjectId", link = "Tag" }
secret = { type = "String", private = true }
[perms]
admin = "crud"
owner = "crud"
user = "c"
"#;

/// A model anyone reads, with a private field.
pub const TAG: &str = r#"
name = "Tag"
[fields]
label = "String"
hidden = { type = "String", private = true }
[perms]
all = "r"
admin = "crud"
"#;

/// A model users may write but only admins read.
pub const CLOSED: &str = r#"
name = "Closed"
[fields]
code = "String"
[perms]
admin = "crud"
user = "c"
"#;

/// A model that opts out of `/query` and `/aggregate`.
pub const NOADV: &str = r#"
name = "Noadv"
[fields]
foo = "String"
[perms]
all = "crud"
[options]
advanced_queries = { query = false, aggregate = false }
"#;

/// Starts a server on `models` (plus the open `test` and `link`) with an admin, Alice and Bob.
pub async fn world(models: &[(&str, &str)]) -> World {
    let mut all = vec![
        ("test", crate::harness::OPEN_TEST),
        ("link", crate::harness::OPEN_LINK),
    ];
    all.extend_from_slice(models);
    World::start(&all, &[], ["alice", "bob"]).await
}

/// `POST /aggregate/{model}` anonymously with `body`, expecting 200; answers `data`.
pub(crate) async fn agg(s: &TestServer, model: &str, body: Value) -> Value {
    let (status, resp) = s.post(&format!("/aggregate/{model}"), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}: {resp}");
    assert!(resp.get("data").is_some_and(Value::is_array), "{resp}");
    resp["data"].clone()
}

/// `foo` of each document, in order.
pub(crate) fn foos(data: &Value) -> Vec<String> {
    data.as_array()
        .unwrap()
        .iter()
        .map(|d| d["foo"].as_str().unwrap_or("?").to_owned())
        .collect()
}

pub(crate) struct Fixture {
    pub(crate) s: TestServer,
    pub(crate) link1: String,
    pub(crate) apple: String,
    pub(crate) banana: String,
}

/// Three live `test` documents (and a deleted one), two links.
pub(crate) async fn fixture() -> Fixture {
    let s = TestServer::open().await;
    let link1 = s.create("link", json!({"name": "L1"})).await;
    let link2 = s.create("link", json!({"name": "L2"})).await;
    let apple = s
        .create(
            "test",
            json!({"foo": "apple", "bar": "b1", "n": 3, "status": "published", "shmack": ["red", "sweet"],
                   "address": {"street": "A"}, "when": "2024-01-05T10:00:00.000Z", "ref_id": link1,
                   "secret": "s1", "password": "pw1"}),
        )
        .await;
    let banana = s
        .create(
            "test",
            json!({"foo": "banana", "bar": "b2", "n": 1, "status": "published", "shmack": ["yellow", "sweet"],
                   "when": "2024-02-01", "ref_id": link2, "secret": "s2"}),
        )
        .await;
    s.create(
        "test",
        json!({"foo": "carrot", "bar": "b3", "n": 2, "status": "draft", "shmack": [], "when": "2024-02-10"}),
    )
    .await;
    let gone = s
        .create("test", json!({"foo": "deleted", "bar": "b4", "n": 100}))
        .await;
    let (status, body) = s.delete(&format!("/api/test/{gone}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Fixture {
        s,
        link1,
        apple,
        banana,
    }
}

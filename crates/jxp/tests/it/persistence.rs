//! Data outlives the process, models can evolve over existing data, and model files or
//! migrations that cannot work stop start-up with a message that says where and why.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestServer;

const THING: &str = r#"
name = "Thing"
[fields]
name = "String"
[perms]
all = "crud"
"#;

/// `THING` with a new field that has a default and an index.
const THING_WITH_COLOUR: &str = r#"
name = "Thing"
[fields]
name = "String"
colour = { type = "String", default = "blue", index = true }
[perms]
all = "crud"
"#;

/// `THING` with `name` made unique.
const THING_UNIQUE_NAME: &str = r#"
name = "Thing"
[fields]
name = { type = "String", unique = true }
[perms]
all = "crud"
"#;

fn names(body: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {body}"))
        .iter()
        .map(|d| d["name"].as_str().unwrap_or_default())
        .collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn data_survives_a_restart_and_writes_continue() {
    let mut s = TestServer::open().await;
    let link = s.create("link", json!({"name": "L"})).await;
    let id = s
        .create(
            "test",
            json!({"foo": "kept", "n": 4, "ref_id": link, "shmack": ["a"]}),
        )
        .await;
    s.put(&format!("/api/test/{id}"), json!({"foo": "kept2"}))
        .await;
    let gone = s.create("test", json!({"bar": "other"})).await;
    s.delete(&format!("/api/test/{gone}")).await;
    let (_, before) = s.get(&format!("/api/test/{id}")).await;

    s.restart().await;

    let (status, after) = s.get(&format!("/api/test/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after, before, "the document reads back the same");
    assert_eq!(after["data"]["__v"], 1);
    assert_eq!(
        s.get(&format!("/api/test/{gone}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.total("test").await,
        2,
        "the soft-deleted one is still kept"
    );

    let (status, updated) = s.put(&format!("/api/test/{id}"), json!({"n": 5})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        updated["data"]["__v"], 2,
        "versions continue after a restart"
    );
    assert_eq!(updated["data"]["foo"], "kept2");
    assert_eq!(updated["data"]["createdAt"], before["data"]["createdAt"]);
    s.create("test", json!({"bar": "new"})).await;
    assert_eq!(s.total("test").await, 3);

    // Unique indexes and references still hold after a restart.
    let (status, _) = s.post("/api/test", json!({"bar": "new"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = s.delete(&format!("/api/link/{link}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_new_field_with_a_default_applies_to_existing_documents() {
    let mut s = TestServer::start(&[("thing", THING)], &[]).await;
    let old = s.create("thing", json!({"name": "old1"})).await;
    s.create("thing", json!({"name": "old2"})).await;

    s.write_model("thing", THING_WITH_COLOUR);
    s.restart().await;

    let (status, got) = s.get(&format!("/api/thing/{old}")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["data"]["colour"], "blue");
    s.create("thing", json!({"name": "new", "colour": "red"}))
        .await;

    let (status, blue) = s.get("/api/thing?filter[colour]=blue").await;
    assert_eq!(status, StatusCode::OK, "{blue}");
    assert_eq!(names(&blue), ["old1", "old2"]);
    let (_, red) = s.get("/api/thing?filter[colour]=red").await;
    assert_eq!(names(&red), ["new"]);
    let (_, sorted) = s.get("/api/thing?sort=-colour&limit=1").await;
    assert_eq!(names(&sorted), ["new"]);
}

#[tokio::test]
async fn a_unique_field_over_clashing_data_stops_start_up() {
    let mut s = TestServer::start(&[("thing", THING)], &[]).await;
    s.create("thing", json!({"name": "same"})).await;
    s.create("thing", json!({"name": "same"})).await;

    s.write_model("thing", THING_UNIQUE_NAME);
    s.stop().await;
    let err = s
        .boot()
        .await
        .expect_err("a unique index over duplicates cannot be made");
    let message = format!("{err:#}");
    assert!(message.contains("name"), "{message}");
    assert!(message.contains("thing"), "{message}");

    // Nothing of the failed migration stays: the old model starts again on the same data.
    s.write_model("thing", THING);
    s.boot().await.unwrap();
    assert_eq!(s.total("thing").await, 2);
}

#[tokio::test]
async fn a_model_file_with_a_syntax_error_stops_start_up_naming_file_and_line() {
    let mut s = TestServer::open().await;
    s.write_model("broken", "name = \"Broken\"\n[fields]\nfoo = \n");
    s.stop().await;
    let err = s
        .boot()
        .await
        .expect_err("a broken model file must stop start-up");
    let message = format!("{err:#}");
    assert!(message.contains("broken.toml"), "{message}");
    assert!(
        message.contains(":3") || message.contains("line 3"),
        "{message}"
    );
}

#[tokio::test]
async fn a_link_to_an_unknown_model_stops_start_up() {
    let mut s = TestServer::open().await;
    s.write_model(
        "dangling",
        "name = \"Dangling\"\n[fields]\nname = \"String\"\nother_id = { type = \"ObjectId\", link = \"Nowhere\" }\n",
    );
    s.stop().await;
    let err = s
        .boot()
        .await
        .expect_err("an unknown link target must stop start-up");
    let message = format!("{err:#}");
    assert!(message.contains("dangling.toml"), "{message}");
    assert!(message.contains("Nowhere"), "{message}");
}

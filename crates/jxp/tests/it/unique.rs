//! `unique = true` fields: a clashing create or update is a 409 naming the field, and writes
//! nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{TestServer, assert_error};

#[tokio::test]
async fn a_second_create_with_the_same_value_is_409_and_writes_nothing() {
    let s = TestServer::open().await;
    s.create("test", json!({"foo": "first", "bar": "taken"}))
        .await;
    let got = s
        .post("/api/test", json!({"foo": "second", "bar": "taken"}))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "bar");
    assert_eq!(s.total("test").await, 1, "nothing may be written");
    let (_, list) = s.get("/api/test?filter[foo]=second").await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn the_default_value_counts_too() {
    let s = TestServer::open().await;
    s.create("test", json!({"foo": "first"})).await;
    let got = s.post("/api/test", json!({"foo": "second"})).await;
    assert_error(&got, StatusCode::CONFLICT, "bar");
    assert_eq!(s.total("test").await, 1);
}

#[tokio::test]
async fn an_update_to_another_documents_value_is_409_and_changes_nothing() {
    let s = TestServer::open().await;
    s.create("test", json!({"bar": "one"})).await;
    let two = s
        .create("test", json!({"bar": "two", "foo": "before"}))
        .await;
    let got = s
        .put(
            &format!("/api/test/{two}"),
            json!({"bar": "one", "foo": "after"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "bar");
    let (_, doc) = s.get(&format!("/api/test/{two}")).await;
    assert_eq!(doc["data"]["bar"], "two");
    assert_eq!(
        doc["data"]["foo"], "before",
        "no part of the update is applied"
    );
    assert_eq!(doc["data"]["__v"], 0);
}

#[tokio::test]
async fn an_update_keeping_its_own_value_is_no_clash() {
    let s = TestServer::open().await;
    let id = s.create("test", json!({"bar": "mine"})).await;
    let (status, body) = s
        .put(
            &format!("/api/test/{id}"),
            json!({"bar": "mine", "foo": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["foo"], "x");
    let (status, body) = s
        .put(&format!("/api/test/{id}"), json!({"bar": "freed"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The old value is free again.
    s.create("test", json!({"bar": "mine"})).await;
}

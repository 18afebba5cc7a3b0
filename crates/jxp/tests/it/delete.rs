//! Deleting: soft by default (hidden unless `showDeleted`, undone by PUT `_deleted: false`),
//! for good with `_permaDelete`, refused while live documents refer to it unless `_cascade`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error};

/// A model whose documents are removed for good on a plain DELETE.
const HARD: &str = r#"
name = "Hard"
[fields]
name = "String"
[perms]
all = "crud"
[options]
soft_delete = false
"#;

/// The `foo` values of a list answer, in order.
fn foos(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {list}"))
        .iter()
        .map(|d| d["foo"].as_str().unwrap_or_default())
        .collect()
}

async fn count(s: &TestServer, query: &str) -> u64 {
    let (status, body) = s.get(&format!("/count/test{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["count"].as_u64().unwrap()
}

#[tokio::test]
async fn a_soft_deleted_document_is_hidden_unless_asked_for() {
    let s = TestServer::open().await;
    let gone = s.create("test", json!({"foo": "gone", "bar": "1"})).await;
    s.create("test", json!({"foo": "kept", "bar": "2"})).await;

    let (status, body) = s.delete(&format!("/api/test/{gone}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let got = s.get(&format!("/api/test/{gone}")).await;
    assert_eq!(
        got,
        (
            StatusCode::NOT_FOUND,
            json!({"code": "NotFound", "message": format!("Document {gone} is deleted on Test")})
        ),
        "JXP's status and words for a deleted document"
    );
    let (_, list) = s.get("/api/test").await;
    assert_eq!(foos(&list), ["kept"]);
    assert_eq!(count(&s, "").await, 1);
    assert_eq!(s.total("test").await, 2, "a soft delete keeps the document");

    let (status, list) = s.get("/api/test?showDeleted=true&sort=foo").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(foos(&list), ["gone", "kept"]);
    assert_eq!(list["data"][0]["_deleted"], true);
    let (status, one) = s.get(&format!("/api/test/{gone}?showDeleted=true")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["data"]["_deleted"], true);
    assert_eq!(one["data"]["foo"], "gone");
}

#[tokio::test]
async fn put_deleted_false_undeletes() {
    let s = TestServer::open().await;
    let id = s.create("test", json!({"foo": "back"})).await;
    s.delete(&format!("/api/test/{id}")).await;

    let (status, body) = s
        .put(&format!("/api/test/{id}"), json!({"_deleted": false}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["_deleted"], false);

    let (status, got) = s.get(&format!("/api/test/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["data"]["_deleted"], false);
    assert_eq!(got["data"]["foo"], "back");
    assert_eq!(count(&s, "").await, 1);
}

#[tokio::test]
async fn a_put_on_a_deleted_document_without_undelete_is_404() {
    let s = TestServer::open().await;
    let id = s.create("test", json!({"foo": "before"})).await;
    s.delete(&format!("/api/test/{id}")).await;

    let got = s
        .put(&format!("/api/test/{id}"), json!({"foo": "after"}))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "");
    let (_, one) = s.get(&format!("/api/test/{id}?showDeleted=true")).await;
    assert_eq!(one["data"]["foo"], "before", "nothing was written");
    assert_eq!(one["data"]["_deleted"], true);
}

#[tokio::test]
async fn deleting_a_deleted_document_is_404() {
    let s = TestServer::open().await;
    let id = s.create("test", json!({})).await;
    let (status, _) = s.delete(&format!("/api/test/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let got = s.delete(&format!("/api/test/{id}")).await;
    assert_error(&got, StatusCode::NOT_FOUND, "");
}

#[tokio::test]
async fn perma_delete_removes_for_good() {
    let s = TestServer::open().await;
    let id = s.create("test", json!({"foo": "x"})).await;
    let (status, body) = s.delete(&format!("/api/test/{id}?_permaDelete=1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"status": "ok", "message": format!("test/{id} deleted")})
    );

    let got = s.get(&format!("/api/test/{id}?showDeleted=true")).await;
    assert_error(&got, StatusCode::NOT_FOUND, "");
    assert_eq!(s.total("test").await, 0);
}

#[tokio::test]
async fn a_soft_deleted_document_can_be_perma_deleted_later() {
    let s = TestServer::open().await;
    let id = s.create("test", json!({})).await;
    s.delete(&format!("/api/test/{id}")).await;
    let (status, body) = s.delete(&format!("/api/test/{id}?_permaDelete=1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.total("test").await, 0);
}

#[tokio::test]
async fn a_referenced_document_is_not_deleted_without_cascade() {
    let s = TestServer::open().await;
    let link = s.create("link", json!({"name": "L"})).await;
    let referrer = s.create("test", json!({"ref_id": link})).await;

    for query in ["", "?_permaDelete=1"] {
        let got = s.delete(&format!("/api/link/{link}{query}")).await;
        // JXP's status and words, which its clients compare against.
        assert_eq!(
            got,
            (
                StatusCode::CONFLICT,
                json!({"code": "Conflict", "message": "Parent link item exists in test/ref_id"})
            ),
            "{query}"
        );
        let (status, one) = s.get(&format!("/api/link/{link}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{query}: the link is still there: {one}"
        );
        assert_eq!(one["data"]["_deleted"], false);
        let (status, _) = s.get(&format!("/api/test/{referrer}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: the referrer is untouched");
    }
}

#[tokio::test]
async fn a_deleted_referrer_does_not_block_a_delete() {
    let s = TestServer::open().await;
    let link = s.create("link", json!({"name": "L"})).await;
    let referrer = s.create("test", json!({"ref_id": link})).await;
    s.delete(&format!("/api/test/{referrer}")).await;
    let (status, body) = s.delete(&format!("/api/link/{link}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn cascade_soft_deletes_the_document_and_its_referrers() {
    let s = TestServer::open().await;
    let link = s.create("link", json!({"name": "L"})).await;
    let r1 = s.create("test", json!({"ref_id": link, "bar": "1"})).await;
    let r2 = s.create("test", json!({"ref_id": link, "bar": "2"})).await;
    let bystander = s.create("test", json!({"bar": "3"})).await;

    let (status, body) = s.delete(&format!("/api/link/{link}?_cascade=1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for path in [
        format!("/api/link/{link}"),
        format!("/api/test/{r1}"),
        format!("/api/test/{r2}"),
    ] {
        assert_error(&s.get(&path).await, StatusCode::NOT_FOUND, "");
        let (status, one) = s.get(&format!("{path}?showDeleted=true")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path} is soft-deleted, not removed: {one}"
        );
        assert_eq!(one["data"]["_deleted"], true);
    }
    let (status, _) = s.get(&format!("/api/test/{bystander}")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a document that did not refer stays"
    );
    assert_eq!(s.total("test").await, 3);
    assert_eq!(s.total("link").await, 1);
}

#[tokio::test]
async fn cascade_with_perma_delete_removes_all_for_good() {
    let s = TestServer::open().await;
    let link = s.create("link", json!({"name": "L"})).await;
    let referrer = s.create("test", json!({"ref_id": link, "bar": "1"})).await;
    s.create("test", json!({"bar": "2"})).await;

    let (status, body) = s
        .delete(&format!("/api/link/{link}?_cascade=1&_permaDelete=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for path in [format!("/api/link/{link}"), format!("/api/test/{referrer}")] {
        assert_error(
            &s.get(&format!("{path}?showDeleted=true")).await,
            StatusCode::NOT_FOUND,
            "",
        );
    }
    assert_eq!(s.total("link").await, 0);
    assert_eq!(s.total("test").await, 1, "only the referrer went");
}

#[tokio::test]
async fn a_model_without_soft_delete_deletes_for_good() {
    let s = TestServer::start(&[("hard", HARD)], &[]).await;
    let id = s.create("hard", json!({"name": "h"})).await;
    let (status, body) = s.delete(&format!("/api/hard/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_error(
        &s.get(&format!("/api/hard/{id}?showDeleted=true")).await,
        StatusCode::NOT_FOUND,
        "",
    );
    assert_eq!(s.total("hard").await, 0);
}

#[tokio::test]
async fn deleting_an_unknown_id_is_404() {
    let s = TestServer::open().await;
    let got = s.delete("/api/test/5eb7cf838c9fba641e0e9dcb").await;
    assert_error(&got, StatusCode::NOT_FOUND, "");
}

/// Models that refer to `link` from an array, and from inside a nested object.
const REFERRERS: &str = r#"
name = "Bundle"
[fields]
link_ids = [{ type = "ObjectId", link = "Link" }]
meta = { link_id = { type = "ObjectId", link = "Link" } }
[perms]
all = "crud"
"#;

/// Builds a referrer's body from the link it refers to and an unrelated link.
type ReferrerBody = fn(&str, &str) -> Value;

#[tokio::test]
async fn references_from_arrays_and_nested_objects_block_a_delete_too() {
    let s = TestServer::start(
        &[("link", crate::harness::OPEN_LINK), ("bundle", REFERRERS)],
        &[],
    )
    .await;
    let other = s.create("link", json!({"name": "other"})).await;
    let shapes: [(&str, ReferrerBody); 2] = [
        ("array", |link, other| json!({"link_ids": [other, link]})),
        ("nested", |link, _| json!({"meta": {"link_id": link}})),
    ];
    for (shape, referrer) in shapes {
        let link = s.create("link", json!({"name": shape})).await;
        let bundle = s.create("bundle", referrer(&link, &other)).await;

        let got = s.delete(&format!("/api/link/{link}")).await;
        assert_error(
            &got,
            StatusCode::CONFLICT,
            "Parent link item exists in bundle/",
        );
        assert_eq!(
            s.get(&format!("/api/link/{link}")).await.0,
            StatusCode::OK,
            "{shape}"
        );

        let (status, body) = s.delete(&format!("/api/link/{link}?_cascade=1")).await;
        assert_eq!(status, StatusCode::OK, "{shape}: {body}");
        assert_eq!(
            s.get(&format!("/api/bundle/{bundle}")).await.0,
            StatusCode::NOT_FOUND,
            "{shape}"
        );
    }
    assert_eq!(
        s.get(&format!("/api/link/{other}")).await.0,
        StatusCode::OK,
        "an unrelated link stays"
    );
}

/// Users read everyone's documents and delete only their own.
const OWN_DELETE: &str = r#"
name = "Note"
[fields]
text = "String"
[perms]
admin = "crud"
owner = "crud"
user = "cr"
"#;

/// Owners read only their own documents.
const OWN_READ: &str = r#"
name = "Diary"
[fields]
text = "String"
[perms]
admin = "crud"
owner = "crud"
user = "c"
"#;

#[tokio::test]
async fn only_a_reader_who_could_see_a_document_learns_it_is_deleted() {
    use crate::harness::{World, create_as, delete, get};
    let w = World::start(
        &[("note", OWN_DELETE), ("diary", OWN_READ)],
        &[],
        ["Alice", "Bob"],
    )
    .await;
    for (model, name) in [("note", "Note"), ("diary", "Diary")] {
        let id = create_as(&w.s, &w.alice, model, json!({"text": "x"})).await;
        let path = format!("/api/{model}/{id}");
        let (status, body) = delete(&w.s, &path, &w.alice.basic()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            get(&w.s, &path, &w.alice.basic()).await,
            (
                StatusCode::NOT_FOUND,
                json!({"code": "NotFound", "message": format!("Document {id} is deleted on {name}")})
            )
        );
        // Bob may read Alice's notes, so he is told too; her diary stays as absent to him
        // deleted as it was live.
        let expected = if model == "note" {
            format!("Document {id} is deleted on {name}")
        } else {
            format!("{model}/{id} not found")
        };
        assert_eq!(
            get(&w.s, &path, &w.bob.basic()).await,
            (
                StatusCode::NOT_FOUND,
                json!({"code": "NotFound", "message": expected})
            )
        );
    }
}

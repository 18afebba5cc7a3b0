//! The sample models in the repository's `models/`, which `jxp init` writes and the README's
//! first examples use: a server starts on them, those examples answer as the README shows, and
//! the options the sample declares do what its comments say.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Auth, TestServer, assert_error, delete, get, post, setup_admin, start};

const SAMPLE_TEST: &str = include_str!("../../../../models/test.toml");
const SAMPLE_LINK: &str = include_str!("../../../../models/link.toml");

async fn samples() -> TestServer {
    start(&[("test", SAMPLE_TEST), ("link", SAMPLE_LINK)], &[]).await
}

/// Creates a `test` document as `auth`, answering the stored document as the API returns it.
async fn create(s: &TestServer, auth: &Auth, body: Value) -> Value {
    let (status, reply) = post(s, "/api/test", auth, body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply["data"].clone()
}

#[tokio::test]
async fn the_readme_first_examples_work_on_the_samples() {
    let s = samples().await;
    assert_eq!(
        s.get("/healthz").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        s.get("/api/test?limit=10").await,
        (StatusCode::OK, json!({"data": [], "limit": 10, "page": 1}))
    );
    let admin = setup_admin(&s).await;
    let (status, login) = post(&s, "/login", &Auth::None, admin.creds()).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let token = Auth::bearer(login["token"].as_str().unwrap());

    let doc = create(&s, &token, json!({"foo": "hello", "n": "5"})).await;
    assert_eq!(doc["foo"], "hello");
    assert_eq!(doc["n"], 5, "a Number field casts the string");
    assert_eq!(
        (&doc["status"], &doc["published"]),
        (&json!("draft"), &json!(false))
    );
    let (status, list) = s.get("/api/test").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn the_sample_field_options_apply() {
    let s = samples().await;
    let admin = setup_admin(&s).await.basic();
    let doc = create(
        &s,
        &admin,
        json!({
            "foo": "options",
            "email": "  Ann@Example.COM ",
            "code": "ab",
            "rating": 3,
            "published": "true",
            "note": "kept back",
        }),
    )
    .await;
    assert_eq!(doc["email"], "ann@example.com", "trimmed and lower-cased");
    assert_eq!(doc["code"], "AB", "upper-cased");
    assert_eq!(doc["published"], true);
    assert!(
        doc.get("note").is_none(),
        "a private field is not returned: {doc}"
    );
    let id = doc["_id"].as_str().unwrap();
    let (status, read) = get(&s, &format!("/api/test/{id}"), &admin).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert!(read["data"].get("note").is_none(), "nor read back: {read}");

    for (body, field) in [
        (json!({"n": 1}), "foo"),
        (json!({"foo": "x", "email": "no at sign"}), "email"),
        (json!({"foo": "x", "code": "a"}), "code"),
        (json!({"foo": "x", "code": "toolongcode"}), "code"),
        (json!({"foo": "x", "rating": 6}), "rating"),
        (json!({"foo": "x", "n": -1}), "n"),
        (json!({"foo": "x", "status": "archived"}), "status"),
    ] {
        let got = post(&s, "/api/test", &admin, body.clone()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, field);
    }
}

#[tokio::test]
async fn a_sample_document_is_soft_deleted_and_its_link_populated() {
    let s = samples().await;
    let admin = setup_admin(&s).await.basic();
    let (status, link) = post(&s, "/api/link", &admin, json!({"name": "  first  "})).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert_eq!(link["data"]["name"], "first", "the link's name is trimmed");
    let link_id = link["data"]["_id"].as_str().unwrap();
    let doc = create(&s, &admin, json!({"foo": "linked", "link_id": link_id})).await;
    let id = doc["_id"].as_str().unwrap();

    let (status, read) = s.get(&format!("/api/test/{id}?populate=link_id")).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["data"]["link"]["name"], "first", "{read}");

    let (status, deleted) = delete(&s, &format!("/api/test/{id}"), &admin).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(
        s.get(&format!("/api/test/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, kept) = s.get(&format!("/api/test/{id}?showDeleted=true")).await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(kept["data"]["_deleted"], true);
}

//! `/healthz`, model reflection (`/model`, `/model/:model`), and which models an anonymous
//! caller may use at all.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error};

/// A model without `[perms]`: nobody but the system may use it.
const CLOSED: &str = r#"
name = "Closed"
[fields]
name = "String"
"#;

const CLOSED_OPENED: &str = r#"
name = "Closed"
[fields]
name = "String"
[perms]
all = "crud"
"#;

const READ_ONLY: &str = r#"
name = "Notice"
[fields]
text = "String"
[perms]
all = "r"
"#;

const READ_WRITE: &str = r#"
name = "Notice"
[fields]
text = "String"
[perms]
all = "crud"
"#;

#[tokio::test]
async fn healthz_answers_ok() {
    let s = TestServer::open().await;
    let (status, body) = s.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn the_model_list_shows_public_models_only() {
    let s = TestServer::open().await;
    let (status, body) = s.get("/model").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed: Vec<&str> = body
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|m| m["model"].as_str().or(m.as_str()).unwrap_or_default())
        .collect();
    for public in ["test", "link"] {
        assert!(listed.contains(&public), "{public} missing from {listed:?}");
    }
    for internal in ["apikey", "token", "refreshtoken", "usergroups"] {
        assert!(!listed.contains(&internal), "{internal} listed: {listed:?}");
    }
}

#[tokio::test]
async fn one_model_shows_its_fields_types_and_perms() {
    let s = TestServer::open().await;
    let (status, body) = s.get("/model/test").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fields = &body["fields"];
    let types: &[(&str, &str)] = &[
        ("foo", "String"),
        ("bar", "String"),
        ("n", "Number"),
        ("flag", "Boolean"),
        ("when", "Date"),
        ("ref_id", "ObjectId"),
        ("yack", "Mixed"),
    ];
    for (field, ty) in types {
        assert_eq!(fields[*field]["type"], *ty, "{field}: {}", fields[*field]);
    }
    assert_eq!(fields["bar"]["unique"], true);
    assert_eq!(fields["bar"]["default"], "Some Default");
    assert_eq!(fields["n"]["min"], 0);
    assert_eq!(fields["ref_id"]["link"], "Link");
    assert_eq!(fields["status"]["enum"], json!(["draft", "published"]));
    assert!(
        fields["address"]["fields"]["city"].is_object(),
        "{}",
        fields["address"]
    );
    assert_eq!(body["perms"], json!({"all": "crud"}));
}

#[tokio::test]
async fn an_unknown_model_has_no_definition() {
    let s = TestServer::open().await;
    assert_error(&s.get("/model/nope").await, StatusCode::NOT_FOUND, "nope");
    assert_error(&s.get("/model/apikey").await, StatusCode::NOT_FOUND, "");
}

#[tokio::test]
async fn a_model_without_perms_is_not_served() {
    let mut s = TestServer::start(&[("closed", CLOSED)], &[]).await;
    assert_error(&s.get("/api/closed").await, StatusCode::FORBIDDEN, "");
    assert_error(&s.get("/count/closed").await, StatusCode::FORBIDDEN, "");
    assert_error(
        &s.post("/api/closed", json!({"name": "sneaky"})).await,
        StatusCode::FORBIDDEN,
        "",
    );
    assert_error(
        &s.get("/api/closed/5eb7cf838c9fba641e0e9dcb").await,
        StatusCode::FORBIDDEN,
        "",
    );

    // Opening the model shows that the refused create wrote nothing.
    s.write_model("closed", CLOSED_OPENED);
    s.restart().await;
    assert_eq!(s.total("closed").await, 0);
}

#[tokio::test]
async fn a_read_only_model_refuses_anonymous_writes() {
    let mut s = TestServer::start(&[("notice", READ_WRITE)], &[]).await;
    let id = s.create("notice", json!({"text": "original"})).await;
    s.write_model("notice", READ_ONLY);
    s.restart().await;

    let path = format!("/api/notice/{id}");
    let refused: Vec<(StatusCode, Value)> = vec![
        s.post("/api/notice", json!({"text": "new"})).await,
        s.put(&path, json!({"text": "changed"})).await,
        s.post(&format!("/update/notice/{id}"), json!({"text": "changed"}))
            .await,
        s.delete(&path).await,
        s.delete(&format!("{path}?_permaDelete=1")).await,
    ];
    for got in &refused {
        assert_error(got, StatusCode::FORBIDDEN, "");
    }
    assert_eq!(s.total("notice").await, 1, "nothing created or removed");
    let (status, doc) = s.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["data"]["text"], "original");
    assert_eq!(doc["data"]["_deleted"], false);
    assert_eq!(doc["data"]["__v"], 0);
}

//! Writes are validated against the model: a bad value is a 400 naming the field and writes
//! nothing; values Mongoose would coerce are coerced; defaults fill what is missing; unknown
//! keys are dropped, or refused under `strict = "throw"`; updates are checked like creates.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error};

/// A model that refuses keys it does not know.
const STRICT: &str = r#"
name = "Strict"
[fields]
name = "String"
[perms]
all = "crud"
[options]
strict = "throw"
"#;

/// Asserts a 400 in the error shape whose message names `field` as a whole path (so `n` is
/// not satisfied by the `n` in "cannot").
#[track_caller]
fn assert_rejects_field(got: &(StatusCode, Value), field: &str) {
    assert_error(got, StatusCode::BAD_REQUEST, field);
    let message = got.1["message"].as_str().unwrap_or_default();
    let names_it = message
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .any(|word| word == field);
    assert!(
        names_it,
        "message {message:?} does not name the field {field:?}"
    );
}

#[tokio::test]
async fn bad_values_are_400_naming_the_field_and_write_nothing() {
    let s = TestServer::open().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("Number from letters", json!({"n": "abc"}), "n"),
        ("Boolean from a word", json!({"flag": "maybe"}), "flag"),
        ("Date from prose", json!({"when": "not a date"}), "when"),
        (
            "ObjectId from a short string",
            json!({"ref_id": "xyz"}),
            "ref_id",
        ),
        ("String from an object", json!({"foo": {"a": 1}}), "foo"),
        (
            "nested object from a string",
            json!({"address": "Main St"}),
            "address",
        ),
        (
            "nested field of the wrong type",
            json!({"address": {"city": {"x": 1}}}),
            "address.city",
        ),
        (
            "array element field",
            json!({"composite_array": [{"afoo": "a", "abar": "x"}]}),
            "composite_array.0.abar",
        ),
        (
            "array element not an object",
            json!({"composite_array": [5]}),
            "composite_array.0",
        ),
        (
            "array element of the wrong type",
            json!({"shmack": ["ok", {"a": 1}]}),
            "shmack.1",
        ),
        ("below min", json!({"n": -1}), "n"),
        ("above max", json!({"n": 1001}), "n"),
        ("not in enum", json!({"status": "archived"}), "status"),
        ("does not match", json!({"code": "ab1"}), "code"),
        ("shorter than minlength", json!({"code": "a"}), "code"),
        (
            "longer than maxlength",
            json!({"code": "abcdefghi"}),
            "code",
        ),
    ];
    for (case, body, field) in cases {
        let got = s.post("/api/test", body).await;
        assert_rejects_field(&got, field);
        assert_eq!(s.total("test").await, 0, "{case}: nothing may be written");
    }
}

#[tokio::test]
async fn required_fields_must_be_present_and_not_empty() {
    let s = TestServer::open().await;
    for body in [json!({}), json!({"name": null}), json!({"name": ""})] {
        let got = s.post("/api/link", body.clone()).await;
        assert_rejects_field(&got, "name");
        assert_eq!(s.total("link").await, 0, "{body}: nothing may be written");
    }
    s.create("link", json!({"name": "present"})).await;
    assert_eq!(s.total("link").await, 1);
}

#[tokio::test]
async fn values_are_coerced_as_mongoose_would() {
    let s = TestServer::open().await;
    let upper_id = "5EB7CF838C9FBA641E0E9DCB";
    let cases: Vec<(&str, Value, Value)> = vec![
        ("n", json!("5"), json!(5)),
        ("n", json!("5.5"), json!(5.5)),
        ("flag", json!("true"), json!(true)),
        ("flag", json!("false"), json!(false)),
        ("flag", json!(1), json!(true)),
        ("flag", json!(0), json!(false)),
        (
            "when",
            json!(1_589_104_515_957_i64),
            json!("2020-05-10T09:55:15.957Z"),
        ),
        (
            "when",
            json!("2020-05-10"),
            json!("2020-05-10T00:00:00.000Z"),
        ),
        ("ref_id", json!(upper_id), json!(upper_id.to_lowercase())),
        ("shmack", json!("solo"), json!(["solo"])),
    ];
    for (i, (field, given, stored)) in cases.into_iter().enumerate() {
        // `bar` is unique, so each document brings its own.
        let (status, created) = s
            .post(
                "/api/test",
                json!({ "bar": format!("coerce-{i}"), field: given }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{field} <- {given}: {created}");
        assert_eq!(
            created["data"][field], stored,
            "{field} <- {given} as answered"
        );
        let id = created["data"]["_id"].as_str().unwrap();
        let (_, got) = s.get(&format!("/api/test/{id}")).await;
        assert_eq!(got["data"][field], stored, "{field} <- {given} as stored");
    }
}

#[tokio::test]

async fn an_empty_string_clears_a_number_or_date_as_mongoose_does() {
    let s = TestServer::open().await;
    for (i, field) in ["n", "when"].into_iter().enumerate() {
        let (status, created) = s
            .post(
                "/api/test",
                json!({ "bar": format!("empty-{i}"), field: "" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{field} <- \"\": {created}");
        assert_eq!(created["data"][field], Value::Null, "{field}");
    }
}

#[tokio::test]
async fn missing_fields_get_their_defaults() {
    let s = TestServer::open().await;
    let id = s.create("test", json!({"foo": "bare"})).await;
    let (status, got) = s.get(&format!("/api/test/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let doc = &got["data"];
    assert_eq!(doc["bar"], "Some Default");
    assert_eq!(doc["status"], "draft");
    assert_eq!(doc["address"], json!({"city": "Cape Town"}));
    assert_eq!(doc["shmack"], json!([]));
    assert_eq!(doc["composite_array"], json!([]));
}

#[tokio::test]
async fn unknown_fields_are_dropped_by_default() {
    let s = TestServer::open().await;
    let (status, created) = s.post("/api/test", json!({"foo": "a", "nope": 1})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert!(created["data"].get("nope").is_none(), "{created}");
    let id = created["data"]["_id"].as_str().unwrap();
    let (_, got) = s.get(&format!("/api/test/{id}")).await;
    assert!(got["data"].get("nope").is_none(), "{got}");
}

#[tokio::test]
async fn strict_throw_refuses_unknown_fields_on_create_and_update() {
    let s = TestServer::start(&[("strict", STRICT)], &[]).await;
    let got = s.post("/api/strict", json!({"name": "a", "nope": 1})).await;
    assert_rejects_field(&got, "nope");
    assert_eq!(s.total("strict").await, 0, "nothing may be written");

    let id = s.create("strict", json!({"name": "a"})).await;
    let got = s
        .put(
            &format!("/api/strict/{id}"),
            json!({"name": "b", "nope": 1}),
        )
        .await;
    assert_rejects_field(&got, "nope");
    let (_, doc) = s.get(&format!("/api/strict/{id}")).await;
    assert_eq!(doc["data"]["name"], "a", "the update must not be applied");
    assert_eq!(doc["data"]["__v"], 0);
}

#[tokio::test]
async fn updates_are_validated_too() {
    let s = TestServer::open().await;
    let id = s.create("test", json!({"n": 3})).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"n": -1}), "n"),
        (json!({"n": "abc"}), "n"),
        (json!({"status": "archived"}), "status"),
        (json!({"address": "Main St"}), "address"),
    ];
    for (body, field) in cases {
        let got = s.put(&format!("/api/test/{id}"), body).await;
        assert_rejects_field(&got, field);
        let (_, doc) = s.get(&format!("/api/test/{id}")).await;
        assert_eq!(doc["data"]["n"], 3, "the stored value is unchanged");
        assert_eq!(doc["data"]["status"], "draft");
        assert_eq!(doc["data"]["__v"], 0, "no version was written");
    }
    let got = s
        .post(&format!("/update/test/{id}"), json!({"n": -1}))
        .await;
    assert_rejects_field(&got, "n");
    let (_, doc) = s.get(&format!("/api/test/{id}")).await;
    assert_eq!(doc["data"]["n"], 3);
}

#[tokio::test]
async fn an_update_cannot_empty_a_required_field() {
    let s = TestServer::open().await;
    let id = s.create("link", json!({"name": "kept"})).await;
    for body in [json!({"name": null}), json!({"name": ""})] {
        let got = s.put(&format!("/api/link/{id}"), body.clone()).await;
        assert_rejects_field(&got, "name");
        let (_, doc) = s.get(&format!("/api/link/{id}")).await;
        assert_eq!(doc["data"]["name"], "kept", "{body}");
    }
    // Leaving a required field out of a partial update is fine: a PUT is a PATCH.
    let (status, body) = s.put(&format!("/api/link/{id}"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "kept");
}

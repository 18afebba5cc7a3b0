//! Bad input is a clean 4xx in the `{code, message}` shape, never a 500, and writes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{TestServer, assert_error};

const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn bodies_that_are_not_a_json_object_are_400() {
    let s = TestServer::open().await;
    let id = s.create("test", json!({"foo": "before"})).await;
    let bodies: &[(&str, &str)] = &[
        ("malformed JSON", "{\"foo\": "),
        ("trailing garbage", "{\"foo\": \"a\"} x"),
        ("a JSON array", "[{\"foo\": \"a\"}]"),
        ("a JSON string", "\"foo\""),
        ("a JSON number", "5"),
    ];
    for (case, body) in bodies {
        let got = s
            .raw(Method::POST, "/api/test", JSON, body.as_bytes().to_vec())
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "");
        let path = format!("/api/test/{id}");
        let got = s
            .raw(Method::PUT, &path, JSON, body.as_bytes().to_vec())
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "");
        assert_eq!(s.total("test").await, 1, "{case}: nothing created");
        let (_, doc) = s.get(&path).await;
        assert_eq!(doc["data"]["foo"], "before", "{case}: nothing updated");
        assert_eq!(doc["data"]["__v"], 0, "{case}: nothing updated");
    }
}

#[tokio::test]
async fn hostile_bodies_are_400_not_a_crash() {
    let s = TestServer::open().await;
    let deep = format!(
        "{{\"yack\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("invalid UTF-8", b"{\"foo\": \"\xff\xfe\"}".to_vec()),
        ("nested 100000 deep", deep.into_bytes()),
        ("a bare NUL", b"\0".to_vec()),
    ];
    for (case, body) in bodies {
        let got = s.raw(Method::POST, "/api/test", JSON, body).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "");
        assert_eq!(s.total("test").await, 0, "{case}");
    }
    let (status, body) = s.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "still serving: {body}");
}

#[tokio::test]
async fn an_unsupported_content_type_is_415() {
    let s = TestServer::open().await;
    let got = s
        .raw(
            Method::POST,
            "/api/test",
            Some("text/plain"),
            b"{\"foo\": \"a\"}".to_vec(),
        )
        .await;
    assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "");
    assert_eq!(s.total("test").await, 0);
}

/// Every route that reads a body refuses one it cannot read as JSON with a 415 that says to
/// send `application/json`: plain text, and JSON sent as a form (what `curl -d` does without
/// `-H`). Routes that take JXP's form bodies refuse only form-labelled JSON; the others refuse
/// forms too. Nothing is written by any of them.
#[tokio::test]
async fn bodies_that_are_not_json_are_415_on_every_body_route() {
    let s = TestServer::open().await;
    let id = s.create("test", json!({"foo": "before"})).await;
    let user = "5eb7cf838c9fba641e0e9dcb";
    // (method, path, whether the route also takes urlencoded forms)
    let routes: Vec<(Method, String, bool)> = vec![
        (Method::POST, "/api/test".into(), true),
        (Method::PUT, format!("/api/test/{id}"), true),
        (Method::POST, format!("/update/test/{id}"), true),
        (Method::POST, "/query/test".into(), false),
        (Method::POST, "/aggregate/test".into(), false),
        (Method::POST, "/bulkwrite/test".into(), false),
        (Method::POST, "/call/test/stats".into(), false),
        (Method::POST, format!("/call/test/{id}/stats"), false),
        (Method::POST, "/login".into(), true),
        (Method::POST, "/refresh".into(), true),
        (Method::POST, "/login/refresh".into(), true),
        (Method::POST, "/login/getjwt".into(), true),
        (Method::POST, "/login/recover".into(), true),
        (Method::POST, "/setup".into(), true),
        (Method::PUT, format!("/groups/{user}"), true),
        (Method::POST, format!("/groups/{user}"), true),
        (Method::DELETE, format!("/groups/{user}"), true),
    ];
    let json_text = json!({
        "foo": "after", "email": "admin@example.com", "password": "a long secret",
        "name": "Admin", "group": "g", "query": {}, "refresh_token": "x"
    })
    .to_string();
    let form = "application/x-www-form-urlencoded";
    for (method, path, takes_forms) in &routes {
        let mut bodies = vec![
            ("text/plain", json_text.clone()),
            ("text/plain; charset=utf-8", "foo=after".to_owned()),
            (form, json_text.clone()),
            (form, format!("  {json_text}")),
            (form, "[{\"foo\": \"after\"}]".to_owned()),
        ];
        if !takes_forms {
            bodies.push((form, "foo=after&query=x".to_owned()));
        }
        for (content_type, body) in bodies {
            let got = s
                .raw(
                    method.clone(),
                    path,
                    Some(content_type),
                    body.clone().into_bytes(),
                )
                .await;
            assert_eq!(
                got.0,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{method} {path} as {content_type}: {body}: {}",
                got.1
            );
            assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "application/json");
        }
    }
    assert_eq!(s.total("test").await, 1, "nothing created");
    let (_, doc) = s.get(&format!("/api/test/{id}")).await;
    assert_eq!(doc["data"]["foo"], "before", "nothing updated");
    assert_eq!(doc["data"]["__v"], 0, "nothing updated");
    // No /setup went through: the first admin can still be made.
    let (status, body) = s
        .post(
            "/setup",
            json!({"email": "admin@example.com", "password": "a long secret"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "no user was created: {body}");
}

/// A body without a content type is read as JSON, as most HTTP clients send JSON.
#[tokio::test]
async fn a_json_body_without_a_content_type_is_read_as_json() {
    let s = TestServer::open().await;
    // Created, then updated at the created document's path.
    let mut path = "/api/test".to_owned();
    for (method, foo) in [(Method::POST, "a"), (Method::PUT, "b")] {
        let body = format!("{{\"foo\": \"{foo}\"}}").into_bytes();
        let (status, got) = s.raw(method, &path, None, body).await;
        assert_eq!(status, StatusCode::OK, "{got}");
        assert_eq!(got["data"]["foo"], foo);
        path = format!("/api/test/{}", got["data"]["_id"].as_str().unwrap());
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let s = TestServer::open_with(&[("BODY_LIMIT", "1kb")]).await;
    let big = serde_json::to_vec(&json!({"foo": "x".repeat(2048)})).unwrap();
    let got = s.raw(Method::POST, "/api/test", JSON, big).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "");
    assert_eq!(s.total("test").await, 0);
    // Under the limit is fine.
    s.create("test", json!({"foo": "x".repeat(500)})).await;
}

#[tokio::test]
async fn a_malformed_id_is_400() {
    let s = TestServer::open().await;
    s.create("test", json!({"foo": "a"})).await;
    for id in [
        "not-an-id",
        "5eb7cf838c9fba641e0e9dcz",
        "5eb7cf838c9fba641e0e9dc",
    ] {
        let path = format!("/api/test/{id}");
        assert_error(&s.get(&path).await, StatusCode::BAD_REQUEST, "");
        assert_error(
            &s.put(&path, json!({"foo": "b"})).await,
            StatusCode::BAD_REQUEST,
            "",
        );
        assert_error(&s.delete(&path).await, StatusCode::BAD_REQUEST, "");
        assert_error(
            &s.post(&format!("/update/test/{id}"), json!({"foo": "b"}))
                .await,
            StatusCode::BAD_REQUEST,
            "",
        );
    }
    let (_, list) = s.get("/api/test").await;
    assert_eq!(list["data"][0]["foo"], "a");
    assert_eq!(s.total("test").await, 1);
}

#[tokio::test]
async fn an_unknown_model_is_404() {
    let s = TestServer::open().await;
    assert_error(&s.get("/api/nope").await, StatusCode::NOT_FOUND, "nope");
    assert_error(
        &s.post("/api/nope", json!({"a": 1})).await,
        StatusCode::NOT_FOUND,
        "nope",
    );
    assert_error(&s.get("/count/nope").await, StatusCode::NOT_FOUND, "nope");
    assert_error(
        &s.get("/api/nope/5eb7cf838c9fba641e0e9dcb").await,
        StatusCode::NOT_FOUND,
        "nope",
    );
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let s = TestServer::open().await;
    s.create("test", json!({"foo": "a"})).await;
    let cases: &[(&str, &str)] = &[
        ("filter[nope]=1", "nope"),
        ("filter[foo]=$foo:1", "$foo"),
        ("filter[when]=$gte:not-a-date", "when"),
        ("filter[when]=yesterday", "when"),
        ("filter[n]=abc", "n"),
        ("filter[foo]=$regex:/(/", "foo"),
        ("sort[nope]=1", "nope"),
        ("sort=-nope", "nope"),
        ("fields=foo,nope", "nope"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("page=-1", "page"),
        ("page=0", "page"),
        ("limit=99999999999999999999999", "limit"),
    ];
    for (query, needle) in cases {
        let got = s.get(&format!("/api/test?{query}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, needle);
    }
    for (query, needle) in &cases[..6] {
        let got = s.get(&format!("/count/test?{query}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, needle);
    }
}

#[tokio::test]
async fn a_form_urlencoded_body_is_accepted_and_cast() {
    let s = TestServer::open().await;
    let (status, body) = s
        .raw(
            Method::POST,
            "/api/test",
            Some("application/x-www-form-urlencoded"),
            b"foo=a&n=3&flag=true".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["foo"], "a");
    assert_eq!(body["data"]["n"], 3);
    assert_eq!(body["data"]["flag"], true);
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let s = TestServer::open().await;
    assert_error(&s.get("/no/such/route").await, StatusCode::NOT_FOUND, "");
    assert_error(&s.get("/api").await, StatusCode::NOT_FOUND, "");
}

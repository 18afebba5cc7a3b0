//! `/call`: functions listed in the model's `callable` option and registered by name; GET
//! needs the read right, POST the create right; a function's writes take the write path.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::World;
use crate::harness::{self, Auth};

/// A request (method, path, caller, body) and its answer (status, body, hooks fired).
type Case<'a> = (
    Method,
    &'a str,
    &'a Auth,
    Option<Value>,
    StatusCode,
    Value,
    Vec<&'static str>,
);

#[tokio::test]
async fn functions_allowed_denied_and_unlisted() {
    let w = World::start(&[]).await;
    let user = w.user_auth();
    let anon = Auth::None;
    let (status, body) = harness::post(
        &w.s,
        "/api/ledger",
        &w.admin.basic(),
        json!({"name": "l", "total": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let item = body["data"]["_id"].as_str().unwrap().to_owned();
    w.rec.take();
    let item_path = format!("/call/ledger/{item}/item_total");
    let missing_path = "/call/ledger/000000000000000000000000/item_total".to_owned();
    let caller = w.user.email.clone();

    let cases: Vec<Case> = vec![
        (
            Method::GET,
            "/call/ledger/summary?x=1",
            &anon,
            None,
            StatusCode::OK,
            json!({"data": {"caller": "anonymous", "verb": "Get", "body": {"x": "1"}}}),
            vec!["fn:summary"],
        ),
        (
            Method::POST,
            "/call/ledger/summary",
            &user,
            Some(json!({"a": [1, 2]})),
            StatusCode::OK,
            json!({"data": {"caller": caller, "verb": "Post", "body": {"a": [1, 2]}}}),
            vec!["fn:summary"],
        ),
        (
            Method::POST,
            "/call/ledger/summary",
            &anon,
            Some(json!({})),
            StatusCode::FORBIDDEN,
            json!({"code": "Forbidden", "message": "calling ledger.summary with Post needs the right to create ledger"}),
            vec![],
        ),
        (
            Method::GET,
            "/call/ledger/secret",
            &user,
            None,
            StatusCode::FORBIDDEN,
            json!({"code": "Forbidden", "message": "ledger.secret is not callable"}),
            vec![],
        ),
        (
            Method::POST,
            "/call/ledger/nothing",
            &user,
            Some(json!({})),
            StatusCode::FORBIDDEN,
            json!({"code": "Forbidden", "message": "ledger.nothing is not callable"}),
            vec![],
        ),
        (
            Method::GET,
            "/call/ledger/unregistered",
            &user,
            None,
            StatusCode::NOT_FOUND,
            json!({"code": "NotFound", "message": "ledger.unregistered has no function"}),
            vec![],
        ),
        (
            Method::GET,
            "/call/nomodel/summary",
            &user,
            None,
            StatusCode::NOT_FOUND,
            json!({"code": "NotFound", "message": "model nomodel not found"}),
            vec![],
        ),
        (
            Method::GET,
            &item_path,
            &anon,
            None,
            StatusCode::OK,
            json!({"data": {"double": 10.0}}),
            vec!["fn:item_total"],
        ),
        (
            Method::GET,
            &missing_path,
            &anon,
            None,
            StatusCode::NOT_FOUND,
            json!({"code": "NotFound", "message": "ledger/000000000000000000000000 not found"}),
            vec![],
        ),
        (
            Method::GET,
            "/call/ledger/bad-id/item_total",
            &anon,
            None,
            StatusCode::BAD_REQUEST,
            json!({"code": "BadRequest", "message": "\"bad-id\" is not a valid id"}),
            vec![],
        ),
        (
            Method::POST,
            "/call/ledger/fail",
            &user,
            None,
            StatusCode::PAYMENT_REQUIRED,
            json!({"code": "PaymentRequired", "message": "pay first"}),
            vec!["fn:fail"],
        ),
    ];
    for (method, path, who, body, status, expect, fired) in cases {
        let got = harness::call(&w.s, method.clone(), path, who, body).await;
        assert_eq!(got, (status, expect), "{method} {path}");
        assert_eq!(w.rec.take(), fired, "{method} {path}: hooks fired");
    }
}

#[tokio::test]
async fn a_functions_writes_take_the_write_path() {
    let w = World::start(&[]).await;
    let count = || async {
        w.s.app()
            .reader()
            .count("ledger", &jxp::Filter::All)
            .await
            .unwrap()
    };

    let got = harness::post(
        &w.s,
        "/call/ledger/add",
        &Auth::None,
        json!({"name": "x", "total": 1}),
    )
    .await;
    assert_eq!(got.0, StatusCode::FORBIDDEN, "{}", got.1);
    assert_eq!(count().await, 0, "a refused call writes nothing");
    assert_eq!(w.rec.take(), Vec::<String>::new());

    let (status, body) = harness::post(
        &w.s,
        "/call/ledger/add",
        &w.user_auth(),
        json!({"name": "x", "total": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["_owner_id"], w.user.id,
        "written as the caller: {body}"
    );
    assert_eq!(
        w.rec.take(),
        ["fn:add", "pre:post:*:ledger", "post:post:ledger"]
    );
    let id = body["data"]["_id"].as_str().unwrap();
    assert_eq!(
        w.stored("ledger", id).await.unwrap()["total"].as_f64(),
        Some(1.0)
    );

    // The function's own write is validated: a bad total is the write path's 400.
    let got = harness::post(
        &w.s,
        "/call/ledger/add",
        &w.user_auth(),
        json!({"name": "y", "total": "lots"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST, "{}", got.1);
    assert_eq!(count().await, 1);
}

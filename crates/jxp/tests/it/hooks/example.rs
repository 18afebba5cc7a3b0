//! The library example (`examples/todo_hooks`): its models, hooks and functions registered on
//! the server's builder by the example's own `register`, driven over HTTP and the WebSocket
//! feed.

#[allow(dead_code)]
#[path = "../../../examples/todo_hooks/app.rs"]
mod app;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{self, Auth, TestServer};
use crate::realtime::client::WsClient;

/// Serves the example's models, hooks and functions on port 0 with a fresh database.
async fn example_server() -> TestServer {
    TestServer::start_with(
        &[],
        &[("LOGIN_RATE_LIMIT_ENABLED", "false")],
        std::sync::Arc::new(app::register),
    )
    .await
}

#[tokio::test]
async fn the_example_serves_its_hooks_and_functions() {
    let s = example_server().await;
    let admin = harness::setup_admin(&s).await;
    let ann = harness::create_user(&s, &admin.basic(), "ann").await;
    let ben = harness::create_user(&s, &admin.basic(), "ben").await;
    let (ann_auth, ben_auth) = (ann.basic(), ben.basic());

    // Login post-hook.
    let r = harness::try_login(&s, &ann.email, &ann.password).await;
    assert_eq!(r.body["greeting"], "Welcome back, ann", "{}", r.body);

    // Create pre-hook: trims, and refuses an empty title with its own message.
    let (status, body) =
        harness::post(&s, "/api/todo", &ann_auth, json!({"title": "  milk  "})).await;
    assert_eq!(
        (status, &body["data"]["title"]),
        (StatusCode::OK, &json!("milk")),
        "{body}"
    );
    let milk = body["data"]["_id"].as_str().unwrap().to_owned();
    let got = harness::post(&s, "/api/todo", &ann_auth, json!({"title": "   "})).await;
    assert_eq!(
        got,
        (
            StatusCode::BAD_REQUEST,
            json!({"code": "BadRequest", "message": "a todo needs a title"})
        )
    );
    let (status, _) = harness::post(&s, "/api/todo", &ben_auth, json!({"title": "bread"})).await;
    assert_eq!(status, StatusCode::OK);

    // Read hooks: each user sees their own.
    let (_, body) = harness::get(&s, "/api/todo", &ben_auth).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["data"][0]["title"], "bread");
    let (status, _) = harness::get(&s, &format!("/api/todo/{milk}"), &ben_auth).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Functions: `complete` writes through the write path, so a subscriber sees it.
    let mut ws = WsClient::connect(&s).await;
    ws.auth_ok(json!({"email": admin.email, "password": admin.password}))
        .await;
    ws.subscribe_ok(json!({"model": "todo"})).await;
    let (status, body) = harness::post(
        &s,
        &format!("/call/todo/{milk}/complete"),
        &ann_auth,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, &body["data"]["done"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );
    let e = ws.event().await;
    assert_eq!(
        (&e["data"]["event"], &e["data"]["item"]["done"]),
        (&json!("put"), &json!(true)),
        "{e}"
    );
    let (status, body) = harness::get(&s, "/call/todo/stats", &ann_auth).await;
    assert_eq!(
        (status, &body["data"]),
        (StatusCode::OK, &json!({"open": 0, "done": 1})),
        "{body}"
    );
    // Another user cannot complete ann's todo: it is not theirs to read.
    let (status, _) = harness::post(
        &s,
        &format!("/call/todo/{milk}/complete"),
        &ben_auth,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Update pre-hook: finished stays finished.
    let got = harness::put(
        &s,
        &format!("/api/todo/{milk}"),
        &ann_auth,
        json!({"done": false}),
    )
    .await;
    assert_eq!(got.0, StatusCode::CONFLICT, "{}", got.1);
    // Unlisted names are refused.
    let (status, _) = harness::get(&s, "/call/todo/drop_all", &Auth::None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

//! What a failing script costs the client: a thrown error is a 500 "hook failed" without its
//! detail; a spinning script is stopped with 500 "hook timed out" while requests that run no
//! script are answered meanwhile; the sandbox has no IO, timers or module loading.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::World;
use crate::harness;

#[tokio::test]
async fn a_thrown_error_is_a_500_without_its_detail_and_writes_nothing() {
    let w = World::start(&[]).await;
    let got = harness::post(&w.s, "/api/widget", &w.user_auth(), json!({"name": "boom"})).await;
    harness::assert_error(&got, StatusCode::INTERNAL_SERVER_ERROR, "hook failed");
    assert!(!got.1.to_string().contains("secret detail"), "{}", got.1);
    assert_eq!(w.widgets_stored().await, 0);

    let got = harness::call(&w.s, Method::GET, "/call/widget/boom", &w.user_auth(), None).await;
    harness::assert_error(&got, StatusCode::INTERNAL_SERVER_ERROR, "hook failed");
    assert!(!got.1.to_string().contains("secret detail"), "{}", got.1);
}

#[tokio::test]
async fn a_spinning_function_times_out_while_other_requests_are_answered() {
    let w = World::start(&[("SCRIPT_TIMEOUT_MS", "1500")]).await;
    let (base, auth) = (w.s.base.clone(), w.user.authorization());
    let spin = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .get(format!("{base}/call/widget/spin"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json::<serde_json::Value>().await.unwrap())
    });
    // Requests that run no script are answered while the script spins.
    for _ in 0..5 {
        let got = harness::get(&w.s, "/api/audit", &w.user_auth()).await;
        assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    }
    assert!(
        !spin.is_finished(),
        "the spinning call ended before the other requests"
    );
    let got = spin.await.unwrap();
    harness::assert_error(&got, StatusCode::INTERNAL_SERVER_ERROR, "hook timed out");
    // The pool goes on serving scripts.
    let got = harness::get(&w.s, "/call/widget/stats", &w.user_auth()).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
}

#[tokio::test]
async fn the_sandbox_has_no_io_timers_processes_or_module_loading() {
    let w = World::start(&[]).await;
    let got = harness::get(&w.s, "/call/widget/globals", &w.user_auth()).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    for (name, kind) in got.1["data"].as_object().unwrap() {
        assert_eq!(kind, "undefined", "{name} is present: {}", got.1);
    }
    let got = harness::get(&w.s, "/call/widget/imports", &w.user_auth()).await;
    assert_eq!(got.1["data"], "refused", "{}", got.1);
}

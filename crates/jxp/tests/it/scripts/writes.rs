//! Write hooks in scripts: `pre_*` change or refuse the write with the `ctx` of SPEC §10,
//! `post_*` run after the commit and write through `ctx.system`; a refusal writes nothing and
//! sends no event, and a post-hook's write is an event of its own.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::support::{World, ctx_id};
use crate::harness;
use crate::realtime::client::WsClient;

#[tokio::test]
async fn pre_hooks_change_the_write_with_their_ctx_and_post_hooks_write_an_audit() {
    let w = World::start(&[]).await;
    let user = w.user_auth();

    // pre_post: sees the new document and the user; its answer is merged, then validated.
    let made = w.widget(json!({"name": "first", "tag": "red"})).await;
    assert_eq!(made["tag"], "RED", "{made}");
    assert_eq!(made["stamped"], w.user.email.as_str(), "{made}");
    let id = ctx_id(&made);

    // pre_put: sees the stored document, the patch and the id.
    let got = harness::put(
        &w.s,
        &format!("/api/widget/{id}"),
        &user,
        json!({"name": "second"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["data"]["stamped"], "first->second:true", "{}", got.1);

    // post_* wrote through ctx.system, in order, naming the acting user.
    let got = harness::delete(&w.s, &format!("/api/widget/{id}"), &user).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(
        w.audits().await,
        ["post", "put:first->second", "delete:second"]
    );
    let audits = harness::get(&w.s, "/api/audit", &w.admin_auth()).await.1;
    assert!(
        audits["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["by"] == w.user.email.as_str()
                && a["ref"] == id.as_str()
                && a["stamp"] == "audit.js as system"),
        "{audits}"
    );
}

#[tokio::test]
async fn a_refusal_answers_its_status_and_writes_nothing() {
    let w = World::start(&[]).await;
    let user = w.user_auth();
    let got = harness::post(&w.s, "/api/widget", &user, json!({"name": "reject"})).await;
    harness::assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "widgets may not be called reject",
    );
    assert_eq!(got.1["code"], "UnprocessableEntity", "{}", got.1);
    assert_eq!(w.widgets_stored().await, 0);
    // Any status a hook names, as JXP's test model's 418.
    let got = harness::post(&w.s, "/api/widget", &user, json!({"name": "teapot"})).await;
    harness::assert_error(&got, StatusCode::IM_A_TEAPOT, "I'm a teapot");
    assert_eq!(w.widgets_stored().await, 0);

    let kept = ctx_id(&w.widget(json!({"name": "keep"})).await);
    let got = harness::put(
        &w.s,
        &format!("/api/widget/{kept}"),
        &user,
        json!({"name": "reject"}),
    )
    .await;
    harness::assert_error(&got, StatusCode::FORBIDDEN, "no renaming to reject");
    assert_eq!(w.stored(&kept).await.unwrap()["name"], "keep");
    let got = harness::delete(&w.s, &format!("/api/widget/{kept}"), &user).await;
    harness::assert_error(&got, StatusCode::CONFLICT, "is kept");
    assert_eq!(w.stored(&kept).await.unwrap()["_deleted"], false);
    // Only the one create that went through left an audit row.
    assert_eq!(w.audits().await, ["post"]);
}

#[tokio::test]
async fn refused_writes_send_no_event_and_a_post_hooks_write_sends_its_own() {
    let w = World::start(&[]).await;
    let mut ws = WsClient::connect(&w.s).await;
    ws.auth_ok(w.admin.creds()).await;
    ws.subscribe_ok(json!({"model": "widget"})).await;
    ws.subscribe_ok(json!({"model": "audit"})).await;

    let got = harness::post(
        &w.s,
        "/api/widget",
        &w.user_auth(),
        json!({"name": "reject"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    // The next events are the accepted create's, then its audit row's: nothing came between.
    let id = ctx_id(&w.widget(json!({"name": "ok", "tag": "x"})).await);
    let first = ws.event().await;
    assert_eq!(first["data"]["modelname"], "widget", "{first}");
    assert_eq!(first["data"]["item"]["_id"], id.as_str(), "{first}");
    assert_eq!(first["data"]["item"]["tag"], "X", "{first}");
    let second = ws.event().await;
    assert_eq!(second["data"]["modelname"], "audit", "{second}");
    assert_eq!(second["data"]["event"], "post", "{second}");
    assert_eq!(second["data"]["item"]["ref"], id.as_str(), "{second}");
    ws.expect_no_event(Duration::from_millis(200)).await;

    // A post-hook's write to its own document is silenced: no event for it, no second run of
    // the hook; the update that started it and its audit row are the events.
    let got = harness::put(
        &w.s,
        &format!("/api/widget/{id}"),
        &w.user_auth(),
        json!({"name": "echo"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let update = ws.event().await;
    assert_eq!(
        (&update["data"]["event"], &update["data"]["item"]["name"]),
        (&json!("put"), &json!("echo")),
        "{update}"
    );
    let audit = ws.event().await;
    assert_eq!(audit["data"]["item"]["what"], "put:ok->echo", "{audit}");
    ws.expect_no_event(Duration::from_millis(200)).await;
    assert_eq!(w.stored(&id).await.unwrap()["tag"], "echoed");
    assert_eq!(w.audits().await, ["post", "put:ok->echo"]);
}

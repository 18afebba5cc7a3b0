//! Script functions at `/call/<slug>/<name>` and `/call/<slug>/<id>/<name>`: they get the
//! params, the `:id` document as the caller may read it, the user and `ctx.db`.

use reqwest::StatusCode;
use serde_json::json;

use super::support::{World, ctx_id};
use crate::harness;

#[tokio::test]
async fn functions_get_the_params_the_document_and_the_callers_reads() {
    let w = World::start(&[]).await;
    let id = ctx_id(&w.widget(json!({"name": "one"})).await);
    w.widget(json!({"name": "two"})).await;

    let got = harness::get(&w.s, "/call/widget/stats?x=1", &w.user_auth()).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(
        got.1["data"],
        json!({"params": {"x": "1"}, "id": null, "name": null, "seen": 2, "user": w.user.email}),
    );

    let got = harness::post(
        &w.s,
        &format!("/call/widget/{id}/stats"),
        &w.user_auth(),
        json!({"y": 2}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(
        got.1["data"],
        json!({"params": {"y": 2}, "id": id, "name": "one", "seen": 2, "user": w.user.email}),
    );

    // ctx.db.find with a filter and a sort, as the caller.
    let got = harness::get(
        &w.s,
        &format!("/call/widget/audits?ref={id}"),
        &w.user_auth(),
    )
    .await;
    assert_eq!(got.1["data"], json!(["post"]), "{}", got.1);
}

#[tokio::test]
async fn ctx_db_writes_take_the_write_path_as_the_caller() {
    let w = World::start(&[]).await;
    let got = harness::post(&w.s, "/call/widget/chores", &w.user_auth(), json!({})).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    // The widget's own hooks ran for each write; the user may not write audit rows.
    assert_eq!(
        got.1["data"],
        json!({
            "made": ["LOW", w.user.email], "got": "chore", "changed": "chore->done:true",
            "refused": ["JxpError", 403], "left": 0,
        }),
    );
    assert_eq!(w.audits().await, ["post", "put:chore->done", "delete:done"]);
    // An app error the script lets through is answered as the app would answer it.
    let got = harness::post(&w.s, "/call/widget/forbidden", &w.user_auth(), json!({})).await;
    harness::assert_error(&got, StatusCode::FORBIDDEN, "audit");
}

#[tokio::test]
async fn login_hooks_refuse_and_add_to_the_result() {
    let w = World::start(&[]).await;
    let got = harness::post(&w.s, "/login", &harness::Auth::None, w.user.creds()).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["greeting"], "hello Una", "{}", got.1);
    assert_eq!(got.1["for_id"], w.user.id.as_str(), "{}", got.1);
    // The result as answered, without the secrets a hook could log.
    assert_eq!(got.1["until"], got.1["token_expires"], "{}", got.1);
    assert_eq!(got.1["saw_secrets"], json!([]), "{}", got.1);

    let blocked = harness::create_user(&w.s, &w.admin_auth(), "Blocked").await;
    let got = harness::post(&w.s, "/login", &harness::Auth::None, blocked.creds()).await;
    harness::assert_error(&got, StatusCode::FORBIDDEN, "this account is blocked");
}

//! `pre_get` in a script: its filter narrows lists, get-one (404), counts, CSV, `/query`, MCP
//! reads and the realtime feed of the caller, and leaves an admin (for whom it answers null) alone;
//! a filter that names the caller is only ever that caller's, however often users take turns.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::support::{World, ctx_id};
use crate::harness::{self, TestServer};
use crate::realtime::client::WsClient;

#[tokio::test]
async fn pre_get_narrows_every_read_and_the_feed() {
    let w = World::start(&[]).await;
    let (user, admin) = (w.user_auth(), w.admin_auth());
    let live = ctx_id(&w.widget(json!({"name": "live"})).await);
    let hidden = ctx_id(
        &w.widget(json!({"name": "hidden", "status": "archived"}))
            .await,
    );

    let got = harness::get(&w.s, "/api/widget", &user).await;
    let names: Vec<_> = got.1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].clone())
        .collect();
    assert_eq!(names, [json!("live")], "{}", got.1);
    let got = harness::get(&w.s, "/api/widget", &admin).await;
    assert_eq!(got.1["data"].as_array().unwrap().len(), 2, "{}", got.1);

    assert_eq!(
        harness::get(&w.s, &format!("/api/widget/{live}"), &user)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        harness::get(&w.s, &format!("/api/widget/{hidden}"), &user)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        harness::get(&w.s, &format!("/api/widget/{hidden}"), &admin)
            .await
            .0,
        StatusCode::OK
    );

    assert_eq!(
        harness::get(&w.s, "/count/widget", &user).await.1["count"],
        1
    );
    let got = harness::post(&w.s, "/query/widget", &user, json!({"query": {}})).await;
    assert_eq!(got.1["data"].as_array().unwrap().len(), 1, "{}", got.1);
    let got = harness::get(&w.s, "/csv/widget", &user).await;
    let csv = got.1.as_str().unwrap();
    assert!(csv.contains(&live) && !csv.contains(&hidden), "{csv}");

    // MCP reads go through the same lists.
    let mcp = crate::mcp::client::Mcp::connect(&w.s, &user).await;
    let found = mcp.ok("jxp_find", json!({"model": "widget"})).await;
    let names: Vec<_> = found["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].clone())
        .collect();
    assert_eq!(names, [json!("live")], "{found}");
    let one = mcp
        .tool("jxp_find", json!({"model": "widget", "id": hidden}))
        .await;
    assert!(!one.text.contains("hidden"), "{one:?}");
    assert_eq!(
        mcp.ok("jxp_count", json!({"model": "widget"})).await["count"],
        1
    );

    // The feed: the user's subscription gets the live widget's event, not the archived one's.
    let mut ws = WsClient::connect(&w.s).await;
    ws.auth_ok(w.user.creds()).await;
    ws.subscribe_ok(json!({"model": "widget"})).await;
    let got = harness::post(
        &w.s,
        "/api/widget",
        &admin,
        json!({"name": "quiet", "status": "archived"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let seen = ctx_id(&w.widget(json!({"name": "seen"})).await);
    let e = ws.event().await;
    assert_eq!(e["data"]["item"]["_id"], seen.as_str(), "{e}");
    ws.expect_no_event(Duration::from_millis(200)).await;
}

const NOTE: &str = r#"
name = "Note"
[fields]
owner = "String"
text = "String"
[perms]
admin = "crud"
user = "r"
"#;

/// The hook runs on every read and answers a filter naming the caller.
const NOTE_JS: &str = r#"
export function pre_get(ctx) {
  if (ctx.user && ctx.user.admin) return null;
  return { owner: ctx.user.email };
}
"#;

#[tokio::test]
async fn a_filter_naming_the_caller_never_reaches_another_user() {
    let s = TestServer::start_scripted(&[("note", NOTE)], &[("note.js", NOTE_JS)], &[]).await;
    let admin = harness::setup_admin(&s).await;
    let ann = harness::create_user(&s, &admin.basic(), "Ann").await;
    let bob = harness::create_user(&s, &admin.basic(), "Bob").await;
    let mut note = std::collections::HashMap::new();
    for who in [&ann, &bob] {
        let body = json!({"owner": who.email, "text": format!("{}'s", who.name)});
        let got = harness::post(&s, "/api/note", &admin.basic(), body).await;
        assert_eq!(got.0, StatusCode::OK, "{}", got.1);
        note.insert(who.email.clone(), ctx_id(&got.1["data"]));
    }
    let mut feeds = Vec::new();
    for who in [&ann, &bob] {
        let mut ws = WsClient::connect(&s).await;
        ws.auth_ok(who.creds()).await;
        ws.subscribe_ok(json!({"model": "note"})).await;
        feeds.push(ws);
    }

    // Taking turns, each user reads their own note and never the other's.
    for _ in 0..4 {
        for (me, other) in [(&ann, &bob), (&bob, &ann)] {
            let got = harness::get(&s, "/api/note", &me.basic()).await;
            let owners: Vec<_> = got.1["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["owner"].clone())
                .collect();
            assert_eq!(owners, [json!(me.email)], "{}", got.1);
            let mine = format!("/api/note/{}", note[&me.email]);
            assert_eq!(harness::get(&s, &mine, &me.basic()).await.0, StatusCode::OK);
            let theirs = format!("/api/note/{}", note[&other.email]);
            assert_eq!(
                harness::get(&s, &theirs, &me.basic()).await.0,
                StatusCode::NOT_FOUND
            );
            assert_eq!(
                harness::get(&s, "/count/note", &me.basic()).await.1["count"],
                1
            );
        }
    }
    let got = harness::get(&s, "/api/note", &admin.basic()).await;
    assert_eq!(got.1["data"].as_array().unwrap().len(), 2, "{}", got.1);

    // Each socket hears only the note made for its own user.
    for who in [&bob, &ann] {
        let body = json!({"owner": who.email, "text": "new"});
        let got = harness::post(&s, "/api/note", &admin.basic(), body).await;
        assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    }
    for (ws, who) in feeds.iter_mut().zip([&ann, &bob]) {
        let e = ws.event().await;
        assert_eq!(e["data"]["item"]["owner"], who.email.as_str(), "{e}");
        ws.expect_no_event(Duration::from_millis(200)).await;
    }

    // The hook depends on the user alone, and a runtime answers a user it has answered
    // without running it again: a user made an admin reads everything at the next request,
    // and the other user still only their own.
    let promoted = format!("/api/user/{}", ann.id);
    let got = harness::put(&s, &promoted, &admin.basic(), json!({"admin": true})).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    for _ in 0..4 {
        let got = harness::get(&s, "/api/note", &ann.basic()).await;
        assert_eq!(got.1["data"].as_array().unwrap().len(), 4, "{}", got.1);
        let got = harness::get(&s, "/api/note", &bob.basic()).await;
        assert_eq!(got.1["data"].as_array().unwrap().len(), 2, "{}", got.1);
    }
    let got = harness::put(&s, &promoted, &admin.basic(), json!({"admin": false})).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let got = harness::get(&s, "/api/note", &ann.basic()).await;
    assert_eq!(got.1["data"].as_array().unwrap().len(), 2, "{}", got.1);
}

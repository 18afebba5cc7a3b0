//! Hooks and the realtime feed together: a write a pre-hook rejects sends no event, a write a
//! pre-hook changed is delivered as changed, `_silence` sends nothing and runs no callback, and
//! a function's write is an event like any other. "No event" is shown by a later marker write
//! being the next event received.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::World;
use crate::harness;
use crate::realtime::client::WsClient;

fn item(event: &Value, kind: &str) -> Value {
    assert_eq!(event["data"]["event"], kind, "{event}");
    event["data"]["item"].clone()
}

#[tokio::test]
async fn subscribers_see_only_writes_that_passed_the_hooks_as_the_hooks_left_them() {
    let w = World::start(&[]).await;
    let user = w.user_auth();
    let mut ws = WsClient::connect(&w.s).await;
    ws.auth_ok(json!({"email": w.admin.email, "password": w.admin.password}))
        .await;
    ws.subscribe_ok(json!({"model": "widget"})).await;
    ws.subscribe_ok(json!({"model": "ledger"})).await;

    // Rejected by a pre-hook: no event; the marker is the next one.
    let got = harness::post(&w.s, "/api/widget", &user, json!({"name": "reject"})).await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    let marker = w.widget(json!({"name": "marker-1"})).await;
    let e = ws.event().await;
    assert_eq!(item(&e, "post")["_id"], marker.as_str(), "{e}");

    // Changed by a pre-hook: delivered as changed.
    w.widget(json!({"name": "changed", "tag": "lower"})).await;
    let e = ws.event().await;
    let changed = item(&e, "post");
    assert_eq!(
        (&changed["name"], &changed["tag"]),
        (&json!("changed"), &json!("LOWER")),
        "{e}"
    );
    assert_eq!(changed["stamped"], w.user.email.as_str());

    // An update rejected by a pre-hook: nothing; an update changed by one: delivered changed.
    let got = harness::put(
        &w.s,
        &format!("/api/widget/{marker}"),
        &user,
        json!({"name": "reject"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::FORBIDDEN, "{}", got.1);
    let got = harness::put(
        &w.s,
        &format!("/api/widget/{marker}"),
        &user,
        json!({"tag": "up"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let e = ws.event().await;
    let updated = item(&e, "put");
    assert_eq!(
        (&updated["name"], &updated["tag"]),
        (&json!("marker-1"), &json!("UP")),
        "{e}"
    );

    // A delete rejected by a pre-hook: nothing.
    let keep = w.widget(json!({"name": "keep"})).await;
    assert_eq!(item(&ws.event().await, "post")["_id"], keep.as_str());
    let got = harness::delete(&w.s, &format!("/api/widget/{keep}"), &user).await;
    assert_eq!(got.0, StatusCode::CONFLICT, "{}", got.1);

    // `_silence`: no event and no callback, though the pre-hooks ran.
    w.rec.take();
    let got = harness::post(
        &w.s,
        "/api/widget?_silence=true",
        &user,
        json!({"name": "quiet"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(w.rec.take(), ["pre:post:*:widget", "pre:post"]);

    // A function's write is an event.
    let got = harness::post(
        &w.s,
        "/call/ledger/add",
        &user,
        json!({"name": "from-fn", "total": 2}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let e = ws.event().await;
    assert_eq!(e["data"]["modelname"], "ledger", "{e}");
    assert_eq!(item(&e, "post")["name"], "from-fn", "{e}");
    assert_eq!(e["data"]["user_id"], w.user.id.as_str(), "{e}");

    // Nothing else arrived in between: the next widget event is the last marker.
    let last = w.widget(json!({"name": "marker-2"})).await;
    let e = ws.event().await;
    assert_eq!(item(&e, "post")["_id"], last.as_str(), "{e}");
}

#[tokio::test]
async fn read_hooks_decide_what_each_socket_receives() {
    let w = World::start(&[]).await;
    let user = w.user_auth();
    let mut carol = WsClient::connect(&w.s).await;
    carol
        .auth_ok(json!({"email": w.user.email, "password": w.user.password}))
        .await;
    carol.subscribe_ok(json!({"model": "widget"})).await;
    let mut admin = WsClient::connect(&w.s).await;
    admin
        .auth_ok(json!({"email": w.admin.email, "password": w.admin.password}))
        .await;
    admin.subscribe_ok(json!({"model": "widget"})).await;

    // The hook hides hidden widgets from non-admins, over the feed as over REST.
    let hidden = w.widget(json!({"name": "concealed", "hidden": true})).await;
    let shown = w.widget(json!({"name": "shown"})).await;
    let e = carol.event().await;
    assert_eq!(item(&e, "post")["_id"], shown.as_str(), "{e}");
    let e = admin.event().await;
    assert_eq!(item(&e, "post")["_id"], hidden.as_str(), "{e}");
    let e = admin.event().await;
    assert_eq!(item(&e, "post")["_id"], shown.as_str(), "{e}");
    // Un-hiding it makes its next change visible.
    let got = harness::put(
        &w.s,
        &format!("/api/widget/{hidden}"),
        &user,
        json!({"hidden": false}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let e = carol.event().await;
    assert_eq!(item(&e, "put")["_id"], hidden.as_str(), "{e}");

    // A hook that refuses a reader refuses the subscription too.
    let outsider = harness::create_user(&w.s, &w.admin.basic(), "outsider").await;
    let mut out = WsClient::connect(&w.s).await;
    out.auth_ok(json!({"email": outsider.email, "password": outsider.password}))
        .await;
    let reply = out.request("subscribe", json!({"model": "gadget"})).await;
    assert_eq!(
        (&reply["status"], &reply["message"]),
        (&json!("error"), &json!("Forbidden")),
        "{reply}"
    );
    out.subscribe_ok(json!({"model": "widget"})).await;

    // The hooks were asked for the identity the socket authenticated with; when the user's
    // groups change, the socket is asked to authenticate again.
    harness::set_groups(&w.s, &w.admin.basic(), &w.user.id, &["staff"]).await;
    let e = carol.event().await;
    assert_eq!(e["data"]["event"], "deauth", "{e}");
    assert_eq!(
        e["data"]["reason"], "identity changed; authenticate again",
        "{e}"
    );
}

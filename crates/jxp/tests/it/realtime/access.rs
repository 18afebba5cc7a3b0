//! Who receives what: owner rules per document, de-authentication on logout, token expiry,
//! password change and user deletion, re-authentication, and group changes on open sockets.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::client::{QUIET, WsClient};
use super::support::{assert_deauth, change, subscribed, world};
use crate::harness::{
    Account, Auth, Session, TestServer, World, call, call_ok, create_as, delete_as, login_as,
    update_as,
};

/// Alice logged in, and a socket authenticated with her token and subscribed to `item`.
async fn alice_by_token(w: &World) -> (Session, WsClient) {
    let session = login_as(&w.s, &w.alice).await;
    let mut c = WsClient::connect(&w.s).await;
    c.auth_ok(json!({"token": session.token})).await;
    c.subscribe_ok(json!({"model": "item"})).await;
    (session, c)
}

/// `GET /logout` with a Bearer token; it must succeed.
async fn logout(s: &TestServer, token: &str) {
    call_ok(s, Method::GET, "/logout", &Auth::bearer(token), None).await;
}

#[tokio::test]
async fn owner_only_models_deliver_own_documents_only() {
    let w = world(&[]).await;
    let mut a = subscribed(&w.s, &w.alice, json!({"model": "owned"})).await;
    let mut b = subscribed(&w.s, &w.bob, json!({"model": "owned"})).await;

    let mine = create_as(&w.s, &w.alice, "owned", json!({"name": "alice's"})).await;
    change(&a.event().await, "post", "owned", &mine);
    update_as(&w.s, &w.alice, "owned", &mine, json!({"name": "alice's 2"})).await;
    change(&a.event().await, "put", "owned", &mine);

    let theirs = create_as(&w.s, &w.bob, "owned", json!({"name": "bob's"})).await;
    change(&b.event().await, "post", "owned", &theirs);
    update_as(&w.s, &w.bob, "owned", &theirs, json!({"name": "bob's 2"})).await;
    change(&b.event().await, "put", "owned", &theirs);
    delete_as(&w.s, &w.bob, "owned", &theirs, "").await;
    change(&b.event().await, "del", "owned", &theirs);

    delete_as(&w.s, &w.alice, "owned", &mine, "").await;
    let del = a.event().await;
    assert_eq!(
        change(&del, "del", "owned", &mine)["item"]["_deleted"],
        true
    );

    // Neither saw the other's writes.
    a.expect_no_event(QUIET).await;
    b.expect_no_event(QUIET).await;

    // A document subscription to someone else's document delivers nothing either.
    let other = create_as(&w.s, &w.alice, "owned", json!({"name": "x"})).await;
    change(&a.event().await, "post", "owned", &other);
    b.subscribe_ok(json!({"model": "owned", "id": other})).await;
    update_as(&w.s, &w.alice, "owned", &other, json!({"name": "y"})).await;
    change(&a.event().await, "put", "owned", &other);
    b.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn logout_deauthenticates_the_socket() {
    let w = world(&[]).await;
    let (session, mut c) = alice_by_token(&w).await;
    let token = session.token;
    let id = create_as(&w.s, &w.bob, "item", json!({"name": "before"})).await;
    change(&c.event().await, "post", "item", &id);

    logout(&w.s, &token).await;
    let ev = c.event().await;
    assert_deauth(&ev, c.client_id.as_deref());

    create_as(&w.s, &w.bob, "item", json!({"name": "after"})).await;
    update_as(&w.s, &w.bob, "item", &id, json!({"name": "changed"})).await;
    c.expect_no_event(QUIET).await;
    c.assert_alive().await;
    // The revoked token no longer authenticates.
    let reply = c.request("auth", json!({"token": token})).await;
    assert_eq!(reply["message"], "Unable to authenticate", "{reply}");
}

#[tokio::test]
async fn re_auth_after_deauth_resumes_delivery() {
    let w = world(&[]).await;
    let (session, mut c) = alice_by_token(&w).await;
    let token = session.token;
    logout(&w.s, &token).await;
    assert_deauth(&c.event().await, None);
    create_as(&w.s, &w.bob, "item", json!({"name": "missed"})).await;
    c.expect_no_event(QUIET).await;

    c.auth_ok(w.alice.creds()).await;
    let id = create_as(&w.s, &w.bob, "item", json!({"name": "seen"})).await;
    let ev = c.event().await;
    assert_eq!(change(&ev, "post", "item", &id)["item"]["name"], "seen");
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn an_expired_token_deauthenticates_the_socket() {
    let w = world(&[("TOKEN_EXPIRY", "1")]).await;
    let (session, mut c) = alice_by_token(&w).await;

    // No write is needed: the expiry alone is announced.
    let ev = c.event().await;
    assert_deauth(&ev, c.client_id.as_deref());
    create_as(&w.s, &w.bob, "item", json!({"name": "after expiry"})).await;
    c.expect_no_event(QUIET).await;
    c.assert_alive().await;

    c.auth_ok(json!({"apikey": session.body["apikey"]})).await;
    let id = create_as(&w.s, &w.bob, "item", json!({"name": "again"})).await;
    change(&c.event().await, "post", "item", &id);
}

#[tokio::test]
async fn a_password_change_deauthenticates_every_socket_of_the_user() {
    let w = world(&[]).await;
    let mut by_password = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    let session = login_as(&w.s, &w.alice).await;
    let mut by_token = WsClient::connect(&w.s).await;
    by_token.auth_ok(json!({"token": session.token})).await;
    by_token.subscribe_ok(json!({"model": "item"})).await;
    let mut bystander = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;

    update_as(
        &w.s,
        &w.admin,
        "user",
        &w.alice.id,
        json!({"password": "a-new-password"}),
    )
    .await;
    assert_deauth(&by_password.event().await, by_password.client_id.as_deref());
    assert_deauth(&by_token.event().await, by_token.client_id.as_deref());

    let id = create_as(&w.s, &w.admin, "item", json!({"name": "after"})).await;
    change(&bystander.event().await, "post", "item", &id);
    by_password.expect_no_event(QUIET).await;
    by_token.expect_no_event(QUIET).await;

    // The old password no longer works; the new one does and resumes delivery.
    let reply = by_password.request("auth", w.alice.creds()).await;
    assert_eq!(reply["message"], "Unable to authenticate", "{reply}");
    let renewed = Account {
        password: "a-new-password".into(),
        ..w.alice.clone()
    };
    by_password.auth_ok(renewed.creds()).await;
    let id = create_as(&w.s, &w.admin, "item", json!({"name": "resumed"})).await;
    change(&by_password.event().await, "post", "item", &id);
}

#[tokio::test]
async fn a_name_change_does_not_deauthenticate() {
    let w = world(&[]).await;
    let mut c = subscribed(&w.s, &w.alice, json!({"model": "item"})).await;
    update_as(
        &w.s,
        &w.admin,
        "user",
        &w.alice.id,
        json!({"name": "Alicia"}),
    )
    .await;
    let id = create_as(&w.s, &w.alice, "item", json!({"name": "x"})).await;
    let ev = c.event().await;
    let data = change(&ev, "post", "item", &id);
    assert_eq!(
        data["user_name"], "Alicia",
        "events name the user as they are now: {ev}"
    );
}

#[tokio::test]
async fn deleting_the_user_deauthenticates_their_sockets() {
    let w = world(&[]).await;
    let mut c = subscribed(&w.s, &w.bob, json!({"model": "item"})).await;
    delete_as(&w.s, &w.admin, "user", &w.bob.id, "").await;
    assert_deauth(&c.event().await, c.client_id.as_deref());
    create_as(&w.s, &w.alice, "item", json!({"name": "x"})).await;
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn group_changes_apply_to_open_sockets() {
    let w = world(&[]).await;
    let mut admin = subscribed(&w.s, &w.admin, json!({"model": "board"})).await;
    let mut c = WsClient::connect(&w.s).await;
    c.auth_ok(w.bob.creds()).await;
    let reply = c.request("subscribe", json!({"model": "board"})).await;
    assert_eq!(reply["status"], "error", "{reply}");
    assert_eq!(reply["message"], "Forbidden", "{reply}");

    let (status, body) = call(
        &w.s,
        Method::PUT,
        &format!("/groups/{}", w.bob.id),
        &w.admin.basic(),
        Some(json!({"group": "editors"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c.subscribe_ok(json!({"model": "board"})).await;
    let id = create_as(&w.s, &w.admin, "board", json!({"name": "news"})).await;
    change(&c.event().await, "post", "board", &id);
    change(&admin.event().await, "post", "board", &id);

    let (status, body) = call(
        &w.s,
        Method::DELETE,
        &format!("/groups/{}", w.bob.id),
        &w.admin.basic(),
        Some(json!({"group": "editors"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    update_as(&w.s, &w.admin, "board", &id, json!({"name": "more news"})).await;
    change(&admin.event().await, "put", "board", &id);
    c.expect_no_event(QUIET).await;
    let reply = c.request("subscribe", json!({"model": "board"})).await;
    assert_eq!(reply["message"], "Forbidden", "{reply}");
    c.assert_alive().await;
}

#[tokio::test]
async fn a_new_auth_replaces_the_identity_and_rechecks_subscriptions() {
    let w = world(&[]).await;
    let mut c = subscribed(&w.s, &w.admin, json!({"model": "board"})).await;
    c.subscribe_ok(json!({"model": "item"})).await;
    let id = create_as(&w.s, &w.admin, "board", json!({"name": "a"})).await;
    change(&c.event().await, "post", "board", &id);

    // Alice may read item but not board.
    c.auth_ok(w.alice.creds()).await;
    update_as(&w.s, &w.admin, "board", &id, json!({"name": "b"})).await;
    c.expect_no_event(QUIET).await;
    let item = create_as(&w.s, &w.admin, "item", json!({"name": "i"})).await;
    change(&c.event().await, "post", "item", &item);

    // Owner rules follow the new identity too.
    c.subscribe_ok(json!({"model": "owned"})).await;
    let bobs = create_as(&w.s, &w.bob, "owned", json!({"name": "bob's"})).await;
    c.expect_no_event(QUIET).await;
    c.auth_ok(w.bob.creds()).await;
    update_as(&w.s, &w.bob, "owned", &bobs, json!({"name": "bob's 2"})).await;
    change(&c.event().await, "put", "owned", &bobs);
}

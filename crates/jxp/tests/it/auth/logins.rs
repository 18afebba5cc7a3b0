//! Logins that coexist: each login has its own token pair, which its own logout, a refresh,
//! `logout?all=true`, a password change, expiry or the cap on logins per user ends; the others
//! keep working, over REST and on their sockets.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{NOTES, assert_forbidden, assert_login_failed, eventually};
use crate::harness::{
    Auth, Session, TestServer, World, create_as, get, login, login_as, put, refresh, session_of,
    try_login,
};
use crate::realtime::client::{QUIET, WsClient};
use crate::realtime::support::{assert_deauth, change};

/// A route only a logged-in user may read.
const PRIVATE_ROUTE: &str = "/api/user";

async fn world(env: &[(&str, &str)]) -> World {
    World::start(&[("notes", NOTES)], env, ["Alice", "Bob"]).await
}

/// A socket authenticated with a login's token and subscribed to `notes`.
async fn socket(s: &TestServer, session: &Session) -> WsClient {
    let mut c = WsClient::connect(s).await;
    c.auth_ok(json!({"token": session.token})).await;
    c.subscribe_ok(json!({"model": "notes"})).await;
    c
}

/// Bob writes a note; answers its id.
async fn note(w: &World) -> String {
    create_as(&w.s, &w.bob, "notes", json!({"text": "hi"})).await
}

#[track_caller]
fn assert_logged_out(got: &(StatusCode, Value), context: &str) {
    assert_eq!(got.0, StatusCode::OK, "{context}: {}", got.1);
    assert_eq!(
        got.1,
        json!({"status": "ok", "message": "User logged out"}),
        "{context}"
    );
}

async fn assert_works(s: &TestServer, auth: &Auth, context: &str) {
    let (status, body) = get(s, PRIVATE_ROUTE, auth).await;
    assert_eq!(status, StatusCode::OK, "{context}: {body}");
}

async fn assert_refused(s: &TestServer, session: &Session, context: &str) {
    assert_forbidden(&get(s, PRIVATE_ROUTE, &session.bearer()).await, context);
}

/// The stored `model` records (`token` or `refreshtoken`) of a user, as an admin lists them.
async fn records_of(w: &World, model: &str, user_id: &str) -> Vec<Value> {
    let (status, body) = get(
        &w.s,
        &format!("/api/{model}?filter[user_id]={user_id}&limit=1000"),
        &w.admin.basic(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn two_logins_work_side_by_side_until_one_logs_out() {
    let w = world(&[]).await;
    for route in ["/logout", "/login/logout"] {
        let a = login_as(&w.s, &w.alice).await;
        let b = login_as(&w.s, &w.alice).await;
        assert_ne!(a.token, b.token);
        assert_eq!(a.apikey, b.apikey, "one API key across logins");
        assert_works(&w.s, &a.bearer(), "the first login").await;
        assert_works(&w.s, &b.bearer(), "the second login").await;
        let mut on_a = socket(&w.s, &a).await;
        let mut on_b = socket(&w.s, &b).await;
        let id = note(&w).await;
        change(&on_a.event().await, "post", "notes", &id);
        change(&on_b.event().await, "post", "notes", &id);

        assert_logged_out(&get(&w.s, route, &a.bearer()).await, route);
        assert_refused(&w.s, &a, "the logged-out token, at once").await;
        assert_login_failed(
            &refresh(&w.s, "/refresh", &a.refresh).await,
            "the logged-out login's refresh token",
        );
        assert_works(&w.s, &b.bearer(), "the other login").await;
        assert_deauth(&on_a.event().await, on_a.client_id.as_deref());
        on_b.expect_no_event(QUIET).await;

        let id = note(&w).await;
        change(&on_b.event().await, "post", "notes", &id);
        on_a.expect_no_event(QUIET).await;
        let (status, body) = refresh(&w.s, "/refresh", &b.refresh).await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
    }
}

#[tokio::test]
async fn a_refresh_renews_its_own_login_only() {
    let w = world(&[]).await;
    let a = login_as(&w.s, &w.alice).await;
    let b = login_as(&w.s, &w.alice).await;
    let mut on_a = socket(&w.s, &a).await;
    let mut on_b = socket(&w.s, &b).await;

    let (status, body) = refresh(&w.s, "/refresh", &a.refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let renewed = session_of(body);
    assert_works(&w.s, &renewed.bearer(), "the renewed token").await;
    assert_refused(&w.s, &a, "the token the refresh replaced").await;
    assert_works(&w.s, &b.bearer(), "the other login").await;
    assert_deauth(&on_a.event().await, on_a.client_id.as_deref());
    on_b.expect_no_event(QUIET).await;

    // Renewing the other login leaves the renewed one alone.
    let (status, body) = refresh(&w.s, "/login/refresh", &b.refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_works(&w.s, &session_of(body).bearer(), "b renewed").await;
    assert_works(&w.s, &renewed.bearer(), "a renewed, after b's refresh").await;
    assert_refused(&w.s, &b, "b before its refresh").await;
    assert_deauth(&on_b.event().await, on_b.client_id.as_deref());
    // A refresh token works once.
    assert_login_failed(
        &refresh(&w.s, "/refresh", &a.refresh).await,
        "a's spent refresh token",
    );
    assert_works(
        &w.s,
        &renewed.bearer(),
        "a reused refresh token ends nothing",
    )
    .await;
}

#[tokio::test]
async fn logout_all_ends_every_login_of_the_user() {
    let w = world(&[]).await;
    let others = login_as(&w.s, &w.bob).await;
    for route in ["/logout?all=true", "/login/logout?all=true"] {
        let a = login_as(&w.s, &w.alice).await;
        let b = login_as(&w.s, &w.alice).await;
        let mut on_a = socket(&w.s, &a).await;
        let mut on_b = socket(&w.s, &b).await;

        assert_logged_out(&get(&w.s, route, &a.bearer()).await, route);
        for (session, on) in [(&a, &mut on_a), (&b, &mut on_b)] {
            assert_refused(&w.s, session, route).await;
            assert_login_failed(&refresh(&w.s, "/refresh", &session.refresh).await, route);
            assert_deauth(&on.event().await, on.client_id.as_deref());
        }
        assert_works(&w.s, &a.key(), "the API key is permanent").await;
        assert_works(&w.s, &others.bearer(), "another user's login").await;
    }
    // Any credentials of the user may end every login.
    let a = login_as(&w.s, &w.alice).await;
    let b = login_as(&w.s, &w.alice).await;
    assert_logged_out(
        &get(&w.s, "/logout?all=true", &w.alice.basic()).await,
        "Basic",
    );
    assert_refused(&w.s, &a, "ended by Basic").await;
    assert_refused(&w.s, &b, "ended by Basic").await;
    let c = login_as(&w.s, &w.alice).await;
    assert_logged_out(&get(&w.s, "/logout?all=1", &c.key()).await, "API key");
    assert_refused(&w.s, &c, "ended by the API key").await;
    assert_works(
        &w.s,
        &login_as(&w.s, &w.alice).await.bearer(),
        "a new login",
    )
    .await;
}

#[tokio::test]
async fn a_logout_without_a_token_ends_no_login() {
    let w = world(&[]).await;
    let a = login_as(&w.s, &w.alice).await;
    for auth in [w.alice.basic(), a.key()] {
        for route in ["/logout", "/login/logout", "/logout?all=false"] {
            assert_logged_out(&get(&w.s, route, &auth).await, route);
        }
    }
    assert_works(
        &w.s,
        &a.bearer(),
        "no token was presented, none was revoked",
    )
    .await;
}

#[tokio::test]
async fn a_password_change_ends_every_login() {
    let w = world(&[]).await;
    let a = login_as(&w.s, &w.alice).await;
    let b = login_as(&w.s, &w.alice).await;
    let bobs = login_as(&w.s, &w.bob).await;
    let mut on_a = socket(&w.s, &a).await;
    let mut on_b = socket(&w.s, &b).await;

    // Alice changes her own password with one of her logins.
    let path = format!("/api/user/{}", w.alice.id);
    let (status, body) = put(&w.s, &path, &a.bearer(), json!({"password": "alice-new-1"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (session, on) in [(&a, &mut on_a), (&b, &mut on_b)] {
        assert_refused(&w.s, session, "a login from before the change").await;
        assert_login_failed(
            &refresh(&w.s, "/refresh", &session.refresh).await,
            "a refresh token from before the change",
        );
        assert_deauth(&on.event().await, on.client_id.as_deref());
    }
    assert_works(&w.s, &bobs.bearer(), "another user's login").await;
    let old = try_login(&w.s, &w.alice.email, &w.alice.password).await;
    assert_login_failed(&(old.status, old.body), "the old password");
    let c = login(&w.s, &w.alice.email, "alice-new-1").await;
    assert_works(&w.s, &c.bearer(), "a login with the new password").await;

    // An admin's change ends them too.
    let (status, body) = put(
        &w.s,
        &path,
        &w.admin.basic(),
        json!({"password": "alice-new-2"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_refused(&w.s, &c, "a login from before the admin's change").await;
    assert!(records_of(&w, "token", &w.alice.id).await.is_empty());
    assert!(records_of(&w, "refreshtoken", &w.alice.id).await.is_empty());
    // A change of anything else ends nothing.
    let d = login(&w.s, &w.alice.email, "alice-new-2").await;
    let (status, body) = put(&w.s, &path, &d.bearer(), json!({"name": "Alicia"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_works(&w.s, &d.bearer(), "after a name change").await;
}

#[tokio::test]
async fn expired_logins_are_removed_at_the_next_login() {
    let w = world(&[("TOKEN_EXPIRY", "1"), ("REFRESH_TOKEN_EXPIRY", "1")]).await;
    let old = login_as(&w.s, &w.alice).await;
    login_as(&w.s, &w.bob).await;
    assert_eq!(records_of(&w, "token", &w.alice.id).await.len(), 1);
    let expired = eventually(Duration::from_secs(5), || async {
        get(&w.s, PRIVATE_ROUTE, &old.bearer()).await.0 == StatusCode::FORBIDDEN
    })
    .await;
    assert!(expired, "the token still works 5 s after it expired");
    // Expired records stay until the user's next login removes them.
    assert_eq!(records_of(&w, "refreshtoken", &w.alice.id).await.len(), 1);

    login_as(&w.s, &w.alice).await;
    for model in ["token", "refreshtoken"] {
        let left = records_of(&w, model, &w.alice.id).await;
        assert_eq!(left.len(), 1, "{model}: only the new login's: {left:?}");
        let record = &left[0];
        assert!(record["session"].is_string(), "{record}");
        for private in ["password_fp", "access_token", "refresh_token"] {
            assert!(record.get(private).is_none(), "{record}");
        }
    }
    assert_eq!(
        records_of(&w, "token", &w.bob.id).await.len(),
        1,
        "another user's expired login waits for that user's next login"
    );
}

#[tokio::test]
async fn past_the_cap_a_login_ends_the_least_recently_renewed() {
    let w = world(&[]).await;
    let first = login_as(&w.s, &w.alice).await;
    let second = login_as(&w.s, &w.alice).await;
    // Renewing the first makes the second the oldest.
    let (status, body) = refresh(&w.s, "/refresh", &first.refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = session_of(body);
    let mut last = None;
    for _ in 0..98 {
        last = Some(login_as(&w.s, &w.alice).await);
    }
    assert_eq!(records_of(&w, "token", &w.alice.id).await.len(), 100);
    assert_works(&w.s, &second.bearer(), "the 100th login is within the cap").await;

    let newest = login_as(&w.s, &w.alice).await;
    assert_eq!(records_of(&w, "token", &w.alice.id).await.len(), 100);
    assert_eq!(records_of(&w, "refreshtoken", &w.alice.id).await.len(), 100);
    assert_refused(&w.s, &second, "the least recently renewed login").await;
    assert_login_failed(
        &refresh(&w.s, "/refresh", &second.refresh).await,
        "its refresh token",
    );
    assert_works(&w.s, &first.bearer(), "the renewed login").await;
    assert_works(&w.s, &last.unwrap().bearer(), "a recent login").await;
    assert_works(&w.s, &newest.bearer(), "the newest login").await;
}

#[tokio::test]
async fn records_from_before_logins_coexisted_still_work() {
    let w = world(&[]).await;
    let old = login_as(&w.s, &w.alice).await;
    // Records written before logins coexisted have no login id and no password fingerprint.
    for model in ["token", "refreshtoken"] {
        for record in records_of(&w, model, &w.alice.id).await {
            let path = format!("/api/{model}/{}", record["_id"].as_str().unwrap());
            let strip = json!({"session": null, "password_fp": null});
            let (status, body) = put(&w.s, &path, &w.admin.basic(), strip).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(body["data"]["session"].is_null(), "{body}");
        }
    }
    assert_works(&w.s, &old.bearer(), "an old token").await;
    let new = login_as(&w.s, &w.alice).await;
    assert_works(&w.s, &old.bearer(), "an old token after a new login").await;

    // The old refresh token renews the old pair, as one login.
    let (status, body) = refresh(&w.s, "/refresh", &old.refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let renewed = session_of(body);
    assert_refused(&w.s, &old, "the old token its refresh replaced").await;
    assert_works(&w.s, &renewed.bearer(), "the renewed old login").await;
    assert_works(&w.s, &new.bearer(), "the new login").await;
    assert_logged_out(&get(&w.s, "/logout", &renewed.bearer()).await, "logout");
    assert_refused(&w.s, &renewed, "after its logout").await;
    assert_works(
        &w.s,
        &new.bearer(),
        "the new login, after the other's logout",
    )
    .await;
}

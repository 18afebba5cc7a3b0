//! `POST /login`, `/refresh`, `/login/refresh`, `GET /logout`, `/login/logout` and token expiry.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{
    NOTES, assert_forbidden, assert_login_failed, eventually, is_long_hex, iso_to_unix, unix_now,
};
use crate::harness::{
    Auth, TestServer, create_user, get, keys_of, login, login_as, refresh, session_of, setup_admin,
    start, try_login,
};

/// A route only a logged-in user may read.
const PRIVATE_ROUTE: &str = "/api/user";

async fn server(env: &[(&str, &str)]) -> TestServer {
    start(&[("notes", NOTES)], env).await
}

fn is_iso_date(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

#[tokio::test]
async fn login_answers_a_session() {
    let s = server(&[]).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    let r = try_login(&s, &alice.email, &alice.password).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let body = r.body.as_object().unwrap();
    assert_eq!(
        keys_of(&r.body),
        [
            "apikey",
            "provider",
            "refresh_token",
            "refresh_token_expires",
            "token",
            "token_expires",
            "user_id"
        ],
        "{}",
        r.body
    );
    assert_eq!(body["user_id"], alice.id.as_str());
    for key in ["apikey", "token", "refresh_token"] {
        let v = body[key].as_str().unwrap();
        assert!(is_long_hex(v, 32), "{key} is not ≥128 bits of hex: {v}");
    }
    assert!(is_iso_date(&body["token_expires"]), "{}", r.body);
    assert!(is_iso_date(&body["refresh_token_expires"]), "{}", r.body);
    let now = jxp_model::now_iso();
    let token_expires = body["token_expires"].as_str().unwrap();
    let refresh_expires = body["refresh_token_expires"].as_str().unwrap();
    assert!(token_expires > now.as_str(), "{token_expires} <= {now}");
    assert!(
        refresh_expires > token_expires,
        "the refresh token outlives the access token by default"
    );
    assert!(
        body["provider"]
            .as_str()
            .is_some_and(|p| p.starts_with("http")),
        "{}",
        r.body
    );
    // The session works at once, all three ways.
    let session = session_of(r.body.clone());
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &session.bearer()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &session.key()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn login_email_is_case_insensitive() {
    let s = server(&[]).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    let session = login(&s, "ALICE@Example.COM", &alice.password).await;
    assert_eq!(session.user_id, alice.id);
    let session = login(&s, "  Alice@example.com ", &alice.password).await;
    assert_eq!(session.user_id, alice.id);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_fail_alike() {
    let s = server(&[]).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    let wrong = try_login(&s, &alice.email, "not-her-password").await;
    assert_login_failed(&(wrong.status, wrong.body.clone()), "wrong password");
    let unknown = try_login(&s, "nobody@example.com", &alice.password).await;
    assert_login_failed(&(unknown.status, unknown.body.clone()), "unknown email");
    assert_eq!(
        wrong.body, unknown.body,
        "the answer does not tell which part was wrong"
    );
    let empty = try_login(&s, &alice.email, "").await;
    assert_login_failed(&(empty.status, empty.body), "empty password");
    // A password differing only in case is a wrong password.
    let upper = try_login(&s, &alice.email, &alice.password.to_uppercase()).await;
    assert_login_failed(&(upper.status, upper.body), "password in upper case");
}

#[tokio::test]
async fn a_second_login_adds_a_token_and_keeps_the_apikey() {
    let s = server(&[]).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    let first = login_as(&s, &alice).await;
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &first.bearer()).await.0,
        StatusCode::OK
    );
    let second = login_as(&s, &alice).await;
    assert_ne!(first.token, second.token);
    assert_eq!(
        first.apikey, second.apikey,
        "the API key is permanent across logins"
    );
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &first.bearer()).await.0,
        StatusCode::OK,
        "logins coexist: the first token still works"
    );
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &second.bearer()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &second.key()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_rotates_the_token_and_the_refresh_token() {
    let s = server(&[]).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    for route in ["/refresh", "/login/refresh"] {
        let old = login_as(&s, &alice).await;
        let (status, body) = refresh(&s, route, &old.refresh).await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
        let obj = body.as_object().unwrap();
        for key in [
            "user_id",
            "token",
            "token_expires",
            "refresh_token",
            "refresh_token_expires",
        ] {
            assert!(obj.contains_key(key), "{route}: no {key}: {body}");
        }
        assert!(
            !obj.contains_key("apikey"),
            "{route}: a refresh does not hand out the API key: {body}"
        );
        let new = session_of(body);
        assert_eq!(new.user_id, alice.id);
        assert_ne!(new.token, old.token, "{route}");
        assert_ne!(new.refresh, old.refresh, "{route}");
        assert!(is_long_hex(&new.token, 32) && is_long_hex(&new.refresh, 32));
        // The old pair is gone, the new one works.
        assert_login_failed(
            &refresh(&s, route, &old.refresh).await,
            "reusing a rotated refresh token",
        );
        assert_forbidden(
            &get(&s, PRIVATE_ROUTE, &old.bearer()).await,
            "the access token before the refresh",
        );
        assert_eq!(
            get(&s, PRIVATE_ROUTE, &new.bearer()).await.0,
            StatusCode::OK
        );
        // The new refresh token rotates again.
        let (status, body) = refresh(&s, route, &new.refresh).await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
    }
}

#[tokio::test]
async fn refresh_refuses_what_is_not_a_refresh_token() {
    let s = server(&[]).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    let session = login_as(&s, &alice).await;
    for route in ["/refresh", "/login/refresh"] {
        assert_login_failed(&refresh(&s, route, &session.token).await, "an access token");
        assert_login_failed(
            &refresh(&s, route, session.apikey.as_deref().unwrap()).await,
            "an API key",
        );
        assert_login_failed(&refresh(&s, route, &"0".repeat(64)).await, "unknown");
        let none = crate::harness::post(&s, route, &Auth::None, json!({})).await;
        assert_login_failed(&none, "no refresh token");
    }
    // None of that disturbed the session.
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &session.bearer()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_revokes_the_token_and_the_refresh_token_at_once() {
    let s = server(&[]).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    for route in ["/logout", "/login/logout"] {
        let session = login_as(&s, &alice).await;
        assert_eq!(
            get(&s, PRIVATE_ROUTE, &session.bearer()).await.0,
            StatusCode::OK
        );
        let (status, body) = get(&s, route, &session.bearer()).await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
        assert_eq!(body, json!({"status": "ok", "message": "User logged out"}));
        assert_forbidden(
            &get(&s, PRIVATE_ROUTE, &session.bearer()).await,
            "a token after logout",
        );
        assert_forbidden(
            &get(&s, route, &session.bearer()).await,
            "a second logout with the revoked token",
        );
        assert_login_failed(
            &refresh(&s, "/refresh", &session.refresh).await,
            "the refresh token after logout",
        );
        // The API key is permanent (as in JXP) and the user can log in again.
        assert_eq!(
            get(&s, PRIVATE_ROUTE, &session.key()).await.0,
            StatusCode::OK
        );
    }
    let again = login_as(&s, &alice).await;
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &again.bearer()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_needs_credentials() {
    let s = server(&[]).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    let session = login_as(&s, &alice).await;
    for route in ["/logout", "/login/logout"] {
        assert_forbidden(&get(&s, route, &Auth::None).await, route);
        assert_forbidden(
            &get(&s, route, &Auth::bearer(&"ab".repeat(32))).await,
            "an unknown token",
        );
    }
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &session.bearer()).await.0,
        StatusCode::OK,
        "nobody else's session was touched"
    );
}

#[tokio::test]
async fn an_access_token_expires_and_refresh_still_works() {
    let s = server(&[("TOKEN_EXPIRY", "1")]).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    let session = login_as(&s, &alice).await;
    let expires = session.body["token_expires"].as_str().unwrap().to_owned();
    let left = iso_to_unix(&expires) - unix_now();
    assert!(
        (0..=3).contains(&left),
        "TOKEN_EXPIRY=1 gives a token that expires within a second or so: {expires} ({left} s)"
    );
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &session.bearer()).await.0,
        StatusCode::OK,
        "the fresh token works"
    );
    let expired = eventually(Duration::from_secs(5), || async {
        get(&s, PRIVATE_ROUTE, &session.bearer()).await.0 == StatusCode::FORBIDDEN
    })
    .await;
    assert!(expired, "the token still works 5 s after it expired");
    assert_forbidden(
        &get(&s, PRIVATE_ROUTE, &session.bearer()).await,
        "an expired token",
    );
    // The refresh token outlives the access token.
    let (status, body) = refresh(&s, "/refresh", &session.refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let renewed = session_of(body);
    assert_eq!(
        get(&s, PRIVATE_ROUTE, &renewed.bearer()).await.0,
        StatusCode::OK,
        "the renewed token works"
    );
}

#[tokio::test]
async fn concurrent_logins_and_logouts_of_one_user_all_succeed() {
    let s = server(&[]).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    // Several logins at once each add their own login; none disturbs another.
    let first = login_as(&s, &alice).await;
    let replies = futures_util::future::join_all(
        (0..8).map(|_| try_login(&s, &alice.email, &alice.password)),
    )
    .await;
    let mut tokens = vec![first.token.clone()];
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        tokens.push(r.body["token"].as_str().unwrap().to_owned());
    }
    for t in &tokens {
        assert_eq!(
            get(&s, PRIVATE_ROUTE, &Auth::bearer(t)).await.0,
            StatusCode::OK,
            "every login's token works"
        );
    }
    // Several logouts of every login at once: all succeed, and no token is left.
    let basic = alice.basic();
    let outs =
        futures_util::future::join_all((0..4).map(|_| get(&s, "/logout?all=true", &basic))).await;
    for (status, body) in &outs {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    for t in &tokens {
        assert_forbidden(
            &get(&s, PRIVATE_ROUTE, &Auth::bearer(t)).await,
            "logged out",
        );
    }
}

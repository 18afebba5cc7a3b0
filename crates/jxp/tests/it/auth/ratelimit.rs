//! Login attempts are rate-limited per client: a burst, then 429 with `Retry-After`.

use reqwest::StatusCode;

use super::support::assert_login_failed;
use crate::harness::{Account, Reply, TestServer, create_user, setup_admin, start, try_login};

async fn world(env: &[(&str, &str)]) -> (TestServer, Account) {
    let s = start(&[], env).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    (s, alice)
}

#[track_caller]
fn assert_limited(r: &Reply, context: &str) {
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{context}: {}",
        r.body
    );
    assert!(r.body["code"].is_string(), "{context}: {}", r.body);
    assert!(r.body["message"].is_string(), "{context}: {}", r.body);
    for secret in ["token", "apikey", "refresh_token"] {
        assert!(r.body.get(secret).is_none(), "{context}: {}", r.body);
    }
    let retry = r
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("{context}: no Retry-After header"))
        .to_str()
        .unwrap();
    let secs: u64 = retry
        .parse()
        .unwrap_or_else(|_| panic!("{context}: Retry-After is not seconds: {retry}"));
    assert!(secs >= 1, "{context}: Retry-After {secs}");
}

#[tokio::test]
async fn the_fourth_attempt_in_a_row_is_refused() {
    let (s, alice) = world(&[
        ("LOGIN_RATE_LIMIT_ENABLED", "true"),
        ("LOGIN_RATE_BURST", "3"),
        ("LOGIN_RATE_PER_MINUTE", "1"),
    ])
    .await;
    // Right and wrong passwords both count.
    let r = try_login(&s, &alice.email, &alice.password).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = try_login(&s, &alice.email, "wrong").await;
    assert_login_failed(&(r.status, r.body), "second attempt");
    let r = try_login(&s, "nobody@example.com", "wrong").await;
    assert_login_failed(&(r.status, r.body), "third attempt");
    // The fourth is refused even with the right password, and so is the next.
    let r = try_login(&s, &alice.email, &alice.password).await;
    assert_limited(&r, "fourth attempt (right password)");
    let r = try_login(&s, &alice.email, "wrong").await;
    assert_limited(&r, "fifth attempt (wrong password)");
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        secs <= 60,
        "one attempt a minute refills within 60 s: {secs}"
    );
}

#[tokio::test]
async fn no_limit_when_disabled() {
    let (s, alice) = world(&[
        ("LOGIN_RATE_LIMIT_ENABLED", "false"),
        ("LOGIN_RATE_BURST", "3"),
        ("LOGIN_RATE_PER_MINUTE", "1"),
    ])
    .await;
    for i in 0..20 {
        let r = if i % 2 == 0 {
            try_login(&s, &alice.email, "wrong").await
        } else {
            try_login(&s, &alice.email, &alice.password).await
        };
        let want = if i % 2 == 0 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!(r.status, want, "attempt {}: {}", i + 1, r.body);
    }
}

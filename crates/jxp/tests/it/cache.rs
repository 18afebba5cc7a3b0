//! The response cache: off by default; when on, a repeated GET is a hit, a committed write
//! makes it a miss at once, and only admins reach `/cache/*`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestServer;

async fn get_with_cache_header(
    s: &TestServer,
    path: &str,
    basic: Option<(&str, &str)>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = s.client.get(format!("{}{path}", s.base));
    if let Some((user, password)) = basic {
        req = req.basic_auth(user, Some(password));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let header = resp
        .headers()
        .get("jxp-cache")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, header, resp.json().await.unwrap_or(Value::Null))
}

/// Adds the admin `admin@example.com` (password `secret-pass`) from the command line's side.
async fn add_admin(s: &mut TestServer) {
    s.add_admin("admin@example.com", "secret-pass", "Admin")
        .await;
}

#[tokio::test]
async fn cached_answers_go_stale_on_write_and_admins_see_stats() {
    let mut s = TestServer::open_with(&[("CACHE_ENABLED", "true"), ("CACHE_TTL", "60")]).await;
    add_admin(&mut s).await;
    let id = s.create("test", json!({"foo": "one"})).await;

    let (_, first, _) = get_with_cache_header(&s, "/api/test", None).await;
    let (_, second, body) = get_with_cache_header(&s, "/api/test", None).await;
    assert_eq!(
        (first.as_deref(), second.as_deref()),
        (Some("miss"), Some("hit"))
    );
    assert_eq!(body["data"][0]["foo"], "one");

    assert_eq!(
        s.put(&format!("/api/test/{id}"), json!({"foo": "two"}))
            .await
            .0,
        StatusCode::OK
    );
    let (_, after_write, body) = get_with_cache_header(&s, "/api/test", None).await;
    assert_eq!(
        after_write.as_deref(),
        Some("miss"),
        "a write makes cached answers stale"
    );
    assert_eq!(body["data"][0]["foo"], "two");
    let (_, one, body) = get_with_cache_header(&s, &format!("/api/test/{id}"), None).await;
    assert_eq!(
        (one.as_deref(), body["data"]["foo"].as_str()),
        (Some("miss"), Some("two"))
    );

    // JXP's admin-only answer, which says whether the caller is signed in at all.
    for path in ["/cache/stats", "/cache/clear"] {
        let (status, _, body) = get_with_cache_header(&s, path, None).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::FORBIDDEN,
                json!({"code": "Forbidden", "message": "User not logged in"})
            ),
            "{path}"
        );
    }
    let admin = Some(("admin@example.com", "secret-pass"));
    let (status, _, stats) = get_with_cache_header(&s, "/cache/stats", admin).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["cache_enabled"], true);
    assert!(
        stats["hits"].as_u64().unwrap() >= 1 && stats["keys"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    let (status, _, _) = get_with_cache_header(&s, "/cache/clear", admin).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, stats) = get_with_cache_header(&s, "/cache/stats", admin).await;
    assert_eq!(stats["keys"], 0);
}

#[tokio::test]
async fn the_cache_is_off_by_default() {
    let mut s = TestServer::open().await;
    let (_, header, _) = get_with_cache_header(&s, "/api/test", None).await;
    assert_eq!(header, None);
    add_admin(&mut s).await;
    let (status, _, stats) = get_with_cache_header(
        &s,
        "/cache/stats",
        Some(("admin@example.com", "secret-pass")),
    )
    .await;
    assert_eq!(
        (status, stats),
        (StatusCode::OK, json!({"cache_enabled": false}))
    );
}

#[tokio::test]
async fn populated_answers_are_not_cached() {
    let s = TestServer::open_with(&[("CACHE_ENABLED", "true")]).await;
    let link = s.create("link", json!({"name": "before"})).await;
    s.create("test", json!({"ref_id": link})).await;
    let path = "/api/test?populate=ref_id";
    let (status, header, body) = get_with_cache_header(&s, path, None).await;
    assert_eq!((status, header), (StatusCode::OK, None), "{body}");
    assert_eq!(
        s.put(&format!("/api/link/{link}"), json!({"name": "after"}))
            .await
            .0,
        StatusCode::OK
    );
    let (_, _, body) = get_with_cache_header(&s, path, None).await;
    assert_eq!(body["data"][0]["link"]["name"], "after", "{body}");
}

/// The `jxp-cache` and `jxp-cache-key` headers of a GET.
async fn cache_headers(s: &TestServer, path: &str) -> (Option<String>, Option<String>) {
    let resp = s
        .client
        .get(format!("{}{path}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    (header("jxp-cache"), header("jxp-cache-key"))
}

#[tokio::test]
async fn every_cached_answer_names_its_key_and_says_hit_or_miss() {
    let s = TestServer::open_with(&[("CACHE_ENABLED", "true")]).await;
    let id = s.create("test", json!({"foo": "one"})).await;
    for path in [
        "/api/test".to_owned(),
        "/api/test?sort=foo".to_owned(),
        format!("/api/test/{id}"),
    ] {
        let (first, key) = cache_headers(&s, &path).await;
        let (second, key_again) = cache_headers(&s, &path).await;
        assert_eq!(
            (first.as_deref(), second.as_deref()),
            (Some("miss"), Some("hit")),
            "{path}"
        );
        assert!(key.as_deref().is_some_and(|k| !k.is_empty()), "{path}");
        assert_eq!(key, key_again, "{path}: one request, one key");
    }
    let (_, a) = cache_headers(&s, "/api/test").await;
    let (_, b) = cache_headers(&s, "/api/test?sort=foo").await;
    assert_ne!(a, b, "another query string is another key");
}

#[tokio::test]
async fn a_signed_in_user_who_is_not_an_admin_may_not_use_the_cache_routes() {
    use crate::harness::{World, get};
    let w = World::start(&[], &[("CACHE_ENABLED", "true")], ["Alice", "Bob"]).await;
    for path in ["/cache/stats", "/cache/clear"] {
        assert_eq!(
            get(&w.s, path, &w.alice.basic()).await,
            (
                StatusCode::FORBIDDEN,
                json!({"code": "Forbidden", "message": "User not admin"})
            ),
            "{path}"
        );
        assert_eq!(get(&w.s, path, &w.admin.basic()).await.0, StatusCode::OK);
    }
}

//! Preflights and the `Access-Control-*` headers of real answers: a listed origin is allowed
//! with credentials on every route and on error answers, other origins get nothing they could
//! use, `*` allows everyone without credentials, and unset adds nothing at all.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{APP, STRANGER, cors_header_names, from_origin, header, header_items, preflight};
use crate::harness::{Reply, TestServer};

/// Every kind of route, and one that does not exist.
const PATHS: [&str; 14] = [
    "/api/test",
    "/api/test/0123456789abcdef01234567",
    "/query/test",
    "/count/test",
    "/login",
    "/logout",
    "/setup",
    "/call/test/anything",
    "/groups/someone",
    "/model",
    "/model/test",
    "/healthz",
    "/websocket",
    "/no/such/route",
];

/// What a browser needs to let a page of `origin` read the answer with credentials.
#[track_caller]
fn assert_allowed_with_credentials(r: &Reply, origin: &str, context: &str) {
    assert_eq!(
        header(r, "access-control-allow-origin"),
        Some(origin),
        "{context}: {:?}",
        r.headers
    );
    assert_eq!(
        header(r, "access-control-allow-credentials"),
        Some("true"),
        "{context}"
    );
    // Caches must not hand one origin's answer to another.
    assert!(
        header_items(r, "vary").contains(&"origin".to_owned()),
        "{context}: {:?}",
        r.headers
    );
}

#[track_caller]
fn assert_preflight_allows_the_api(r: &Reply, context: &str) {
    assert!(r.status.is_success(), "{context}: {}", r.status);
    let methods = header_items(r, "access-control-allow-methods");
    for m in ["get", "post", "put", "patch", "delete", "options"] {
        assert!(methods.contains(&m.to_owned()), "{context}: {methods:?}");
    }
    let headers = header_items(r, "access-control-allow-headers");
    for h in ["authorization", "x-api-key", "content-type"] {
        assert!(headers.contains(&h.to_owned()), "{context}: {headers:?}");
    }
    assert_eq!(
        header(r, "access-control-max-age"),
        Some("3600"),
        "{context}"
    );
}

#[tokio::test]
async fn a_listed_origin_gets_its_preflight_answered_on_every_route() {
    let s = TestServer::open_with(&[(
        "CORS_ORIGINS",
        "https://other.example, http://app.example:3000",
    )])
    .await;
    for path in PATHS {
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let r = preflight(&s, path, APP, method).await;
            let context = format!("preflight of {method} {path}");
            assert_preflight_allows_the_api(&r, &context);
            assert_allowed_with_credentials(&r, APP, &context);
        }
    }
    let r = preflight(&s, "/api/test", "https://other.example", "PUT").await;
    assert_allowed_with_credentials(&r, "https://other.example", "the second listed origin");
}

#[tokio::test]
async fn an_unlisted_origin_is_not_allowed() {
    let s = TestServer::open_with(&[("CORS_ORIGINS", APP)]).await;
    // A near miss in scheme, host or port is another origin.
    for origin in [
        STRANGER,
        "null",
        "http://app.example:3001",
        "https://app.example:3000",
        "http://app.example",
    ] {
        for path in ["/api/test", "/login", "/no/such/route"] {
            let r = preflight(&s, path, origin, "POST").await;
            assert_eq!(
                header(&r, "access-control-allow-origin"),
                None,
                "preflight of {path} from {origin}: {:?}",
                r.headers
            );
        }
        // The request itself is answered (CORS is the browser's rule), but without the header
        // the browser does not let the page read it.
        let r = from_origin(&s, Method::GET, "/api/test", origin, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(header(&r, "access-control-allow-origin"), None, "{origin}");
    }
}

#[tokio::test]
async fn answers_to_a_listed_origin_carry_the_headers_errors_included() {
    let s = TestServer::open_with(&[
        ("CORS_ORIGINS", APP),
        ("BODY_LIMIT", "1kb"),
        ("LOGIN_RATE_LIMIT_ENABLED", "true"),
        ("LOGIN_RATE_BURST", "1"),
        ("LOGIN_RATE_PER_MINUTE", "1"),
    ])
    .await;
    let created = from_origin(
        &s,
        Method::POST,
        "/api/test",
        APP,
        &[],
        Some(json!({"foo": "cross-origin"}).to_string()),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_allowed_with_credentials(&created, APP, "POST /api/test");

    let listed = from_origin(&s, Method::GET, "/api/test", APP, &[], None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(
        listed.body["data"][0]["foo"], "cross-origin",
        "{}",
        listed.body
    );
    assert_allowed_with_credentials(&listed, APP, "GET /api/test");

    let login = json!({"email": "nobody@example.com", "password": "wrong"}).to_string();
    let refused = from_origin(&s, Method::POST, "/login", APP, &[], Some(login.clone())).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    let limited = from_origin(&s, Method::POST, "/login", APP, &[], Some(login)).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert!(header(&limited, "retry-after").is_some());
    let missing = from_origin(&s, Method::GET, "/no/such/route", APP, &[], None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    let big = json!({"foo": "x".repeat(2048)}).to_string();
    let too_big = from_origin(&s, Method::POST, "/api/test", APP, &[], Some(big)).await;
    assert_eq!(
        too_big.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        too_big.body
    );
    let wrong_verb = from_origin(&s, Method::PATCH, "/login", APP, &[], None).await;
    assert_eq!(wrong_verb.status, StatusCode::METHOD_NOT_ALLOWED);

    for (what, r) in [
        ("401", &refused),
        ("429", &limited),
        ("404", &missing),
        ("413", &too_big),
        ("405", &wrong_verb),
    ] {
        assert_allowed_with_credentials(r, APP, what);
        assert!(r.body["code"].is_string(), "{what}: {}", r.body);
        // The page may read what it needs to back off or report.
        let exposed = header_items(r, "access-control-expose-headers");
        for h in ["retry-after", "jxp-cache", "content-disposition"] {
            assert!(exposed.contains(&h.to_owned()), "{what}: {exposed:?}");
        }
    }
}

#[tokio::test]
async fn star_allows_every_origin_without_credentials() {
    let s = TestServer::open_with(&[("CORS_ORIGINS", "*")]).await;
    for origin in [APP, STRANGER] {
        let r = preflight(&s, "/api/test", origin, "POST").await;
        assert_preflight_allows_the_api(&r, origin);
        assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
        // Browsers refuse credentials with `*`; headers such as Authorization still pass.
        assert_eq!(header(&r, "access-control-allow-credentials"), None);

        let login = json!({"email": "nobody@example.com", "password": "wrong"});
        let r = from_origin(
            &s,
            Method::POST,
            "/login",
            origin,
            &[],
            Some(login.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
        assert_eq!(header(&r, "access-control-allow-credentials"), None);
    }
}

#[tokio::test]
async fn unset_or_empty_adds_no_cors_headers() {
    for env in [vec![], vec![("CORS_ORIGINS", " ")]] {
        let s = TestServer::open_with(&env).await;
        let r = preflight(&s, "/api/test", APP, "POST").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{env:?}");
        assert_eq!(cors_header_names(&r), Vec::<String>::new(), "{env:?}");
        let r = from_origin(&s, Method::GET, "/api/test", APP, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(cors_header_names(&r), Vec::<String>::new(), "{env:?}");
    }
}

#[test]
fn a_bad_origin_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jxp"))
        .arg("serve")
        .current_dir(dir.path())
        .env("PORT", "0")
        .env("MODEL_DIR", dir.path().join("models"))
        .env("DATABASE_URL", dir.path().join("jxp.db"))
        .env("CORS_ORIGINS", "http://app.example:3000, app.example/ui")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CORS_ORIGINS"), "{err}");
    assert!(err.contains("\"app.example/ui\""), "{err}");
    assert!(err.contains("scheme://host[:port]"), "{err}");
    // It stopped before opening the database.
    assert!(!dir.path().join("jxp.db").exists());
}

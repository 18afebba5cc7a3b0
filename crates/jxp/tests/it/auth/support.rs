//! Helpers of the auth tests only: the models and secret they share, what a refusal and a
//! failed login look like, a second in-process view of the database, and reading JWTs.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use jxp_core::{App, Identity, WriteOptions};
use jxp_query::ListParams;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::TestServer;

/// A shared secret long enough for `SHARED_SECRET` (at least 16 characters).
pub const SECRET: &str = "0123456789abcdef0123";

/// A model any logged-in user may create in and anyone may read; handy for proving who a
/// request was made as (the created document's `_owner_id`).
pub const NOTES: &str = r#"
name = "Note"
[fields]
text = "String"
[perms]
all = "r"
user = "c"
admin = "crud"
"#;

/// A model anyone may do anything with.
pub const OPEN: &str = r#"
name = "Open"
[fields]
title = "String"
[perms]
all = "crud"
"#;

/// A model users create in, and only the owner reads, updates and deletes.
pub const OWNED: &str = r#"
name = "Owned"
[fields]
title = "String"
[perms]
owner = "crud"
user = "c"
"#;

/// A model the custom group `editors` may read and update; only admins create and delete.
pub const MEMBERS: &str = r#"
name = "Members"
[fields]
title = "String"
[perms]
editors = "ru"
admin = "crud"
"#;

/// Asserts the 403 of a refused request: `{code: "Forbidden", message: "<why>"}`.
#[track_caller]
pub fn assert_forbidden(got: &(StatusCode, Value), context: &str) {
    assert_eq!(got.0, StatusCode::FORBIDDEN, "{context}: {}", got.1);
    assert_eq!(got.1["code"], "Forbidden", "{context}: {}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{context}: no message: {}",
        got.1
    );
}

/// Asserts JXP's failed-login answer: 401 `{status: "fail", message: "Authentication failed",
/// code}`.
#[track_caller]
pub fn assert_login_failed(got: &(StatusCode, Value), context: &str) {
    assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{context}: {}", got.1);
    assert_eq!(got.1["status"], "fail", "{context}: {}", got.1);
    assert_eq!(
        got.1["message"], "Authentication failed",
        "{context}: {}",
        got.1
    );
    assert!(got.1["code"].is_string(), "{context}: no code: {}", got.1);
    for secret in ["token", "apikey", "refresh_token", "user_id"] {
        assert!(got.1.get(secret).is_none(), "{context}: {}", got.1);
    }
}

/// Polls `check` every 100 ms for up to `limit`; answers whether it ever returned true.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An in-process view of the server's database that sees everything (the system identity):
/// to check what a refused write left behind, even on models nobody may read over HTTP. It
/// reads through the server's own app, as a SQLite store is open in one place at a time.
pub struct Oracle {
    app: App,
}

impl Oracle {
    pub async fn open(s: &TestServer) -> Self {
        Oracle {
            app: s.app().clone(),
        }
    }

    /// Live documents of `model`.
    pub async fn count(&self, model: &str) -> u64 {
        self.app
            .count(&Identity::system(), model, &ListParams::default())
            .await
            .unwrap()
    }

    /// One document as stored (private fields removed), soft-deleted ones included.
    pub async fn doc(&self, model: &str, id: &str) -> Option<Value> {
        match self.app.get_one(&Identity::system(), model, id, true).await {
            Ok(d) => Some(Value::Object(d)),
            Err(jxp_core::CoreError::NotFound(_)) => None,
            Err(e) => panic!("oracle read {model}/{id}: {e}"),
        }
    }

    /// Creates a document as the server itself (for models nobody may write over HTTP).
    pub async fn create(&self, model: &str, body: Value) -> String {
        let Value::Object(map) = body else {
            panic!("body must be an object")
        };
        let doc = self
            .app
            .create(&Identity::system(), model, map, WriteOptions::default())
            .await
            .unwrap();
        doc["_id"].as_str().unwrap().to_owned()
    }
}

/// Whether `s` is at least `min` hex digits.
pub fn is_long_hex(s: &str, min: usize) -> bool {
    s.len() >= min && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Base64url without padding (as in JWTs).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes standard or url-safe base64, with or without padding; ignores whitespace.
pub fn b64_decode(text: &str) -> Vec<u8> {
    let standard: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && *c != '=')
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    STANDARD_NO_PAD
        .decode(standard)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text:?}"))
}

/// The payload of a JWT, decoded.
pub fn jwt_payload(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {jwt}");
    serde_json::from_slice(&b64_decode(parts[1])).unwrap()
}

/// Now as seconds since the epoch.
pub fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[test]
fn base64_round_trips() {
    assert_eq!(
        crate::harness::basic_header("admin@example.com", "pw"),
        "Basic YWRtaW5AZXhhbXBsZS5jb206cHc="
    );
    assert_eq!(b64_decode("YWI="), b"ab");
    assert_eq!(b64_decode("YWJj"), b"abc");
    assert_eq!(b64_decode("YW\r\nJj"), b"abc");
    assert_eq!(b64_decode(&b64url(b"\xfb\xff")), b"\xfb\xff");
}

/// Seconds since the epoch of an ISO 8601 UTC date such as `2024-03-20T10:00:00.000Z`.
pub fn iso_to_unix(iso: &str) -> i64 {
    let num = |r: std::ops::Range<usize>| -> i64 { iso[r].parse().unwrap() };
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss) = (num(11..13), num(14..16), num(17..19));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

#[test]
fn iso_dates_convert() {
    assert_eq!(iso_to_unix("1970-01-01T00:00:00.000Z"), 0);
    assert_eq!(iso_to_unix("2024-03-01T12:30:05.123Z"), 1_709_296_205);
}

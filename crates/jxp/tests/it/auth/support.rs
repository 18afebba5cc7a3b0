//! Helpers shared by the auth tests: servers with the login rate limit off, accounts (first
//! admin through `POST /setup`, users created by the admin), logins, and requests that carry
//! credentials in any of the four ways.

use std::time::Duration;

use jxp_core::{App, Identity, WriteOptions};
use jxp_query::ListParams;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::TestServer;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-secret-1";
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

/// Starts a server on `models` with `env`. The login rate limit is off unless `env` turns it
/// on, so tests that log in many times are not throttled (each server has its own limiter).
pub async fn start(models: &[(&str, &str)], env: &[(&str, &str)]) -> TestServer {
    let mut all = vec![("LOGIN_RATE_LIMIT_ENABLED", "false")];
    // Later settings win, so a test's own value replaces the default above.
    all.extend_from_slice(env);
    TestServer::start(models, &all).await
}

/// How a request identifies itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// `Authorization: Basic base64(email:password)`.
    Basic(String, String),
    /// `Authorization: Bearer <token or JWT>`.
    Bearer(String),
    /// `X-API-Key: <key>`.
    Key(String),
    /// `?apikey=<key>`.
    QueryKey(String),
    /// A raw `Authorization` header value.
    Raw(String),
}

impl Auth {
    pub fn basic(email: &str, password: &str) -> Self {
        Auth::Basic(email.to_owned(), password.to_owned())
    }

    pub fn bearer(token: &str) -> Self {
        Auth::Bearer(token.to_owned())
    }

    pub fn key(key: &str) -> Self {
        Auth::Key(key.to_owned())
    }
}

/// A whole answer: status, headers and body (JSON, or the text as a JSON string).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Sends a request with credentials and an optional JSON body.
pub async fn send(
    s: &TestServer,
    method: Method,
    path: &str,
    auth: &Auth,
    body: Option<&Value>,
) -> Reply {
    let mut url = format!("{}{path}", s.base);
    if let Auth::QueryKey(k) = auth {
        url.push(if path.contains('?') { '&' } else { '?' });
        url.push_str("apikey=");
        url.push_str(&urlencode(k));
    }
    let mut req = s.client.request(method, url);
    req = match auth {
        Auth::None | Auth::QueryKey(_) => req,
        Auth::Basic(e, p) => req.header(
            "authorization",
            format!("Basic {}", b64(format!("{e}:{p}").as_bytes())),
        ),
        Auth::Bearer(t) => req.header("authorization", format!("Bearer {t}")),
        Auth::Key(k) => req.header("x-api-key", k.as_str()),
        Auth::Raw(v) => req.header("authorization", v.as_str()),
    };
    if let Some(b) = body {
        req = req.json(b);
    }
    finish(req).await
}

/// Sends a urlencoded form body.
pub async fn send_form(
    s: &TestServer,
    method: Method,
    path: &str,
    auth: &Auth,
    form: &str,
) -> (StatusCode, Value) {
    let req = s
        .client
        .request(method, format!("{}{path}", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    let req = match auth {
        Auth::Basic(e, p) => req.header(
            "authorization",
            format!("Basic {}", b64(format!("{e}:{p}").as_bytes())),
        ),
        Auth::Bearer(t) => req.header("authorization", format!("Bearer {t}")),
        Auth::Key(k) => req.header("x-api-key", k.as_str()),
        other => panic!("send_form does not support {other:?}"),
    };
    let r = finish(req).await;
    (r.status, r.body)
}

async fn finish(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    auth: &Auth,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let r = send(s, method, path, auth, body.as_ref()).await;
    (r.status, r.body)
}

pub async fn get(s: &TestServer, path: &str, auth: &Auth) -> (StatusCode, Value) {
    call(s, Method::GET, path, auth, None).await
}

pub async fn post(s: &TestServer, path: &str, auth: &Auth, body: Value) -> (StatusCode, Value) {
    call(s, Method::POST, path, auth, Some(body)).await
}

pub async fn put(s: &TestServer, path: &str, auth: &Auth, body: Value) -> (StatusCode, Value) {
    call(s, Method::PUT, path, auth, Some(body)).await
}

pub async fn delete(s: &TestServer, path: &str, auth: &Auth) -> (StatusCode, Value) {
    call(s, Method::DELETE, path, auth, None).await
}

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

/// A user and the password they log in with.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub password: String,
}

impl Account {
    pub fn basic(&self) -> Auth {
        Auth::basic(&self.email, &self.password)
    }
}

/// Creates the first admin through `POST /setup`.
pub async fn setup_admin(s: &TestServer) -> Account {
    let (status, body) = post(
        s,
        "/setup",
        &Auth::None,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "name": "Admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Account {
        id: body["user_id"].as_str().unwrap().to_owned(),
        email: ADMIN_EMAIL.to_owned(),
        password: ADMIN_PASSWORD.to_owned(),
    }
}

/// Creates a non-admin user through `POST /api/user` as `admin`.
pub async fn create_user(s: &TestServer, admin: &Auth, name: &str) -> Account {
    let email = format!("{name}@example.com");
    let password = format!("{name}-password");
    let (status, body) = post(
        s,
        "/api/user",
        admin,
        json!({"name": name, "email": email, "password": password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["admin"], false, "{body}");
    Account {
        id: body["data"]["_id"].as_str().unwrap().to_owned(),
        email,
        password,
    }
}

/// What `/login` (or `/refresh`) answered.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub token: String,
    pub apikey: Option<String>,
    pub refresh: String,
    pub body: Value,
}

impl Session {
    pub fn bearer(&self) -> Auth {
        Auth::bearer(&self.token)
    }

    pub fn key(&self) -> Auth {
        Auth::key(self.apikey.as_deref().unwrap())
    }

    fn from_body(body: Value) -> Self {
        let text = |k: &str| {
            body[k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k}: {body}"))
                .to_owned()
        };
        Session {
            user_id: text("user_id"),
            token: text("token"),
            apikey: body["apikey"].as_str().map(str::to_owned),
            refresh: text("refresh_token"),
            body,
        }
    }
}

/// `POST /login` as the answer came.
pub async fn try_login(s: &TestServer, email: &str, password: &str) -> Reply {
    send(
        s,
        Method::POST,
        "/login",
        &Auth::None,
        Some(&json!({"email": email, "password": password})),
    )
    .await
}

/// Logs in; fails the test if that does not work.
pub async fn login(s: &TestServer, email: &str, password: &str) -> Session {
    let r = try_login(s, email, password).await;
    assert_eq!(r.status, StatusCode::OK, "login {email}: {}", r.body);
    Session::from_body(r.body)
}

pub async fn login_as(s: &TestServer, account: &Account) -> Session {
    login(s, &account.email, &account.password).await
}

/// `POST <route>` with `Authorization: Bearer <refresh token>`.
pub async fn refresh(s: &TestServer, route: &str, refresh_token: &str) -> (StatusCode, Value) {
    post(s, route, &Auth::bearer(refresh_token), json!({})).await
}

pub fn session_of(body: Value) -> Session {
    Session::from_body(body)
}

/// Sets a user's custom groups (replacing them) as `admin`.
pub async fn set_groups(s: &TestServer, admin: &Auth, user_id: &str, groups: &[&str]) {
    let (status, body) = post(
        s,
        &format!("/groups/{user_id}"),
        admin,
        json!({"group": groups}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["groups"], json!(groups), "{body}");
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

/// A second, in-process view of the server's database that sees everything (the system
/// identity): to check what a refused write left behind, even on models nobody may read over
/// HTTP.
pub struct Oracle {
    app: App,
}

impl Oracle {
    pub async fn open(s: &TestServer) -> Self {
        Oracle {
            app: jxp::build_app(&s.config().unwrap()).await.unwrap(),
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

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn b64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64url without padding (as in JWTs).
pub fn b64url(bytes: &[u8]) -> String {
    b64(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Decodes standard or url-safe base64, with or without padding; ignores whitespace.
pub fn b64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\r' | b'\n' | b' ' | b'\t' => continue,
            other => panic!("not base64: {:?}", other as char),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// The payload of a JWT, decoded.
pub fn jwt_payload(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {jwt}");
    serde_json::from_slice(&b64_decode(parts[1])).unwrap()
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
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
    assert_eq!(b64(b"admin@example.com:pw"), "YWRtaW5AZXhhbXBsZS5jb206cHc=");
    assert_eq!(b64(b"ab"), "YWI=");
    assert_eq!(b64(b"abc"), "YWJj");
    assert_eq!(b64_decode("YWI="), b"ab");
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

//! Requests to a test server over real HTTP: anonymous ones as `TestServer` methods, and ones
//! that carry credentials in any of the ways a client may send them. Every answer comes back
//! as `(status, json)`, the text as a JSON string when it is not JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Account, TestServer};

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

    /// Adds the credentials that travel in headers.
    fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None | Auth::QueryKey(_) => req,
            Auth::Basic(e, p) => req.header("authorization", basic_header(e, p)),
            Auth::Bearer(t) => req.header("authorization", format!("Bearer {t}")),
            Auth::Key(k) => req.header("x-api-key", k.as_str()),
            Auth::Raw(v) => req.header("authorization", v.as_str()),
        }
    }
}

/// The `Authorization` header value of Basic credentials.
pub fn basic_header(email: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{email}:{password}")))
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
    let mut req = auth.apply(s.client.request(method, url));
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
        Auth::Basic(..) | Auth::Bearer(_) | Auth::Key(_) => auth.apply(req),
        other => panic!("send_form does not support {other:?}"),
    };
    let r = finish(req).await;
    (r.status, r.body)
}

/// Sends a built request; answers the whole reply.
pub async fn finish(req: reqwest::RequestBuilder) -> Reply {
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

/// The `data` of what `?explain=<how>` answers an admin for `path`, which has a query
/// string already.
pub async fn list_explained(s: &TestServer, admin: &Account, path: &str, how: &str) -> Value {
    let path = format!("{path}&explain={how}");
    let body = call_ok(s, Method::GET, &path, &Auth::of(Some(admin)), None).await;
    body["data"].clone()
}

/// A request that must succeed; answers the body.
pub async fn call_ok(
    s: &TestServer,
    method: Method,
    path: &str,
    auth: &Auth,
    body: Option<Value>,
) -> Value {
    let (status, resp) = call(s, method.clone(), path, auth, body).await;
    assert_eq!(status, StatusCode::OK, "{method} {path}: {resp}");
    resp
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

/// Anonymous requests.
impl TestServer {
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let r = send(self, method, path, &Auth::None, body).await;
        (r.status, r.body)
    }

    /// A request with a raw body and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let r = finish(req).await;
        (r.status, r.body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::PUT, path, Some(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, None).await
    }

    /// Creates a document and answers its `_id`; fails the test if it cannot.
    pub async fn create(&self, model: &str, body: Value) -> String {
        let (status, resp) = self.post(&format!("/api/{model}"), body).await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        resp["data"]["_id"].as_str().unwrap().to_owned()
    }

    /// How many documents of `model` exist, deleted ones included.
    pub async fn total(&self, model: &str) -> u64 {
        let (status, body) = self
            .get(&format!(
                "/count/{model}?filter[_deleted]=$exists:true&showDeleted=true"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["count"].as_u64().unwrap()
    }
}

/// Asserts an error answer: the status and the `{code, message}` shape, and that the message
/// mentions `needle`.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, needle: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    let obj = got
        .1
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {}", got.1));
    assert!(
        obj.get("code").is_some_and(Value::is_string),
        "no code: {}",
        got.1
    );
    let message = obj
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        message.contains(needle),
        "message {message:?} does not mention {needle:?}"
    );
}

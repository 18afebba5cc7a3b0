//! HTTP clients for the server: connection settings, the /healthz reachability check and
//! authentication (optional `POST /login` bearer token and `X-API-Key`).

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, RequestBuilder, StatusCode, redirect};
use serde_json::{Value, json};

use crate::cli::Common;
use crate::target::Target;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// One client = one keep-alive HTTP/1.1 connection (at most one idle connection is kept), no
/// proxy and no redirects (so a request can never leave the checked loopback host).
pub fn build(headers: &HeaderMap) -> Result<Client> {
    build_pooled(headers, 1)
}

/// Like [`build`], but keeping up to `max_idle` keep-alive connections, for concurrent requests
/// from one client (the realtime scenarios' open-loop writer).
pub fn build_pooled(headers: &HeaderMap, max_idle: usize) -> Result<Client> {
    Client::builder()
        .http1_only()
        .pool_max_idle_per_host(max_idle)
        .tcp_nodelay(true)
        .no_proxy()
        .redirect(redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .default_headers(headers.clone())
        .build()
        .context("cannot build the HTTP client")
}

/// Fails with a clear message unless `GET /healthz` answers 2xx `{"status":"ok"}`.
pub async fn check_health(client: &Client, target: &Target) -> Result<()> {
    let url = target.url("/healthz");
    let unreachable = |why: String| {
        anyhow!(
            "jxp server unreachable at {}: GET /healthz {why} (is it running?)",
            target.base()
        )
    };
    let resp = client
        .get(&url)
        .timeout(HEALTH_TIMEOUT)
        .send()
        .await
        .map_err(|e| unreachable(format!("failed: {}", error_chain(&e))))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| unreachable(format!("failed: {}", error_chain(&e))))?;
    if !status.is_success() {
        return Err(unreachable(format!(
            "answered {status}: {}",
            snippet(&body)
        )));
    }
    let ok = serde_json::from_str::<Value>(&body)
        .ok()
        .is_some_and(|v| v.get("status").and_then(Value::as_str) == Some("ok"));
    if !ok {
        bail!(
            "unexpected GET {url} answer {status}: {} (expected {{\"status\":\"ok\"}})",
            snippet(&body)
        );
    }
    Ok(())
}

/// Checks that the server answers `/healthz` (asked without credentials), then logs in: the
/// start of every jxp scenario.
pub async fn connect(target: &Target, common: &Common) -> Result<Auth> {
    let anonymous = build(&HeaderMap::new())?;
    check_health(&anonymous, target).await?;
    authenticate(&anonymous, target, common).await
}

/// The credentials of a run: request headers, and the login token itself (for WebSocket `auth`).
pub struct Auth {
    pub headers: HeaderMap,
    /// From `POST /login`, when `--email/--password` were given (one login per run).
    pub token: Option<String>,
}

/// Headers to send on every request: `X-API-Key` if `--apikey`, and a bearer token obtained
/// from `POST /login` (once) if `--email/--password`.
pub async fn authenticate(client: &Client, target: &Target, common: &Common) -> Result<Auth> {
    let mut headers = HeaderMap::new();
    if let Some(key) = &common.apikey {
        headers.insert(
            X_API_KEY,
            secret_header(key, "--apikey is not a valid header value")?,
        );
    }
    let mut token = None;
    if let (Some(email), Some(password)) = (&common.email, &common.password) {
        // The login request itself carries the API key too, if any.
        let t = login(client, target, &headers, email, password).await?;
        headers.insert(
            AUTHORIZATION,
            secret_header(
                &format!("Bearer {t}"),
                "the login token is not a valid header value",
            )?,
        );
        token = Some(t);
    }
    Ok(Auth { headers, token })
}

async fn login(
    client: &Client,
    target: &Target,
    headers: &HeaderMap,
    email: &str,
    password: &str,
) -> Result<String> {
    let url = target.url("/login");
    let request = client
        .post(&url)
        .headers(headers.clone())
        .json(&json!({ "email": email, "password": password }));
    let (status, body) = send(request, &format!("POST {url}")).await?;
    if !status.is_success() {
        bail!(
            "login as {email} failed: POST {url} answered {status}: {}",
            snippet(&body)
        );
    }
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow!("login answer has no \"token\": {}", snippet(&body)))
}

/// A header value that is a credential, kept out of debug output; `what` says which, if it
/// cannot be a header value.
pub fn secret_header(text: &str, what: &'static str) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(text).context(what)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Sends a request and reads the answer: its status and body. Errors are the transport's
/// own words; [`send`] adds which request it was.
pub async fn exchange(request: RequestBuilder) -> Result<(StatusCode, String)> {
    let resp = request
        .send()
        .await
        .map_err(|e| anyhow!("{}", error_chain(&e)))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| anyhow!("reading the answer: {}", error_chain(&e)))?;
    Ok((status, body))
}

/// [`exchange`], with `what` (`GET <url>`) naming the request in errors.
pub async fn send(request: RequestBuilder, what: &str) -> Result<(StatusCode, String)> {
    exchange(request)
        .await
        .map_err(|e| anyhow!("{what} failed: {e}"))
}

/// The JSON answer of a request that must succeed; anything else is an error naming `what`.
pub async fn json_answer(request: RequestBuilder, what: &str) -> Result<Value> {
    let (status, body) = send(request, what).await?;
    if !status.is_success() {
        bail!("{what} answered {status}: {}", snippet(&body));
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: not JSON"))
}

/// An error and its sources, `a: b: c` (reqwest's Display omits the cause).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// The first 200 characters of a response body, for error messages.
pub fn snippet(body: &str) -> String {
    let mut s: String = body.chars().take(200).collect();
    if s.len() < body.len() {
        s.push('…');
    }
    s
}

//! Cross-origin access (`CORS_ORIGINS`): preflights and `Access-Control-*` headers on real
//! HTTP answers, the `Origin` check of the WebSocket upgrade, and a real browser page on a
//! second origin that calls the API and opens the feed.

mod browser;
mod headers;
mod websocket;

use reqwest::Method;

use crate::harness::{Reply, TestServer, finish};

/// The origin the servers under test list in `CORS_ORIGINS`.
pub const APP: &str = "http://app.example:3000";
/// An origin no server under test lists.
pub const STRANGER: &str = "https://stranger.example";

/// Sends `method path` as a browser page of `origin` would, with extra headers and an optional
/// raw JSON body; answers the whole reply.
pub async fn from_origin(
    s: &TestServer,
    method: Method,
    path: &str,
    origin: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    let mut req = s
        .client
        .request(method, format!("{}{path}", s.base))
        .header("origin", origin);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    finish(req).await
}

/// The preflight a browser sends before a `method` request with credentials and a JSON body.
pub async fn preflight(s: &TestServer, path: &str, origin: &str, method: &str) -> Reply {
    from_origin(
        s,
        Method::OPTIONS,
        path,
        origin,
        &[
            ("access-control-request-method", method),
            (
                "access-control-request-headers",
                "authorization,content-type,x-api-key",
            ),
        ],
        None,
    )
    .await
}

/// One header's value as text, if the answer has it.
pub fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

/// The comma-separated items of every value of a header, in lower case.
pub fn header_items(r: &Reply, name: &str) -> Vec<String> {
    r.headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

/// The names of the `Access-Control-*` headers of an answer.
pub fn cors_header_names(r: &Reply) -> Vec<String> {
    r.headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

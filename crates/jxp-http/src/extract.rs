//! Extractors that answer bad input in our error shape: JSON (or form) bodies with a size
//! limit (another content type is a 415), path parameters, query-string pairs, and the
//! caller's identity.

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use base64::Engine;
use jxp_core::{Credentials, Identity};
use jxp_model::Document;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::{AppState, HttpSettings};

/// The body's media type (lower case, without parameters) and its bytes, read up to the body
/// limit (413 beyond) within the body timeout (408 beyond: a client that stops sending does
/// not hold the request open).
async fn read_body(req: Request, http: &HttpSettings) -> Result<(Option<String>, Bytes), ApiError> {
    let limit = http.body_limit;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let read = axum::body::to_bytes(req.into_body(), limit);
    let bytes = tokio::time::timeout(http.body_timeout, read)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    http.body_timeout.as_secs()
                ),
            )
        })?
        .map_err(|e| {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                ApiError::too_large(format!("request body is larger than {limit} bytes"))
            } else {
                ApiError::bad_request("could not read the request body")
            }
        })?;
    Ok((content_type, bytes))
}

fn unsupported(content_type: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("content type {content_type} is not supported; send application/json"),
    )
}

/// A JSON request body of any shape; an empty body is `null`, which the routes answer with
/// their own "missing" message.
pub struct AnyJson(pub Value);

impl FromRequest<AppState> for AnyJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (content_type, bytes) = read_body(req, &state.http).await?;
        if let Some(other) = content_type.filter(|c| c != "application/json") {
            return Err(unsupported(&other));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(AnyJson(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(AnyJson)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))
    }
}

/// A JSON object, as the body of a create or update must be (and as each line of `jxp
/// import` must be, which answers a bad one with the same message).
pub fn json_object(bytes: &[u8]) -> Result<Document, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request("the body must be a JSON object")),
    }
}

/// A request body as a JSON object: `application/json` (or no content type), or a urlencoded
/// form as JXP's clients may send (values are strings, which the model casts). An empty body
/// is an empty object. JSON labelled as a form, which is what `curl -d` sends without `-H`,
/// is refused rather than read as one nameless field that stores nothing.
pub struct JsonBody(pub Document);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (content_type, bytes) = read_body(req, &state.http).await?;
        let form = match content_type.as_deref() {
            Some("application/json") | None => false,
            Some("application/x-www-form-urlencoded") => true,
            Some(other) => return Err(unsupported(other)),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Document::new()));
        }
        if !form {
            return json_object(&bytes).map(JsonBody);
        }
        // A form's names and values are percent-encoded, so a raw `{` or `[` first is JSON.
        if bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| matches!(b, b'{' | b'['))
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body is JSON but its content type is application/x-www-form-urlencoded \
                 (curl -d sends that): send Content-Type: application/json",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| ApiError::bad_request("malformed form body"))?;
        Ok(JsonBody(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        ))
    }
}

/// Path parameters, with failures in our error shape.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// The query string as ordered `(key, value)` pairs; repeated keys are kept.
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// Whether a flag like `_permaDelete=1` or `showDeleted=true` is set.
    pub fn flag(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|(k, v)| k == name && matches!(v.as_str(), "1" | "true" | "yes" | ""))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(raw)
            .map(QueryPairs)
            .map_err(|_| ApiError::bad_request("malformed query string"))
    }
}

/// The caller, from `Authorization: Basic …`, `Authorization: Bearer …` (access token or
/// JWT), `X-API-Key: …` or `?apikey=…`. No credentials is anonymous; bad ones are a 403.
pub struct Caller(pub Identity);

/// The credentials a request carries, by JXP's order: Authorization, then the API key header,
/// then the query string.
pub fn credentials(parts: &Parts) -> Result<Credentials, ApiError> {
    if let Some(auth) = parts.headers.get(AUTHORIZATION) {
        let auth = auth
            .to_str()
            .map_err(|_| ApiError::forbidden("the Authorization header is not readable"))?
            .trim();
        let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Ok(Credentials::Bearer(rest.to_owned()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::forbidden("the Basic credentials are not base64 of email:password")
                })?;
            let (email, password) = decoded.split_once(':').ok_or_else(|| {
                ApiError::forbidden("the Basic credentials are not base64 of email:password")
            })?;
            return Ok(Credentials::Basic {
                email: email.to_owned(),
                password: password.to_owned(),
            });
        }
        return Err(ApiError::forbidden(
            "unsupported Authorization scheme: use Basic or Bearer",
        ));
    }
    if let Some(key) = parts.headers.get("x-api-key") {
        let key = key
            .to_str()
            .map_err(|_| ApiError::forbidden("the X-API-Key header is not readable"))?;
        return Ok(Credentials::ApiKey(key.trim().to_owned()));
    }
    let query = parts.uri.query().unwrap_or_default();
    if query.contains("apikey=") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        if let Some((_, key)) = pairs.into_iter().find(|(k, _)| k == "apikey") {
            return Ok(Credentials::ApiKey(key));
        }
    }
    Ok(Credentials::None)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let creds = credentials(parts)?;
        let who = state.app.authenticate(&creds).await?;
        if let Some(id) = who.user_id() {
            crate::observe::note_user(id);
        }
        Ok(Caller(who))
    }
}

/// The address login attempts are counted against: the peer, or the first `X-Forwarded-For`
/// hop when the server is told it sits behind a proxy.
pub struct ClientKey(pub String);

impl FromRequestParts<AppState> for ClientKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.http.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty());
            if let Some(ip) = forwarded {
                return Ok(ClientKey(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();
        Ok(ClientKey(peer))
    }
}

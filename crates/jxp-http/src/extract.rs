//! Extractors that answer bad input in our error shape: JSON (or form) bodies with a size
//! limit, path parameters, query-string pairs, and the caller's identity.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use jxp_core::Identity;
use jxp_model::Document;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// A request body as a JSON object: `application/json`, or a urlencoded form (values are
/// strings, which the model casts). An empty body is an empty object.
pub struct JsonBody(pub Document);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
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
        let limit = state.http.body_limit;
        let bytes: Bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                if std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                {
                    ApiError::too_large(format!("request body is larger than {limit} bytes"))
                } else {
                    ApiError::bad_request("could not read the request body")
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Document::new()));
        }
        match content_type.as_deref() {
            Some("application/json") | None => {
                let value: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
                match value {
                    Value::Object(map) => Ok(JsonBody(map)),
                    _ => Err(ApiError::bad_request("the body must be a JSON object")),
                }
            }
            Some("application/x-www-form-urlencoded") => {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                    .map_err(|_| ApiError::bad_request("malformed form body"))?;
                Ok(JsonBody(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                ))
            }
            Some(other) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type {other} is not supported; send application/json"),
            )),
        }
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

/// The caller. Every request is anonymous until authentication is wired in; the model's
/// `all` letters then decide what is allowed.
pub struct Caller(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller(Identity::anonymous()))
    }
}

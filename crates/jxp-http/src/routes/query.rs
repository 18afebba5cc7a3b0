//! `POST /query/:model`: a list narrowed by a Mongo-style filter in the body
//! (`{"query": {...}}`), with the list's URL parameters and answer. Also the body extractor
//! that `/query` and `/aggregate` share, which takes any JSON value (a pipeline is an array).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use serde_json::Value;

use super::api::{json_bytes, list_json, list_request};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, Caller, QueryPairs};

/// A JSON request body of any shape; an empty body is `null`, which the routes answer with
/// their own "missing" message.
pub(crate) struct AnyJson(pub Value);

impl FromRequest<AppState> for AnyJson {
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
        if let Some(other) = content_type.filter(|c| c != "application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type {other} is not supported; send application/json"),
            ));
        }
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
            return Ok(AnyJson(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(AnyJson)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))
    }
}

pub(crate) async fn query(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(slug): ApiPath<String>,
    query: QueryPairs,
    AnyJson(body): AnyJson,
) -> Result<Response, ApiError> {
    let model = state.app.model(&slug)?;
    // JXP's /query ignores the top-level full-text `search`: conditions belong in the body.
    let pairs: Vec<(String, String)> = query.0.into_iter().filter(|(k, _)| k != "search").collect();
    let req = list_request(model, &pairs)?;
    let filter = body.as_object().and_then(|o| o.get("query"));
    let outcome = state.app.query(&who, &slug, req, filter).await?;
    // Not cached: the answer depends on the body, and the response cache keys on the URL.
    Ok(json_bytes(
        list_json(&state, "query", &slug, &pairs, outcome)?,
        None,
    ))
}

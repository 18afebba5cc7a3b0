//! `POST /query/:model`: a list narrowed by a Mongo-style filter in the body
//! (`{"query": {...}}`), with the list's URL parameters and answer.

use axum::extract::State;
use axum::response::Response;

use super::api::{json_bytes, list_json, list_request};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AnyJson, ApiPath, Caller, QueryPairs};

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

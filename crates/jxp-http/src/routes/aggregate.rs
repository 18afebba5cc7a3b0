//! `POST /aggregate/:model`: a pipeline, as a JSON array or `{"query": [...]}`, answered as
//! `{"data": [...]}` under the list's response-size limit.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::api::{json_bytes, sized_json};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::AnyJson;
use crate::extract::{ApiPath, Caller};

pub(crate) async fn aggregate(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(slug): ApiPath<String>,
    AnyJson(body): AnyJson,
) -> Result<Response, ApiError> {
    let pipeline = match &body {
        Value::Array(_) => Some(&body),
        Value::Object(o) => o.get("query"),
        _ => None,
    };
    let data = state.app.aggregate(&who, &slug, pipeline).await?;
    Ok(json_bytes(
        sized_json(&state, &slug, &json!({ "data": data }))?,
        None,
    ))
}

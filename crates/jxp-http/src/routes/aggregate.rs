//! `POST /aggregate/:model`: a pipeline, as a JSON array or `{"query": [...]}`, answered as
//! `{"data": [...]}` under the list's response-size limit; with `?explain=true` (admins), the
//! SQL and plan of the part the database runs as one grouping.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::{json_bytes, sized_json};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::AnyJson;
use crate::extract::{ApiPath, Caller, QueryPairs};

pub(crate) async fn aggregate(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(slug): ApiPath<String>,
    query: QueryPairs,
    AnyJson(body): AnyJson,
) -> Result<Response, ApiError> {
    let pipeline = match &body {
        Value::Array(_) => Some(&body),
        Value::Object(o) => o.get("query"),
        _ => None,
    };
    if query.flag("explain") {
        let explained = state.app.explain_aggregate(&who, &slug, pipeline).await?;
        let (sql, plan) = explained.map_or((None, Vec::new()), |(sql, plan)| (Some(sql), plan));
        return Ok(axum::Json(
            json!({ "data": { "model": slug, "in_database": sql.is_some(), "sql": sql, "plan": plan } }),
        )
        .into_response());
    }
    let data = state.app.aggregate(&who, &slug, pipeline).await?;
    Ok(json_bytes(
        sized_json(&state, &slug, &json!({ "data": data }))?,
        None,
    ))
}

//! `GET|POST /call/:model/:fn` and `/call/:model/:id/:fn`: registered functions, answered as
//! `{ "data": <what the function returned> }`.

use axum::Json;
use axum::extract::State;
use jxp_core::{CallVerb, Identity};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AnyJson, ApiPath, Caller, QueryPairs};

/// A GET's query string as the function's body: an object of strings (a repeated key keeps
/// its last value).
fn query_body(query: QueryPairs) -> Value {
    Value::Object(
        query
            .0
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<Map<String, Value>>(),
    )
}

async fn call(
    state: &AppState,
    who: &Identity,
    (slug, id, name): (&str, Option<&str>, &str),
    verb: CallVerb,
    body: Value,
) -> Result<Json<Value>, ApiError> {
    let data = state.app.call(who, slug, id, name, verb, body).await?;
    Ok(Json(json!({ "data": data })))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath((slug, name)): ApiPath<(String, String)>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let body = query_body(query);
    call(&state, &who, (&slug, None, &name), CallVerb::Get, body).await
}

pub(crate) async fn post(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath((slug, name)): ApiPath<(String, String)>,
    AnyJson(body): AnyJson,
) -> Result<Json<Value>, ApiError> {
    call(&state, &who, (&slug, None, &name), CallVerb::Post, body).await
}

pub(crate) async fn get_item(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath((slug, id, name)): ApiPath<(String, String, String)>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let body = query_body(query);
    call(&state, &who, (&slug, Some(&id), &name), CallVerb::Get, body).await
}

pub(crate) async fn post_item(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath((slug, id, name)): ApiPath<(String, String, String)>,
    AnyJson(body): AnyJson,
) -> Result<Json<Value>, ApiError> {
    call(
        &state,
        &who,
        (&slug, Some(&id), &name),
        CallVerb::Post,
        body,
    )
    .await
}

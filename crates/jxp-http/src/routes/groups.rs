//! `/groups/:user_id`: read (GET), add (PUT), replace (POST) and remove (DELETE) a user's
//! custom groups. Bodies name groups as `group` (a string or an array) or `group[0]`,
//! `group[1]`, … in JSON or a form; DELETE may also take `?group=`.

use axum::Json;
use axum::extract::State;
use jxp_core::GroupChange;
use jxp_model::Document;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, Caller, JsonBody, QueryPairs};

/// The group names in a body, in order.
fn group_names(body: &Document) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    let mut push = |v: &Value| -> Result<(), ApiError> {
        match v {
            Value::String(s) => {
                out.push(s.trim().to_owned());
                Ok(())
            }
            _ => Err(ApiError::bad_request("group names must be strings")),
        }
    };
    if let Some(v) = body.get("group") {
        match v {
            Value::Array(items) => items.iter().try_for_each(&mut push)?,
            other => push(other)?,
        }
    }
    let mut indexed: Vec<(usize, &Value)> = body
        .iter()
        .filter_map(|(k, v)| {
            let i = k.strip_prefix("group[")?.strip_suffix(']')?.parse().ok()?;
            Some((i, v))
        })
        .collect();
    indexed.sort_by_key(|(i, _)| *i);
    for (_, v) in indexed {
        push(v)?;
    }
    Ok(out)
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(Value::Object(state.app.groups(&who, &user_id).await?)))
}

async fn change(
    state: AppState,
    who: jxp_core::Identity,
    user_id: String,
    change: GroupChange,
    names: Vec<String>,
) -> Result<Json<Value>, ApiError> {
    if names.is_empty() && change != GroupChange::Replace {
        return Err(ApiError::bad_request(
            "Group required: send group=<name> or group[0]=<name>",
        ));
    }
    let doc = state
        .app
        .change_groups(&who, &user_id, change, names)
        .await?;
    Ok(Json(Value::Object(doc)))
}

pub(crate) async fn add(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(user_id): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let names = group_names(&body)?;
    change(state, who, user_id, GroupChange::Add, names).await
}

pub(crate) async fn replace(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(user_id): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let names = group_names(&body)?;
    change(state, who, user_id, GroupChange::Replace, names).await
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(user_id): ApiPath<String>,
    query: QueryPairs,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut names = group_names(&body)?;
    names.extend(
        query
            .0
            .into_iter()
            .filter(|(k, _)| k == "group" || k.starts_with("group["))
            .map(|(_, v)| v),
    );
    change(state, who, user_id, GroupChange::Remove, names).await
}

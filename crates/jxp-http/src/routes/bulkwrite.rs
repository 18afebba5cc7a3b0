//! `POST /bulkwrite/:model`: the operations as a JSON array, or `{"query": [...], "ordered":
//! bool}`, answered as `{"data": <result>}` with MongoDB's BulkWriteResult counters
//! (`nInserted`, `nUpserted`, `nMatched`, `nModified`, `nRemoved`, `insertedIds`, `upserted`,
//! `writeErrors`) and one entry per operation that ran under `results`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jxp_core::{BulkOutcome, WriteOptions};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AnyJson, ApiPath, Caller, QueryPairs};

pub(crate) async fn bulkwrite(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(slug): ApiPath<String>,
    query: QueryPairs,
    AnyJson(body): AnyJson,
) -> Result<Response, ApiError> {
    let (ops, ordered) = match &body {
        Value::Array(ops) => (ops, true),
        Value::Object(o) => match (o.get("query"), o.get("ordered")) {
            (Some(Value::Array(ops)), None | Some(Value::Bool(true))) => (ops, true),
            (Some(Value::Array(ops)), Some(Value::Bool(false))) => (ops, false),
            (Some(Value::Array(_)), Some(_)) => {
                return Err(ApiError::bad_request("\"ordered\" must be true or false"));
            }
            _ => return Err(ApiError::bad_request("query missing or not of type array")),
        },
        _ => return Err(ApiError::bad_request("query missing or not of type array")),
    };
    let opts = WriteOptions {
        silence: query.flag("_silence"),
        ..WriteOptions::default()
    };
    let outcome = state
        .app
        .bulk_write(&who, &slug, ops, ordered, opts)
        .await?;
    Ok(Json(json!({ "data": result_json(outcome) })).into_response())
}

fn result_json(outcome: BulkOutcome) -> Value {
    let (mut inserted, mut upserted, mut matched, mut modified, mut removed) = (0, 0, 0, 0, 0);
    let mut inserted_ids = Vec::new();
    let mut upserted_ids = Vec::new();
    let mut write_errors = Vec::new();
    let mut results = Vec::with_capacity(outcome.reports.len());
    for report in outcome.reports {
        let mut entry = Map::new();
        entry.insert("index".into(), json!(report.index));
        entry.insert("op".into(), json!(report.kind.name()));
        match report.result {
            Ok(done) => {
                entry.insert("status".into(), json!("ok"));
                if let Some(id) = &done.inserted {
                    inserted += 1;
                    inserted_ids.push(json!({ "index": report.index, "_id": id }));
                    entry.insert("_id".into(), json!(id));
                }
                if let Some(id) = &done.upserted {
                    upserted += 1;
                    upserted_ids.push(json!({ "index": report.index, "_id": id }));
                    entry.insert("upserted".into(), json!(id));
                }
                matched += done.matched;
                modified += done.modified;
                removed += done.removed;
                entry.insert("matched".into(), json!(done.matched));
                entry.insert("modified".into(), json!(done.modified));
                entry.insert("removed".into(), json!(done.removed));
            }
            Err(e) => {
                let error = ApiError::from(e);
                let mut body = error.body();
                body["status"] = json!(error.status.as_u16());
                write_errors.push(json!({
                    "index": report.index,
                    "op": report.kind.name(),
                    "code": body["code"],
                    "status": body["status"],
                    "message": body["message"],
                }));
                entry.insert("status".into(), json!("error"));
                entry.insert("error".into(), body);
            }
        }
        results.push(Value::Object(entry));
    }
    json!({
        "ok": if write_errors.is_empty() { 1 } else { 0 },
        "nInserted": inserted,
        "nUpserted": upserted,
        "nMatched": matched,
        "nModified": modified,
        "nRemoved": removed,
        "insertedIds": inserted_ids,
        "upserted": upserted_ids,
        "writeErrors": write_errors,
        "results": results,
    })
}

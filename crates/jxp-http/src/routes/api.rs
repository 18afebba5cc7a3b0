//! The REST document routes: list, get one, create, update (PUT and `/update`), delete, count.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use jxp_core::{DeleteOptions, ListOutcome, ListRequest, WriteOptions};
use jxp_model::Document;
use jxp_query::parse_list_params;
use serde_json::{Value, json};

use crate::AppState;
use crate::cache::ResponseCache;
use crate::error::ApiError;
use crate::extract::{ApiPath, Caller, JsonBody, QueryPairs};

/// The options a create or update takes from the query string and the body.
fn write_options(query: &QueryPairs, body: &mut Document) -> WriteOptions {
    WriteOptions {
        silence: take_silence(query, body),
        password_override: query.flag("password_override"),
    }
}

/// `_silence` may come in the query string or the body; it is never stored.
fn take_silence(query: &QueryPairs, body: &mut Document) -> bool {
    let in_body = match body.remove("_silence") {
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "true" | "yes"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    };
    in_body || query.flag("_silence")
}

/// Answers from the response cache when it has a fresh answer, else computes, keeps and
/// answers. `jxp-cache: hit|miss` says which, as JXP does.
async fn cached<F>(
    state: &AppState,
    who: &jxp_core::Identity,
    slug: &str,
    uri: &Uri,
    compute: F,
) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<Vec<u8>, ApiError>>,
{
    let cache = &state.cache;
    // A populated answer also depends on the linked models, whose writes this model's
    // generation does not see, so it is never cached.
    let populated = uri.query().is_some_and(|q| q.contains("populate"));
    // Read hooks run on every read, so their model's answers are not kept.
    if !cache.enabled() || populated || state.app.has_read_hooks(slug) {
        return Ok(json_bytes(compute.await?, None));
    }
    let key = ResponseCache::key(who, &uri.to_string());
    // Read before computing: a write that begins meanwhile makes this entry stale at once.
    let generation = state.app.generation(slug);
    let key_header = ResponseCache::key_header(&key);
    let answer = |body: Vec<u8>, state: &'static str| {
        let mut response = json_bytes(body, Some(state));
        response
            .headers_mut()
            .insert("jxp-cache-key", key_header.clone());
        response
    };
    // While a write to the model is under way nothing is used or kept: a miss.
    let Some(generation) = generation else {
        cache.missed();
        return Ok(answer(compute.await?, "miss"));
    };
    if let Some(body) = cache.get(&key, generation) {
        return Ok(answer(body.to_vec(), "hit"));
    }
    let body = compute.await?;
    cache.put(key, generation, body.clone().into());
    Ok(answer(body, "miss"))
}

pub(super) fn json_bytes(body: Vec<u8>, cache: Option<&'static str>) -> Response {
    let mut response = ([(CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(state) = cache {
        response
            .headers_mut()
            .insert("jxp-cache", axum::http::HeaderValue::from_static(state));
    }
    response
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(slug): ApiPath<String>,
    uri: Uri,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    if explaining(&query) {
        return explain(&state, &who, &slug, &query, false).await;
    }
    let compute = list_body(&state, &who, &slug, &query);
    cached(&state, &who, &slug, &uri, compute).await
}

async fn list_body(
    state: &AppState,
    who: &jxp_core::Identity,
    slug: &str,
    query: &QueryPairs,
) -> Result<Vec<u8>, ApiError> {
    let model = state.app.model(slug)?;
    let req = list_request(model, &query.0)?;
    let outcome = state.app.list(who, slug, &req).await?;
    list_json(state, "api", slug, &query.0, outcome)
}

/// A list request from query-string pairs, as every list-shaped route (`/api`, `/query`,
/// `/csv`) reads it.
pub(crate) fn list_request(
    model: &jxp_model::Model,
    pairs: &[(String, String)],
) -> Result<ListRequest, ApiError> {
    let params = parse_list_params(model, pairs).map_err(jxp_core::CoreError::from)?;
    Ok(ListRequest { params })
}

/// The JSON body of a list answer (`{count?, data, limit?, page?, page_count?, next?, prev?,
/// has_more?, limit_capped?}`), refused with 413 above `max_response_size`. Page links point
/// at `/<route>/<slug>` with the request's own parameters.
pub(super) fn list_json(
    state: &AppState,
    route: &str,
    slug: &str,
    pairs: &[(String, String)],
    outcome: ListOutcome,
) -> Result<Vec<u8>, ApiError> {
    let mut body = serde_json::Map::new();
    if let Some(c) = outcome.count {
        body.insert("count".into(), json!(c));
    }
    body.insert(
        "data".into(),
        Value::Array(outcome.data.into_iter().map(Value::Object).collect()),
    );
    if let Some(l) = outcome.limit {
        body.insert("limit".into(), json!(l));
    }
    if let Some(p) = outcome.page {
        body.insert("page".into(), json!(p));
    }
    if let Some(pc) = outcome.page_count {
        body.insert("page_count".into(), json!(pc));
    }
    let base = &state.app.settings().auth.api_url;
    if let Some(next) = outcome.next_page {
        body.insert(
            "next".into(),
            Value::String(page_url(base, route, slug, pairs, next)),
        );
    }
    if let Some(page) = outcome.page.filter(|p| *p > 1) {
        body.insert(
            "prev".into(),
            Value::String(page_url(base, route, slug, pairs, page - 1)),
        );
    }
    if let Some(more) = outcome.has_more {
        body.insert("has_more".into(), json!(more));
    }
    if outcome.limit_capped {
        body.insert("limit_capped".into(), json!(true));
    }
    sized_json(state, slug, &Value::Object(body))
}

/// The same list URL, absolute under `API_URL`, with `page` set to `page`.
fn page_url(base: &str, route: &str, slug: &str, pairs: &[(String, String)], page: u64) -> String {
    let mut pairs: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| k != "page").cloned().collect();
    pairs.push(("page".into(), page.to_string()));
    let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{}/{route}/{slug}?{qs}", base.trim_end_matches('/'))
}

/// Serialises a list answer, refusing it with 413 above `max_response_size`.
pub(super) fn sized_json(state: &AppState, slug: &str, body: &Value) -> Result<Vec<u8>, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::internal)?;
    check_size(state, slug, bytes.len())?;
    Ok(bytes)
}

/// Refuses a list-shaped answer of `len` bytes with 413 above the model's
/// `max_response_size`.
pub(super) fn check_size(state: &AppState, slug: &str, len: usize) -> Result<(), ApiError> {
    let max = state.app.query_limits(slug).max_response_size;
    if max > 0 && len as u64 > max {
        return Err(ApiError::too_large(format!(
            "the response would be {len} bytes, over the limit of {max}: use a smaller limit, fields= or pages"
        )));
    }
    Ok(())
}

pub(crate) async fn get_one(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath((slug, id)): ApiPath<(String, String)>,
    uri: Uri,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let compute = async {
        // Of a list's parameters, those that shape one document; the rest (filters, sort,
        // paging) mean nothing here and are ignored, as JXP ignores them.
        let pairs: Vec<(String, String)> = query
            .0
            .iter()
            .filter(|(k, _)| {
                k.starts_with("populate")
                    || matches!(k.as_str(), "autopopulate" | "fields" | "showDeleted")
            })
            .cloned()
            .collect();
        let model = state.app.model(&slug)?;
        let params = list_request(model, &pairs)?.params;
        let doc = state.app.get_one_view(&who, &slug, &id, &params).await?;
        serde_json::to_vec(&json!({ "data": doc })).map_err(ApiError::internal)
    };
    cached(&state, &who, &slug, &uri, compute).await
}

/// The answer to a create or update: the document, and a message naming the model.
fn written(slug: &str, done: &str, doc: Document) -> Json<Value> {
    Json(json!({ "status": "ok", "message": format!("{slug} {done}"), "data": doc }))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(slug): ApiPath<String>,
    query: QueryPairs,
    JsonBody(mut body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let opts = write_options(&query, &mut body);
    let doc = state.app.create(&who, &slug, body, opts).await?;
    Ok(written(&slug, "created", doc))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath((slug, id)): ApiPath<(String, String)>,
    query: QueryPairs,
    JsonBody(mut body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let opts = write_options(&query, &mut body);
    let doc = state.app.update(&who, &slug, &id, body, opts).await?;
    Ok(written(&slug, "updated", doc))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath((slug, id)): ApiPath<(String, String)>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let opts = DeleteOptions {
        perma: query.flag("_permaDelete"),
        cascade: query.flag("_cascade"),
        silence: query.flag("_silence"),
    };
    state.app.delete(&who, &slug, &id, opts).await?;
    Ok(Json(
        json!({ "status": "ok", "message": format!("{slug}/{id} deleted") }),
    ))
}

pub(crate) async fn count(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(slug): ApiPath<String>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    if explaining(&query) {
        return explain(&state, &who, &slug, &query, true).await;
    }
    let model = state.app.model(&slug)?;
    let params = parse_list_params(model, &query.0).map_err(jxp_core::CoreError::from)?;
    let count = state.app.count(&who, &slug, &params).await?;
    Ok(Json(json!({ "count": count })).into_response())
}

/// Whether the request asks for its plan (`explain=true`) or its run in the database
/// (`explain=analyze`) rather than its answer.
fn explaining(query: &QueryPairs) -> bool {
    query.flag("explain") || analyzing(query)
}

fn analyzing(query: &QueryPairs) -> bool {
    query
        .0
        .iter()
        .any(|(k, v)| k == "explain" && v == "analyze")
}

/// `?explain=true` (admins): `{"data": {"model", "plan": [...]}}`, the database's plan for
/// the query the same request without `explain` runs. `?explain=analyze` runs that query in
/// the database and adds its SQL and the database's own time: `{"data": {"model", "plan",
/// "sql", "databaseMs"}}` (on PostgreSQL the plan is `EXPLAIN ANALYZE`'s).
async fn explain(
    state: &AppState,
    who: &jxp_core::Identity,
    slug: &str,
    query: &QueryPairs,
    count: bool,
) -> Result<Response, ApiError> {
    let model = state.app.model(slug)?;
    let pairs: Vec<(String, String)> = query
        .0
        .iter()
        .filter(|(k, _)| k != "explain")
        .cloned()
        .collect();
    let req = list_request(model, &pairs)?;
    if analyzing(query) {
        let run = state.app.analyze(who, slug, &req, count).await?;
        return Ok(Json(json!({ "data": {
            "model": slug,
            "plan": run.plan,
            "sql": run.sql,
            "databaseMs": run.database_ms,
        } }))
        .into_response());
    }
    let plan = state.app.explain(who, slug, &req, count).await?;
    Ok(Json(json!({ "data": { "model": slug, "plan": plan } })).into_response())
}

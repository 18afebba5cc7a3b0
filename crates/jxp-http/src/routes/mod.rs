//! The route table. One file per group of routes.

mod aggregate;
mod api;
mod auth;
mod bulkwrite;
mod cache;
mod call;
mod csv;
mod groups;
mod meta;
mod metrics;
mod query;

use axum::Router;
use axum::routing::{get, post};

pub(crate) use api::list_request;
pub(crate) use csv::{columns as csv_columns, render as csv_render};
pub(crate) use meta::fields_json;

use crate::AppState;
use crate::error::ApiError;

/// The first path segment of every route below: a path of the operator's choosing (such as
/// `MCP_PATH`) must not start with one, or the two routes would collide.
pub const ROUTE_ROOTS: &[&str] = &[
    "aggregate",
    "api",
    "asyncapi.json",
    "bulkwrite",
    "cache",
    "call",
    "count",
    "csv",
    "docs",
    "groups",
    "healthz",
    "login",
    "logout",
    "metrics",
    "model",
    "openapi.json",
    "query",
    "refresh",
    "setup",
    "update",
    "websocket",
];

/// Whether `path` falls on one of the API's own routes.
pub fn is_api_path(path: &str) -> bool {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    ROUTE_ROOTS.contains(&first)
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(crate::openapi::openapi))
        .route("/asyncapi.json", get(crate::openapi::asyncapi))
        .route("/model", get(meta::models))
        .route("/model/{model}", get(meta::model))
        .route("/api/{model}", get(api::list).post(api::create))
        .route(
            "/api/{model}/{id}",
            get(api::get_one).put(api::update).delete(api::delete),
        )
        .route("/update/{model}/{id}", post(api::update))
        .route("/count/{model}", get(api::count))
        .route("/csv/{model}", get(csv::csv))
        .route("/query/{model}", post(query::query))
        .route("/aggregate/{model}", post(aggregate::aggregate))
        .route("/bulkwrite/{model}", post(bulkwrite::bulkwrite))
        .route("/login", post(auth::login))
        .route("/refresh", post(auth::refresh))
        .route("/login/refresh", post(auth::refresh))
        .route("/login/logout", get(auth::logout))
        .route("/logout", get(auth::logout))
        .route("/login/getjwt", post(auth::get_jwt))
        .route("/login/recover", post(auth::recover))
        .route("/setup", post(auth::setup))
        .route("/websocket", get(crate::ws::upgrade))
        .route("/docs", get(crate::docs::page))
        .route("/docs/", get(crate::docs::page))
        .route("/docs/console.js", get(crate::docs::script))
        .route("/docs/console.css", get(crate::docs::style))
        .route("/docs/config.json", get(crate::docs::config))
        .route("/call/{model}/{function}", get(call::get).post(call::post))
        .route(
            "/call/{model}/{id}/{function}",
            get(call::get_item).post(call::post_item),
        )
        .route("/cache/stats", get(cache::stats))
        .route("/cache/clear", get(cache::clear))
        .route(
            "/groups/{user_id}",
            get(groups::get)
                .put(groups::add)
                .post(groups::replace)
                .delete(groups::remove),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route added below without its root in `ROUTE_ROOTS` would let `MCP_PATH` collide.
    #[test]
    fn every_route_root_is_listed() {
        let source = include_str!("mod.rs");
        let marker = concat!(".route", "(\"/");
        for piece in source.split(marker).skip(1) {
            let root = piece.split(['/', '"']).next().unwrap_or_default();
            assert!(ROUTE_ROOTS.contains(&root), "{root} is not in ROUTE_ROOTS");
        }
    }

    #[test]
    fn api_paths_are_told_apart_from_free_ones() {
        assert!(is_api_path("/healthz"));
        assert!(is_api_path("/api/x"));
        assert!(is_api_path("/docs"));
        assert!(is_api_path("/metrics"));
        assert!(!is_api_path("/mcp"));
        assert!(!is_api_path("/agents/mcp"));
    }
}

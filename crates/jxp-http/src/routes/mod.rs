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

use crate::AppState;
use crate::error::ApiError;

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

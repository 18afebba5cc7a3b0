//! `GET /metrics`: the Prometheus text exposition, rendered by the exporter and the
//! `prometheus` crate, for admins or whoever presents `Authorization: Bearer $METRICS_TOKEN`.

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jxp_core::Credentials;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::credentials;

/// The content type of Prometheus' text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) async fn metrics(State(state): State<AppState>, parts: Parts) -> Response {
    match allowed(&state, &parts).await {
        Ok(()) => {}
        Err(e) => return e.into_response(),
    }
    let Some(text) = state.metrics.render() else {
        return ApiError::not_found("metrics are off (METRICS_ENABLED=false)").into_response();
    };
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
}

/// The metrics token (compared in constant time), or an admin's credentials; nothing is a 401,
/// anyone else a 403.
async fn allowed(state: &AppState, parts: &Parts) -> Result<(), ApiError> {
    if let Some(token) = &state.http.metrics_token {
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if bearer.is_some_and(|b| jxp_core::ct_eq(b, token)) {
            return Ok(());
        }
    }
    let creds = credentials(parts)?;
    if matches!(creds, Credentials::None) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "metrics need an admin's credentials or the metrics token",
        ));
    }
    let who = state.app.authenticate(&creds).await?;
    if who.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("metrics are for admins"))
    }
}

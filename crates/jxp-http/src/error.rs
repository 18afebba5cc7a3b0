//! `ApiError`: every failure of every route becomes `{ "code", "message" }` with its status
//! here, and only here. Server faults are logged with a request id; the client sees the id,
//! never the cause.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jxp_core::{CoreError, HookError};
use serde_json::json;

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for a 429's `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// Too many attempts; try again after `wait`.
    fn rate_limited(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError {
            retry_after: Some(secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many attempts; try again later",
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let request_id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let cause = cause.to_string();
        tracing::error!(request_id, error = %bounded(&cause), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error (request id {request_id})"),
        )
    }
}

/// The longest cause a log line carries, in bytes: a database's message may quote a whole
/// statement or the values of a client's request, which have no place in the error log.
const LOGGED_CAUSE_MAX: usize = 512;

/// `cause`, cut at [`LOGGED_CAUSE_MAX`] bytes (on a character boundary) with a mark saying so.
fn bounded(cause: &str) -> std::borrow::Cow<'_, str> {
    if cause.len() <= LOGGED_CAUSE_MAX {
        return cause.into();
    }
    let mut end = LOGGED_CAUSE_MAX;
    while !cause.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &cause[..end], cause.len()).into()
}

/// The `code` names of restify's errors, which JXP clients see: the status's reason phrase in
/// one word (`Not Found` → `NotFound`), with restify's `InternalServer` for a 500.
fn code(status: StatusCode) -> String {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return "InternalServer".to_owned();
    }
    match status.canonical_reason() {
        Some(reason) => reason
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut chars = w.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect(),
        None if status.is_client_error() => "BadRequest".to_owned(),
        None => "InternalServer".to_owned(),
    }
}

impl ApiError {
    /// The error as JSON: `{code, message}`.
    pub fn body(&self) -> serde_json::Value {
        json!({ "code": code(self.status), "message": self.message })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.body();
        if self.status == StatusCode::UNAUTHORIZED {
            // JXP's login failure shape, which its clients test for.
            body["status"] = json!("fail");
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        // An app error a hook passed on is answered as that error.
        let e = match e {
            CoreError::Hook(HookError::Core(inner)) => *inner,
            other => other,
        };
        let status = match &e {
            CoreError::UnknownModel(_) | CoreError::NotFound(_) => StatusCode::NOT_FOUND,
            CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            CoreError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            CoreError::BadRequest(_) | CoreError::Validation(_) | CoreError::Query(_) => {
                StatusCode::BAD_REQUEST
            }
            CoreError::Duplicate { .. }
            | CoreError::VersionConflict { .. }
            | CoreError::Contended { .. }
            | CoreError::Referenced { .. }
            | CoreError::NotEmpty { .. }
            | CoreError::CascadeTooDeep { .. } => StatusCode::CONFLICT,
            CoreError::RateLimited { retry_after } => return ApiError::rate_limited(*retry_after),
            CoreError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            CoreError::Internal(cause) => return ApiError::internal(cause),
            CoreError::Hook(HookError::Reject { status, message }) => {
                return match StatusCode::from_u16(*status) {
                    Ok(s) if s.is_client_error() || s.is_server_error() => {
                        ApiError::new(s, message.clone())
                    }
                    _ => ApiError::internal(format!(
                        "a hook rejected with status {status}, which is not an error status: {message}"
                    )),
                };
            }
            // Unwrapped above.
            CoreError::Hook(HookError::Core(inner)) => return ApiError::internal(inner),
        };
        ApiError::new(status, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_restify_names() {
        for (status, name) in [
            (400, "BadRequest"),
            (402, "PaymentRequired"),
            (403, "Forbidden"),
            (404, "NotFound"),
            (405, "MethodNotAllowed"),
            (413, "PayloadTooLarge"),
            (422, "UnprocessableEntity"),
            (429, "TooManyRequests"),
            (500, "InternalServer"),
            (503, "ServiceUnavailable"),
        ] {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
            assert_eq!(code(status), name);
        }
    }

    #[test]
    fn logged_causes_are_bounded() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(1000);
        let cut = bounded(&long);
        assert!(cut.len() < LOGGED_CAUSE_MAX + 40, "{}", cut.len());
        assert!(cut.ends_with("(2000 bytes in all)"), "{cut}");
    }

    #[test]
    fn hook_rejections_keep_their_status_unless_it_is_not_an_error() {
        // (status the hook chose, status answered)
        for (chosen, answered) in [(422, 422), (403, 403), (503, 503), (200, 500), (302, 500)] {
            let e = ApiError::from(CoreError::from(HookError::reject(chosen, "no")));
            assert_eq!(e.status.as_u16(), answered, "{chosen}");
        }
        let passed_on = HookError::from(CoreError::Duplicate {
            model: "widget".into(),
            field: "name".into(),
        });
        let e = ApiError::from(CoreError::Hook(passed_on));
        assert_eq!(
            (e.status, e.message.as_str()),
            (
                StatusCode::CONFLICT,
                "duplicate value: \"name\" must be unique"
            )
        );
    }
}

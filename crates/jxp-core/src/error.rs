//! The core's one error enum. Every variant is a condition a caller can act on; the HTTP
//! layer maps each to a status and `{code, message}` in one place.

use jxp_model::ValidationError;
use jxp_query::QueryError;
use jxp_store::StoreError;

use crate::hooks::HookError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("model {0} not found")]
    UnknownModel(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{}", if .0.field.is_empty() { .0.reason.clone() } else { format!("{}: {}", .0.field, .0.reason) })]
    Validation(#[from] ValidationError),
    #[error("{0}")]
    Query(#[from] QueryError),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// A feature the server is not configured for (no SMTP, no shared secret).
    #[error("{0}")]
    Unavailable(String),
    /// A hook or function refused (always `HookError::Reject`).
    #[error("{0}")]
    Hook(HookError),
    /// A fault of the server, not of the request; the message is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownModel(m) => CoreError::UnknownModel(m),
            StoreError::NotFound { model, id } => {
                CoreError::NotFound(format!("{model}/{id} not found"))
            }
            StoreError::Unique { model: _, field } => {
                CoreError::Conflict(format!("duplicate value: \"{field}\" must be unique"))
            }
            StoreError::VersionConflict { model, id } => CoreError::Conflict(format!(
                "{model}/{id} was changed by another request; try again"
            )),
            StoreError::Referenced {
                model,
                id,
                by_model,
                by_field,
            } => CoreError::Conflict(format!(
                "{model}/{id} is referenced by {by_model}.{by_field}; delete with _cascade=1 to delete the referrers too"
            )),
            StoreError::NotEmpty { model } => {
                CoreError::Conflict(format!("{model} already has documents"))
            }
            StoreError::BadQuery(message) => CoreError::BadRequest(message),
            e @ StoreError::NoTextIndex { .. } => CoreError::BadRequest(e.to_string()),
            other => CoreError::Internal(other.to_string()),
        }
    }
}

impl From<HookError> for CoreError {
    fn from(e: HookError) -> Self {
        match e {
            HookError::Core(inner) => *inner,
            reject => CoreError::Hook(reject),
        }
    }
}

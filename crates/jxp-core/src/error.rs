//! The core's error enums. Every variant of [`CoreError`] is a condition a caller can act on;
//! the HTTP layer maps each to a status and `{code, message}` in one place. [`HookError`] is
//! what an application's hook or function answers; the two convert into each other, so they
//! live together here, below everything that raises them.

use std::time::Duration;

use jxp_model::ValidationError;
use jxp_query::{BudgetError, QueryError, RunError};
use jxp_store::StoreError;

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
    /// A unique field of `model` already holds the value written.
    #[error("duplicate value: \"{field}\" must be unique")]
    Duplicate { model: String, field: String },
    /// Another write changed the document between this write's read and its commit.
    #[error("{model}/{id} was changed by another request; try again")]
    VersionConflict { model: String, id: String },
    /// Other writes kept changing the document until an update or delete gave up retrying.
    #[error("{model}/{id} is being changed by other requests; try again")]
    Contended { model: String, id: String },
    /// A delete without `_cascade` of a document that others refer to; `referrer` is the
    /// referring model and field, as `model/field`. The wording is JXP's, which its clients
    /// compare against.
    #[error("Parent link item exists in {referrer}")]
    Referenced {
        model: String,
        id: String,
        referrer: String,
    },
    /// A write that needs `model` empty (first-admin setup) found documents in it.
    #[error("{model} already has documents")]
    NotEmpty { model: String },
    /// A `_cascade` whose referrers go deeper than the core follows.
    #[error("cascade from {model}/{id} is deeper than {depth} levels")]
    CascadeTooDeep {
        model: String,
        id: String,
        depth: usize,
    },
    /// Too many attempts from one client (logins, recovery, socket authentication); the next
    /// is allowed after `retry_after`.
    #[error("too many attempts; try again later")]
    RateLimited { retry_after: Duration },
    #[error("{0}")]
    TooLarge(String),
    /// A query that ran past `QUERY_TIMEOUT`.
    #[error("{0}")]
    TimedOut(String),
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
            StoreError::NotFound { model, id } => not_found(&model, &id),
            StoreError::Unique { model, field } => CoreError::Duplicate { model, field },
            StoreError::VersionConflict { model, id } => CoreError::VersionConflict { model, id },
            StoreError::Referenced {
                model,
                id,
                by_model,
                by_field,
            } => CoreError::Referenced {
                model,
                id,
                referrer: format!("{by_model}/{by_field}"),
            },
            StoreError::NotEmpty { model } => CoreError::NotEmpty { model },
            StoreError::BadQuery(message) => CoreError::BadRequest(message),
            e @ StoreError::NoTextIndex { .. } => CoreError::BadRequest(e.to_string()),
            e @ StoreError::TooLarge { .. } => CoreError::TooLarge(e.to_string()),
            other => CoreError::Internal(other.to_string()),
        }
    }
}

impl From<BudgetError> for CoreError {
    fn from(e: BudgetError) -> Self {
        match e {
            BudgetError::Memory { .. } => CoreError::TooLarge(e.to_string()),
            BudgetError::Time { .. } => CoreError::TimedOut(e.to_string()),
        }
    }
}

impl From<RunError> for CoreError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Query(q) => CoreError::Query(q),
            RunError::Budget(b) => b.into(),
        }
    }
}

/// `model/id` is not there (or not there for this caller).
pub(crate) fn not_found(model: &str, id: &str) -> CoreError {
    CoreError::NotFound(format!("{model}/{id} not found"))
}

/// `id` of `model` is soft-deleted, for a reader who could otherwise see it; in JXP's words,
/// with the model's display name (`Document <id> is deleted on Test`).
pub(crate) fn deleted(model: &jxp_model::Model, id: &str) -> CoreError {
    CoreError::NotFound(format!("Document {id} is deleted on {}", model.name))
}

/// Checks an `:id` is ObjectId-shaped, so a bad id is a 400 and never a lookup.
pub(crate) fn check_id(id: &str) -> Result<(), CoreError> {
    if jxp_model::is_object_id(id) {
        Ok(())
    } else {
        Err(CoreError::BadRequest(format!("\"{id}\" is not a valid id")))
    }
}

/// Why a hook or function refused. The HTTP layer answers `Reject` with its status and
/// `{code, message}`; `Core` carries an error of an app call made inside the hook, answered as
/// that error would be.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{message}")]
    Reject { status: u16, message: String },
    #[error(transparent)]
    Core(Box<CoreError>),
}

impl HookError {
    /// Refuses with `status` (a 4xx or 5xx; anything else is answered as a server fault).
    pub fn reject(status: u16, message: impl Into<String>) -> Self {
        HookError::Reject {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::reject(400, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::reject(403, message)
    }
}

impl From<CoreError> for HookError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Hook(h) => h,
            other => HookError::Core(Box::new(other)),
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

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_errors_pass_through_hook_errors_unchanged() {
        let e: HookError = CoreError::NotFound("todo/1 not found".into()).into();
        assert!(matches!(CoreError::from(e), CoreError::NotFound(_)));
        let e = CoreError::from(HookError::reject(409, "kept"));
        assert!(matches!(
            e,
            CoreError::Hook(HookError::Reject { status: 409, .. })
        ));
        assert_eq!(e.to_string(), "kept");
        // A hook passing on a hook's rejection keeps it a rejection.
        let again: HookError = e.into();
        assert!(matches!(again, HookError::Reject { status: 409, .. }));
    }

    #[test]
    fn store_conflicts_keep_the_messages_clients_see() {
        let (m, id) = ("todo".to_owned(), "0123456789abcdef01234567".to_owned());
        for (store, message) in [
            (
                StoreError::Unique {
                    model: m.clone(),
                    field: "name".into(),
                },
                "duplicate value: \"name\" must be unique".to_owned(),
            ),
            (
                StoreError::VersionConflict {
                    model: m.clone(),
                    id: id.clone(),
                },
                format!("todo/{id} was changed by another request; try again"),
            ),
            (
                StoreError::Referenced {
                    model: m.clone(),
                    id: id.clone(),
                    by_model: "note".into(),
                    by_field: "todo_id".into(),
                },
                "Parent link item exists in note/todo_id".to_owned(),
            ),
            (
                StoreError::NotEmpty { model: m.clone() },
                "todo already has documents".to_owned(),
            ),
        ] {
            assert_eq!(CoreError::from(store).to_string(), message);
        }
    }
}

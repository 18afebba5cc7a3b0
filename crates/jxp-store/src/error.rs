//! Store errors. Expected conditions (not found, unique violation, version conflict,
//! referrers) are variants the core maps to statuses; database faults carry their message for
//! the log only.

/// What went wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("unknown model {0}")]
    UnknownModel(String),
    #[error("{model}/{id} not found")]
    NotFound { model: String, id: String },
    #[error("duplicate value for unique field {field} of {model}")]
    Unique { model: String, field: String },
    #[error("{model}/{id} was changed concurrently")]
    VersionConflict { model: String, id: String },
    #[error("{model}/{id} is referenced by {by_model}.{by_field}")]
    Referenced {
        model: String,
        id: String,
        by_model: String,
        by_field: String,
    },
    #[error("{model} already has documents")]
    NotEmpty { model: String },
    /// A text search on a model whose model file declares no full-text index.
    #[error("model {model} has no full-text index")]
    NoTextIndex { model: String },
    /// A query the database refuses as written (a regex PostgreSQL cannot compile).
    #[error("{0}")]
    BadQuery(String),
    #[error("cannot migrate {model}: {reason}")]
    Migration { model: String, reason: String },
    /// Another open store holds the database's lock file: one process per SQLite database.
    /// `holder` names who holds it: `pid 123`, or `a process`.
    #[error("{path} is in use by another jxp process ({holder} holds {path}.lock): stop it first")]
    InUse { path: String, holder: String },
    /// A find read more than its `max_bytes` of document text and stopped.
    #[error("the documents read from {model} are over {max_bytes} bytes")]
    TooLarge { model: String, max_bytes: u64 },
    /// A read stopped because the request waiting for it went away (it timed out, or its
    /// client left): nobody reads this answer.
    #[error("the read was interrupted")]
    Interrupted,
    #[error("the store is shut down")]
    Closed,
    #[error("database error: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    /// The error without the statement it was about: a statement rendered from a client's
    /// filter can be hundreds of kilobytes, and it is not what the message is for.
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqlInputError {
                error, msg, offset, ..
            } => StoreError::Database(format!("{msg} ({error}, at offset {offset})")),
            e => StoreError::Database(e.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Database(format!("stored document is not valid JSON: {e}"))
    }
}

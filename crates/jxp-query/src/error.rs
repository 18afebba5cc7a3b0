//! Errors in a query a client sent: always the client's fault, always a 400.

/// A query that cannot be understood; the message names the parameter or operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

impl QueryError {
    pub fn new(msg: impl Into<String>) -> Self {
        QueryError(msg.into())
    }
}

/// Why running a pipeline stopped: the query itself, or the request's budget (its memory or
/// time limit), which callers answer differently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
}

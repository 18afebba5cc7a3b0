//! A request's working-set budget as the core applies it: one [`Budget`] per aggregation,
//! populate or bulk match, from `QUERY_MEMORY_LIMIT` and `QUERY_TIMEOUT`, and store reads
//! bounded by its deadline. Nothing here outlives the request, so what it counted is freed
//! with it.

use std::future::Future;

use jxp_query::Budget;

use crate::app::App;
use crate::error::CoreError;

impl App {
    /// A fresh budget for one request, its clock started now.
    pub(crate) fn budget(&self) -> Budget {
        let s = self.settings();
        Budget::new(s.query_memory_limit, s.query_timeout)
    }
}

/// Awaits `work` (a store read) no longer than `budget`'s time left, answering the budget's
/// timeout when it runs past.
pub(crate) async fn within<T>(
    budget: &Budget,
    work: impl Future<Output = Result<T, CoreError>>,
) -> Result<T, CoreError> {
    budget.check_time()?;
    match budget.time_left() {
        None => work.await,
        Some(left) => tokio::time::timeout(left, work)
            .await
            .map_err(|_| CoreError::from(budget.timed_out()))?,
    }
}

//! A request's working-set budget as the core applies it: one [`Budget`] per aggregation,
//! populate or bulk match, from `QUERY_MEMORY_LIMIT` and `QUERY_TIMEOUT`, and store reads
//! bounded by its deadline. Nothing here outlives the request, so what it counted is freed
//! with it.

use std::future::Future;

use jxp_query::{Budget, Find};
use jxp_store::{Document, StoreError};

use crate::app::App;
use crate::error::CoreError;

impl App {
    /// A fresh budget for one request, its clock started now.
    pub(crate) fn budget(&self) -> Budget {
        let s = self.settings();
        Budget::new(s.query_memory_limit, s.query_timeout)
    }
}

impl App {
    /// Reads what `find` selects within `budget`: no longer than its time left, and stopped
    /// by the store as soon as the document text read passes the bytes it has left (text is
    /// smaller than the documents parsed from it, so nothing that fits is refused). What was
    /// read is not charged here; the caller charges what it keeps.
    pub(crate) async fn find_within(
        &self,
        model: &str,
        mut find: Find,
        budget: &Budget,
    ) -> Result<Vec<Document>, CoreError> {
        find.max_bytes = budget.left();
        within(budget, async {
            match self.store().find(model, &find).await {
                Err(StoreError::TooLarge { .. }) => Err(budget.over_limit().into()),
                found => Ok(found?),
            }
        })
        .await
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

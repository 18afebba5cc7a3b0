//! `explain=true` on a list or count, for admins: the database's plan for the query the
//! request would run, so whoever writes the models can see which index serves it.

use crate::app::App;
use crate::error::CoreError;
use crate::identity::Identity;
use crate::read::{ListRequest, page_find, page_limit};

impl App {
    /// The plan of the query `list` (or, with `count`, `/count`) runs for `req`. Admins only:
    /// a plan names tables and indexes, which other callers have no business seeing.
    pub async fn explain(
        &self,
        who: &Identity,
        slug: &str,
        req: &ListRequest,
        count: bool,
    ) -> Result<Vec<String>, CoreError> {
        if !who.is_admin() {
            return Err(CoreError::Forbidden("explain is for admins".into()));
        }
        let model = self.model(slug)?;
        let params = &req.params;
        let mut filter = self.list_filter(model, who, params)?;
        if !count {
            // As in `list`: `search[f]` narrows a list but not a count.
            filter = filter.and(params.search.clone());
        }
        let limits = self.inner.settings.query_limits.for_model(model);
        let (limit, _) = page_limit(&limits, params.limit);
        let mut find = page_find(filter, params, limit);
        if count {
            // `/count` ignores the full-text `search`, as JXP's does.
            find.text = None;
        }
        Ok(self.inner.store.explain(slug, &find, count).await?)
    }
}

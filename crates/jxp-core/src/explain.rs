//! `explain=true` on a list or count, for admins: the database's plan for the query the
//! request would run, so whoever writes the models can see which index serves it; and
//! `explain=analyze`, the same query run and timed in the database, with its SQL.

use jxp_query::Find;
use jxp_store::Analyzed;

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
        let find = self.explained_find(who, slug, req, count)?;
        Ok(self.inner.store.explain(slug, &find, count).await?)
    }

    /// The query `explain` plans, run in the database and timed there (admins only).
    pub async fn analyze(
        &self,
        who: &Identity,
        slug: &str,
        req: &ListRequest,
        count: bool,
    ) -> Result<Analyzed, CoreError> {
        let find = self.explained_find(who, slug, req, count)?;
        Ok(self.inner.store.analyze(slug, &find, count).await?)
    }

    /// The store query `list` (or `/count`) runs for `req`, for an admin only.
    fn explained_find(
        &self,
        who: &Identity,
        slug: &str,
        req: &ListRequest,
        count: bool,
    ) -> Result<Find, CoreError> {
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
        Ok(find)
    }
}

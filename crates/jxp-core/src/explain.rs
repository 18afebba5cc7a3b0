//! `explain=true` on a list or count, for admins: the database's plan for the query the
//! request would run, so whoever writes the models can see which index serves it.

use jxp_query::Find;

use crate::app::App;
use crate::error::CoreError;
use crate::identity::Identity;
use crate::read::ListRequest;

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
        let limit = match params.limit {
            Some(l) if limits.enabled => Some(l.min(limits.max)),
            Some(l) => Some(l),
            None if limits.enabled => Some(limits.default),
            None => None,
        };
        let find = Find {
            filter,
            sort: params.sort.clone(),
            limit: limit.map(|l| l + 1),
            skip: limit.map_or(0, |l| (params.page.unwrap_or(1) - 1).saturating_mul(l)),
            // `/count` ignores the full-text `search`, as JXP's does.
            text: if count { None } else { params.text.clone() },
        };
        Ok(self.inner.store.explain(slug, &find, count).await?)
    }
}

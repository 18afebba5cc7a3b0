//! Reads as the API answers them: permission-checked, soft-deleted documents hidden unless
//! asked for, owner-only readers narrowed to their own documents, JXP's query limits applied,
//! private fields removed; `search[f]`, full-text `search` and `populate` of a list.

use std::sync::Arc;

use jxp_model::{Document, Model};
use jxp_query::{Filter, Find, ListParams, has_text_index};
use serde_json::Value;

use crate::app::{App, QueryLimits};
use crate::error::{CoreError, check_id, deleted, not_found};
use crate::hooks::ReadEvent;
use crate::identity::Identity;
use crate::perms::{self, Access, Right, access, allowed_on, read_scope};
use crate::view::{check_probes, project, view_as};

/// A list request: the parsed query string.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub params: ListParams,
}

/// A page of documents with JXP's pagination fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListOutcome {
    pub data: Vec<Document>,
    pub count: Option<u64>,
    pub limit: Option<u64>,
    pub page: Option<u64>,
    pub page_count: Option<u64>,
    /// The next page number, when there is one.
    pub next_page: Option<u64>,
    pub has_more: Option<bool>,
    pub limit_capped: bool,
}

impl App {
    pub(crate) fn list_filter(
        &self,
        model: &Model,
        who: &Identity,
        params: &ListParams,
    ) -> Result<Filter, CoreError> {
        let mut filter = read_scope(model, who)?.and(params.filter.clone());
        check_probes(model, who, params)?;
        if !params.show_deleted {
            filter = filter.and(Filter::live());
        }
        Ok(filter)
    }

    /// What a list or count reads: the caller's scope and filter, `narrowing` (a list's
    /// `search[f]`), and what the read hooks allow.
    async fn list_read(
        &self,
        model: &Model,
        who: &Identity,
        params: &ListParams,
        narrowing: Filter,
    ) -> Result<Filter, CoreError> {
        let filter = self.list_filter(model, who, params)?.and(narrowing);
        let hooked = self
            .read_constraint_shared(ReadEvent::Get, model, who, None, Some(&params.filter))
            .await?;
        Ok(filter.and(hooked.map_or(Filter::All, Arc::unwrap_or_clone)))
    }

    /// One document by id, as the caller may see it.
    pub async fn get_one(
        &self,
        who: &Identity,
        slug: &str,
        id: &str,
        show_deleted: bool,
    ) -> Result<Document, CoreError> {
        let model = self.model(slug)?;
        if access(model, who, Right::Read) == Access::Denied {
            return Err(perms::forbidden(model, Right::Read));
        }
        check_id(id)?;
        let constraint = self
            .read_constraint_shared(ReadEvent::GetOne, model, who, Some(id), None)
            .await?;
        let not_found = || not_found(slug, id);
        let doc = self.store().get(slug, id).await?.ok_or_else(not_found)?;
        let owner = doc.get("_owner_id").and_then(Value::as_str);
        // Someone else's document is as good as absent to an owner-only reader, and so is one
        // outside what the read hooks let this reader see.
        if !allowed_on(model, who, Right::Read, owner)
            || constraint
                .as_deref()
                .is_some_and(|c| !jxp_query::matches(c, &doc))
        {
            return Err(not_found());
        }
        // Only a reader who could see it learns that it is deleted rather than absent.
        if !show_deleted
            && doc
                .get("_deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        {
            return Err(deleted(model, id));
        }
        Ok(view_as(model, who, &doc))
    }

    /// `GET /api/:model/:id`: one document as `get_one` answers it, with the list parameters
    /// that apply to one document: `fields`, `populate…`, `autopopulate`, `showDeleted`.
    pub async fn get_one_view(
        &self,
        who: &Identity,
        slug: &str,
        id: &str,
        params: &ListParams,
    ) -> Result<Document, CoreError> {
        let doc = self.get_one(who, slug, id, params.show_deleted).await?;
        let model = self.model(slug)?;
        let mut view = project(model, who, &doc, params.fields.as_deref());
        self.populate(
            who,
            std::slice::from_ref(&doc),
            std::slice::from_mut(&mut view),
            &params.populate,
        )
        .await?;
        Ok(view)
    }

    /// A page of documents.
    pub async fn list(
        &self,
        who: &Identity,
        slug: &str,
        req: &ListRequest,
    ) -> Result<ListOutcome, CoreError> {
        let model = self.model(slug)?;
        let params = &req.params;
        // The parser checks this too; a ListParams built by hand must not reach the store's
        // "no full-text table" fault.
        if params.text.is_some() && !has_text_index(model) {
            return Err(CoreError::BadRequest(format!(
                "model {slug} has no full-text index"
            )));
        }
        // `search[f]` narrows a list, though `/count` ignores it (see `ListParams::search`).
        let filter = self
            .list_read(model, who, params, params.search.clone())
            .await?;
        let limits = &self.inner.settings.query_limits.for_model(model);
        let mut out = ListOutcome::default();
        let (limit, capped) = page_limit(limits, params.limit);
        out.limit_capped = capped;
        if limits.enabled && params.limit.is_none() && !params.filtered {
            let total = self.stored_count(slug, &Filter::All).await?;
            if total >= limits.large_collection_threshold {
                return Err(CoreError::BadRequest(format!(
                    "{slug} has {total} documents: pass an explicit limit between 1 and {} or a filter",
                    limits.max
                )));
            }
        }
        let page = params.page.unwrap_or(1);
        let want_count = params.count
            || params.page.is_some()
            || out.limit_capped
            || !limits.skip_count_unless_paginated;
        let find = page_find(filter.clone(), params, limit);
        let mut data = self.inner.store.find(slug, &find).await?;
        let more = limit.is_some_and(|l| data.len() as u64 > l);
        if let Some(l) = limit {
            data.truncate(usize::try_from(l).unwrap_or(usize::MAX));
        }
        if want_count {
            let count = if find.text.is_some() {
                self.stored_find_count(slug, &find).await?
            } else {
                self.stored_count(slug, &filter).await?
            };
            out.count = Some(count);
            if let Some(l) = limit {
                out.page_count = Some(count.div_ceil(l));
            }
        }
        // The page size applied, asked for or the default, is reported with its page, as
        // JXP reports them; a list without any limit (limits off, none asked) has no pages.
        if limit.is_some() {
            out.limit = limit;
            out.page = Some(page);
        }
        if more {
            out.next_page = Some(page + 1);
            if out.count.is_none() {
                out.has_more = Some(true);
            }
        }
        out.data = data
            .iter()
            .map(|d| {
                let mut view = project(model, who, d, params.fields.as_deref());
                // The relevance the store added stays whatever `fields` says.
                if find.text.is_some()
                    && let Some(score) = d.get("score")
                {
                    view.insert("score".to_owned(), score.clone());
                }
                view
            })
            .collect();
        self.populate(who, &data, &mut out.data, &params.populate)
            .await?;
        Ok(out)
    }

    /// How many documents the caller may see that match the filter and the full-text
    /// `search`, as many as the list would hold. `search[f]` is ignored, as JXP's `/count`
    /// ignores it.
    pub async fn count(
        &self,
        who: &Identity,
        slug: &str,
        params: &ListParams,
    ) -> Result<u64, CoreError> {
        let model = self.model(slug)?;
        let filter = self.list_read(model, who, params, Filter::All).await?;
        if params.text.is_none() {
            return self.stored_count(slug, &filter).await;
        }
        if !has_text_index(model) {
            return Err(CoreError::BadRequest(format!(
                "model {slug} has no full-text index"
            )));
        }
        let find = page_find(filter, params, None);
        self.stored_find_count(slug, &find).await
    }
}

/// The page size of a list: the one asked for, capped at the model's maximum (and whether it
/// was), or the default; none when limits are off and none was asked for.
pub(crate) fn page_limit(limits: &QueryLimits, requested: Option<u64>) -> (Option<u64>, bool) {
    if !limits.enabled {
        return (requested, false);
    }
    match requested {
        Some(l) if l > limits.max => (Some(limits.max), true),
        Some(l) => (Some(l), false),
        None => (Some(limits.default), false),
    }
}

/// The store query of a list page. One more than the page tells whether there is a next page
/// without a count.
pub(crate) fn page_find(filter: Filter, params: &ListParams, limit: Option<u64>) -> Find {
    let page = params.page.unwrap_or(1);
    Find {
        filter,
        sort: params.sort.clone(),
        limit: limit.map(|l| l + 1),
        skip: limit.map_or(0, |l| (page - 1).saturating_mul(l)),
        text: params.text.clone(),
        max_bytes: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits_follow_the_models_limits() {
        let on = QueryLimits::default();
        assert_eq!(page_limit(&on, None), (Some(100), false));
        assert_eq!(page_limit(&on, Some(20)), (Some(20), false));
        assert_eq!(page_limit(&on, Some(1000)), (Some(1000), false));
        assert_eq!(page_limit(&on, Some(1001)), (Some(1000), true));
        let off = QueryLimits {
            enabled: false,
            ..QueryLimits::default()
        };
        assert_eq!(page_limit(&off, None), (None, false));
        assert_eq!(page_limit(&off, Some(5000)), (Some(5000), false));
    }
}

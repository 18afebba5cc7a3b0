//! JXP's advanced queries: `POST /query` (a list narrowed by a Mongo-style filter) and
//! `POST /aggregate` (a pipeline). Both obey the model's `advanced_queries` opt-outs and the
//! reader's scope; neither ever shows a private field.
//!
//! An aggregation runs in up to three parts. When it starts (after `$match` stages) with a
//! `$group` of plain fields or a `$count`, the database answers that in one statement
//! (`group_sql`); otherwise what the database can do is pushed into one `find`: the reader's
//! scope, `_deleted = false`, the leading `$match` stages the model understands, then a
//! leading `$sort` and `$skip`/`$limit`. The rest runs in memory (`jxp_query`'s executor) over
//! documents stripped of private fields (and of the `private = "owner"` fields of other
//! people's documents, in which case nothing is pushed down) before the first stage sees them,
//! so no stage can group, match or project on a secret. There is no cap on how many documents
//! that is: every document read and every copy a stage makes is charged to the request's
//! budget (`QUERY_MEMORY_LIMIT`, `QUERY_TIMEOUT`) before it is built, and the store stops
//! reading once the bytes left are spent, so a pipeline too large for memory is refused (413,
//! or 408 past the time limit) instead of exhausting the server. When what is left for memory
//! starts with a `$group` (after `$match` stages at most), the documents are read in pages of
//! [`GROUP_PAGE`] by `_id` and fed to the group one page at a time, each page given back to
//! the budget once grouped: such a pipeline holds its groups, not its documents.

use std::collections::HashSet;
use std::sync::Arc;

use jxp_model::{Document, Model};
use jxp_query::{
    Budget, Filter, Find, GroupStream, Lookup, MAX_FILTER_CONDITIONS, Op, Path, Sort, Stage,
    apply_lookup, doc_size, lookup_values, parse_mongo_filter, parse_pipeline, resolve_path,
    resolve_wrappers, run_stage,
};
use serde_json::Value;

use crate::app::App;
use crate::error::CoreError;
use crate::group_sql;
use crate::hooks::ReadEvent;
use crate::identity::Identity;
use crate::perms::read_scope;
use crate::read::{ListOutcome, ListRequest};
use crate::view::{into_view_as, may_probe_owner_fields, owner_only_at};

/// The count cap the in-memory executor's multiplying stages get: none, as the byte budget
/// bounds what they build.
const NO_COUNT_CAP: usize = usize::MAX;

/// How many documents one read of a paged `$group` fetches.
const GROUP_PAGE: u64 = 1_000;

/// How many join values go into one `IN (…)` when `$lookup` fetches foreign documents, well
/// under SQLite's bound-parameter limit.
const LOOKUP_CHUNK: usize = 500;

impl App {
    /// `POST /query`: the list `req` describes, further narrowed by the body's Mongo-style
    /// `query` object (wrappers such as `{"$oid": …}` accepted).
    pub async fn query(
        &self,
        who: &Identity,
        slug: &str,
        mut req: ListRequest,
        query: Option<&Value>,
    ) -> Result<ListOutcome, CoreError> {
        let model = self.model(slug)?;
        if !model.options.advanced_queries.query {
            return Err(CoreError::Forbidden(format!(
                "POST /query is disabled for model {slug}"
            )));
        }
        // Permission before the body, so a caller who may not read learns nothing from it.
        read_scope(model, who)?;
        let Some(query) = query.filter(|q| q.is_object()) else {
            return Err(CoreError::BadRequest(
                "query missing or not of type object".into(),
            ));
        };
        let resolved = resolve_wrappers(query, chrono::Utc::now())?;
        let filter = parse_mongo_filter(model, &resolved)?;
        // JXP's large-collection rule exempts a narrowed query, and a non-empty body narrows.
        if query.as_object().is_some_and(|o| !o.is_empty()) {
            req.params.filtered = true;
        }
        req.params.filter = std::mem::take(&mut req.params.filter).and(filter);
        self.list(who, slug, &req).await
    }

    /// `POST /aggregate?explain=true` (admins): the statement and the database's plan for
    /// the part of `pipeline` run in the database as one grouping, or `None` when the
    /// pipeline runs as a `find` and the stages in memory.
    pub async fn explain_aggregate(
        &self,
        who: &Identity,
        slug: &str,
        pipeline: Option<&Value>,
    ) -> Result<Option<(String, Vec<String>)>, CoreError> {
        if !who.is_admin() {
            return Err(CoreError::Forbidden("explain is for admins".into()));
        }
        let model = self.model(slug)?.clone();
        let Some(pipeline) = pipeline.filter(|p| p.is_array()) else {
            return Err(CoreError::BadRequest(
                "query missing or not of type array".into(),
            ));
        };
        let stages = parse_pipeline(&resolve_wrappers(pipeline, chrono::Utc::now())?)?;
        let scope = read_scope(&model, who)?.and(Filter::live()).and(
            self.read_constraint(ReadEvent::Get, &model, who, None)
                .await?,
        );
        let Some(group_sql::InDatabase::Group { grouping, .. }) =
            group_sql::plan(&model, scope, &stages)
        else {
            return Ok(None);
        };
        Ok(self
            .store()
            .explain_aggregate(slug, &grouping)
            .await?
            .map(|(q, plan)| (q.sql, plan)))
    }

    /// `POST /aggregate`: runs `pipeline` (a JSON array of stages) over the documents of `slug`
    /// the caller may read, and answers the resulting documents.
    pub async fn aggregate(
        &self,
        who: &Identity,
        slug: &str,
        pipeline: Option<&Value>,
    ) -> Result<Vec<Document>, CoreError> {
        let model = self.model(slug)?.clone();
        if !model.options.advanced_queries.aggregate {
            return Err(CoreError::Forbidden(format!(
                "POST /aggregate is disabled for model {slug}"
            )));
        }
        let scope = read_scope(&model, who)?.and(
            self.read_constraint(ReadEvent::Get, &model, who, None)
                .await?,
        );
        let Some(pipeline) = pipeline.filter(|p| p.is_array()) else {
            return Err(CoreError::BadRequest(
                "query missing or not of type array".into(),
            ));
        };
        let stages = parse_pipeline(&resolve_wrappers(pipeline, chrono::Utc::now())?)?;
        // A reader who may not see a `private = "owner"` field on every document gets no
        // database help: the whole pipeline runs on the views, where a stage can only match,
        // sort or group on what this reader sees.
        let mut budget = self.budget();
        let probe = may_probe_owner_fields(&model, who);
        if probe
            && let Some(plan) = group_sql::plan(&model, scope.clone().and(Filter::live()), &stages)
            && let Some((docs, rest)) = self
                .run_in_database(&model.slug, &plan, &mut budget)
                .await?
        {
            return self.run_stages(who, rest, docs, &mut budget).await;
        }
        let (find, rest) = if probe {
            pushdown(&model, scope.and(Filter::live()), &stages)
        } else {
            let find = Find {
                filter: scope.and(Filter::live()),
                ..Default::default()
            };
            (find, &stages[..])
        };
        // A read of every matching document, in `_id` order, into `$match` stages and a
        // `$group`: the documents go through in pages.
        let first_group = rest.iter().position(|s| s.match_filter().is_none());
        if find.sort.is_empty()
            && find.skip == 0
            && find.limit.is_none()
            && find.text.is_none()
            && let Some(at) = first_group
            && let Some(grouper) = rest[at].grouper()
        {
            let docs = self
                .group_in_pages(who, &model, find, &rest[..at], grouper, &mut budget)
                .await?;
            return self
                .run_stages(who, &rest[at + 1..], docs, &mut budget)
                .await;
        }
        let docs: Vec<Document> = self
            .read_within_budget(&model, find, &mut budget)
            .await?
            .into_iter()
            .map(|d| into_view_as(&model, who, d))
            .collect();
        self.run_stages(who, rest, docs, &mut budget).await
    }

    /// Runs `stages` in memory over `docs`, fetching what a `$lookup` joins.
    async fn run_stages(
        &self,
        who: &Identity,
        stages: &[Stage],
        mut docs: Vec<Document>,
        budget: &mut Budget,
    ) -> Result<Vec<Document>, CoreError> {
        for stage in stages {
            docs = match stage.lookup() {
                Some(spec) => self.lookup(who, spec, docs, budget).await?,
                None => run_stage(stage, docs, NO_COUNT_CAP, budget)?,
            };
        }
        Ok(docs)
    }

    /// Reads what `find` selects a page at a time in `_id` order, each page's documents as
    /// `who` sees them through the `$match` stages `matches` and into `grouper`, charged to
    /// `budget` while they are held and given back after; answers the groups.
    async fn group_in_pages(
        &self,
        who: &Identity,
        model: &Model,
        find: Find,
        matches: &[Stage],
        mut grouper: GroupStream<'_>,
        budget: &mut Budget,
    ) -> Result<Vec<Document>, CoreError> {
        let mut after: Option<String> = None;
        let mut size = GROUP_PAGE;
        loop {
            let mut page = Find {
                limit: Some(size),
                ..find.clone()
            };
            if let Some(id) = &after {
                page.filter = page.filter.and(Filter::cond(
                    Path::plain("_id"),
                    Op::Gt,
                    Value::String(id.clone()),
                ));
            }
            // Large documents come in smaller pages, down to one at a time: only a single
            // document over the budget left is refused.
            let rows = match self.find_within(&model.slug, page, budget).await {
                Err(CoreError::TooLarge(_)) if size > 1 => {
                    size = (size / 4).max(1);
                    continue;
                }
                rows => rows?,
            };
            let full = u64::try_from(rows.len()).is_ok_and(|n| n >= size);
            after = rows
                .last()
                .and_then(|d| d.get("_id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let held: usize = rows.iter().map(doc_size).sum();
            budget.charge(held)?;
            let mut docs: Vec<Document> = rows
                .into_iter()
                .map(|d| into_view_as(model, who, d))
                .collect();
            for stage in matches {
                docs = run_stage(stage, docs, NO_COUNT_CAP, budget)?;
            }
            for d in &docs {
                grouper.add(d, budget)?;
            }
            drop(docs);
            budget.release(held);
            if !full || after.is_none() {
                return Ok(grouper.finish());
            }
        }
    }

    /// Reads what `find` selects, refusing (413) more bytes than `budget` has left, and
    /// charging what it read.
    async fn read_within_budget(
        &self,
        model: &Model,
        find: Find,
        budget: &mut Budget,
    ) -> Result<Vec<Document>, CoreError> {
        let rows = self.find_within(&model.slug, find, budget).await?;
        for row in &rows {
            budget.charge_doc(row)?;
        }
        Ok(rows)
    }

    /// The model a `$lookup` names: its slug, its display name (as `link` names it) or the
    /// plural collection name a MongoDB client would write (`links` for `link`).
    fn lookup_model(&self, from: &str) -> Result<&Arc<Model>, CoreError> {
        let schema = self.schema();
        let lower = from.to_ascii_lowercase();
        schema
            .get(&lower)
            .or_else(|| schema.by_link(from))
            .or_else(|| lower.strip_suffix('s').and_then(|s| schema.get(s)))
            .ok_or_else(|| CoreError::BadRequest(format!("$lookup: unknown model \"{from}\"")))
    }

    /// `$lookup` into another model, under the same rules as reading it directly: read right
    /// (403 otherwise), the reader's scope and read hooks, no deleted documents, no private
    /// fields.
    async fn lookup(
        &self,
        who: &Identity,
        spec: &Lookup,
        docs: Vec<Document>,
        budget: &mut Budget,
    ) -> Result<Vec<Document>, CoreError> {
        let model = self.lookup_model(&spec.from)?.clone();
        let base = read_scope(&model, who)?.and(Filter::live()).and(
            self.read_constraint(ReadEvent::Get, &model, who, None)
                .await?,
        );
        if docs.is_empty() {
            return Ok(docs);
        }
        let values = lookup_values(spec, &docs);
        // Joining in SQL on a field the reader may not see would say which values exist.
        let hidden = !may_probe_owner_fields(&model, who)
            && owner_only_at(&model, &spec.foreign_field).is_some();
        let joined = (!hidden)
            .then(|| join_filters(&model, &spec.foreign_field, &values))
            .flatten();
        let rows = match joined {
            Some(filters) => {
                let mut seen = HashSet::new();
                let mut rows = Vec::new();
                for f in filters {
                    let find = Find {
                        filter: base.clone().and(f),
                        ..Default::default()
                    };
                    for row in self.read_within_budget(&model, find, budget).await? {
                        // A document with an array of keys can come back from two chunks.
                        let id = row.get("_id").map(Value::to_string).unwrap_or_default();
                        if seen.insert(id) {
                            rows.push(row);
                        }
                    }
                }
                rows
            }
            None => {
                let find = Find {
                    filter: base,
                    ..Default::default()
                };
                self.read_within_budget(&model, find, budget).await?
            }
        };
        let foreign: Vec<Document> = rows
            .into_iter()
            .map(|d| into_view_as(&model, who, d))
            .collect();
        Ok(apply_lookup(spec, docs, &foreign, NO_COUNT_CAP, budget)?)
    }
}

/// Splits the pipeline into what one database `find` can do and the stages left to run in
/// memory. Only a prefix moves, so the meaning is unchanged: leading `$match` stages the model
/// understands (a `$expr`, `$elemMatch` or a field the model lacks stays for the in-memory
/// matcher, whose view has no private fields), then a `$sort` on plain model fields, then
/// `$skip`/`$limit` folded into one window.
fn pushdown<'a>(model: &Model, base: Filter, stages: &'a [Stage]) -> (Find, &'a [Stage]) {
    let mut filter = base;
    let mut rest = stages;
    while let Some((first, tail)) = rest.split_first() {
        // Stages beyond what one statement may hold stay in memory.
        let Some(parsed) = first
            .match_filter()
            .and_then(|raw| parse_mongo_filter(model, raw).ok())
            .filter(|f| filter.condition_count() + f.condition_count() <= MAX_FILTER_CONDITIONS)
        else {
            break;
        };
        filter = filter.and(parsed);
        rest = tail;
    }
    let mut sort = Vec::new();
    if let Some((first, tail)) = rest.split_first()
        && let Some(keys) = first.sort_keys()
    {
        let resolved: Option<Vec<Sort>> = keys
            .iter()
            .map(|(dotted, dir)| {
                resolve_path(model, dotted)
                    .ok()
                    // MongoDB sorts an array by its smallest or largest element; SQL cannot.
                    .filter(|(path, _)| path.array_at.is_none())
                    .map(|(path, _)| Sort { path, dir: *dir })
            })
            .collect();
        if let Some(keys) = resolved {
            sort = keys;
            rest = tail;
        }
    }
    let (mut skip, mut limit) = (0u64, None::<u64>);
    while let Some((first, tail)) = rest.split_first() {
        if let Some(n) = first.skip() {
            skip = skip.saturating_add(n);
            limit = limit.map(|l| l.saturating_sub(n));
        } else if let Some(n) = first.limit() {
            limit = Some(limit.map_or(n, |l| l.min(n)));
        } else {
            break;
        }
        rest = tail;
    }
    let find = Find {
        filter,
        sort,
        limit,
        skip,
        ..Default::default()
    };
    (find, rest)
}

/// Filters that fetch only the foreign documents a join can use (`foreignField IN (values)`,
/// in chunks), or `None` to fetch them all: when the field is not one the model can query, or
/// a join value is not a plain scalar. The join itself is decided in memory; this only narrows.
fn join_filters(model: &Model, field: &str, values: &[Value]) -> Option<Vec<Filter>> {
    let (path, _) = resolve_path(model, field).ok()?;
    let mut scalars = Vec::new();
    let mut null = false;
    for v in values {
        match v {
            Value::Null => null = true,
            Value::String(_) | Value::Number(_) | Value::Bool(_) => scalars.push(v.clone()),
            _ => return None,
        }
    }
    // A missing local value joins foreign documents lacking the field; inside an array that
    // is not one SQL condition, so everything is fetched instead.
    if null && path.array_at.is_some() {
        return None;
    }
    let mut out: Vec<Filter> = scalars
        .chunks(LOOKUP_CHUNK)
        .map(|c| Filter::cond(path.clone(), Op::In, Value::Array(c.to_vec())))
        .collect();
    if null {
        out.push(Filter::cond(path, Op::Eq, Value::Null));
    }
    Some(out)
}

//! `POST /bulkwrite`: a list of MongoDB-style write operations run one after another, each
//! through the one write path (so each is validated, permission-checked per document, and
//! produces its change and realtime event like any other write).
//!
//! JXP's rules: non-admins may use it only on models with `advanced_queries.bulkwrite = true`;
//! `insertOne`, `updateOne`, `replaceOne` and `deleteOne` are open to anyone holding the right
//! they need (create; update, plus create for an upsert; delete), `updateMany` and `deleteMany`
//! only to admins. The whole request is checked before anything runs: a malformed operation or
//! one the caller holds no right for (or, holding an owner right only, one whose filter selects
//! other owners' documents) refuses the request and nothing is written. After that,
//! each operation succeeds or fails on its own; like MongoDB's default ordered bulk write, the
//! first failure stops the rest (`"ordered": false` runs them all).
//!
//! `updateMany` and `deleteMany` have no cap on the documents they match: they read the
//! matches a page at a time (ids only are kept, so memory stays flat whatever the collection's
//! size) and send each document through the write path, logging their progress every
//! [`PROGRESS_PAGES`] pages. Like MongoDB's, they are not atomic: a document the write path
//! refuses (validation, a unique field) stops the operation there, its error is the
//! operation's write error, and the documents changed before it stay changed, each with its
//! event already sent.

use futures_util::StreamExt;
use jxp_model::{Document, Model};
use jxp_query::{
    Filter, Find, Op, Path, Sort, SortDir, Update, parse_mongo_filter, resolve_wrappers,
};
use serde_json::Value;

use crate::app::App;
use crate::delete::DeleteOptions;
use crate::error::CoreError;
use crate::hooks::WriteEvent;
use crate::identity::Identity;
use crate::perms::{self, Access, Right, access};
use crate::view::check_filter;
use crate::write::{Edit, Edited, WriteOptions};

/// The most operations one request may carry.
pub const BULK_MAX_OPS: usize = 1000;
/// Documents read at a time by `updateMany`/`deleteMany`.
const PAGE: u64 = 500;
/// Pages of `updateMany`/`deleteMany` between two progress lines in the log (10,000
/// documents).
const PROGRESS_PAGES: u64 = 20;
/// How often `updateOne`/`deleteOne` look again when the chosen document changed under them.
const RETRIES: usize = 5;
/// The inserts of an unordered run sent to the store at once: the writer commits whatever is
/// waiting in one transaction, so a run of them costs a few commits rather than one each.
const INSERTS_IN_FLIGHT: usize = 512;

/// The kinds of operation, by their MongoDB names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkKind {
    InsertOne,
    UpdateOne,
    ReplaceOne,
    DeleteOne,
    UpdateMany,
    DeleteMany,
}

impl BulkKind {
    pub fn name(self) -> &'static str {
        match self {
            BulkKind::InsertOne => "insertOne",
            BulkKind::UpdateOne => "updateOne",
            BulkKind::ReplaceOne => "replaceOne",
            BulkKind::DeleteOne => "deleteOne",
            BulkKind::UpdateMany => "updateMany",
            BulkKind::DeleteMany => "deleteMany",
        }
    }

    fn parse(name: &str) -> Option<BulkKind> {
        Some(match name {
            "insertOne" => BulkKind::InsertOne,
            "updateOne" => BulkKind::UpdateOne,
            "replaceOne" => BulkKind::ReplaceOne,
            "deleteOne" => BulkKind::DeleteOne,
            "updateMany" => BulkKind::UpdateMany,
            "deleteMany" => BulkKind::DeleteMany,
            _ => return None,
        })
    }

    fn admin_only(self) -> bool {
        matches!(self, BulkKind::UpdateMany | BulkKind::DeleteMany)
    }
}

/// One parsed operation.
enum BulkOp {
    Insert(Document),
    Update {
        filter: OpFilter,
        change: Change,
        upsert: bool,
        many: bool,
    },
    Delete {
        filter: OpFilter,
        many: bool,
    },
}

/// An operation's filter: as sent (wrappers such as `$oid` resolved), which an upsert starts
/// from, and parsed against the model, once, when the request is checked.
struct OpFilter {
    raw: Value,
    parsed: Filter,
}

#[derive(Clone)]
enum Change {
    Operators(Update),
    Replace(Document),
}

/// What `each_match` does to each matched document.
enum Visit<'a> {
    Update {
        change: &'a Change,
        /// The client's filter, which the document must still match when written.
        matching: &'a Filter,
        opts: &'a WriteOptions,
    },
    Delete(DeleteOptions),
}

/// What became of one matched document.
enum Visited {
    Changed,
    Unchanged,
    /// No longer there or no longer a match.
    Stale,
}

/// What one operation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkDone {
    pub inserted: Option<String>,
    pub upserted: Option<String>,
    pub matched: u64,
    pub modified: u64,
    pub removed: u64,
}

/// One operation's outcome, in request order.
#[derive(Debug)]
pub struct BulkReport {
    pub index: usize,
    pub kind: BulkKind,
    pub result: Result<BulkDone, CoreError>,
}

/// Every operation that ran, in order; with `ordered`, nothing after the first failure ran.
#[derive(Debug, Default)]
pub struct BulkOutcome {
    pub reports: Vec<BulkReport>,
}

fn bad(index: usize, msg: impl std::fmt::Display) -> CoreError {
    CoreError::BadRequest(format!("operation {index}: {msg}"))
}

fn object_arg(index: usize, args: &Value, key: &str) -> Result<Document, CoreError> {
    match args.get(key) {
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(_) => Err(bad(index, format!("\"{key}\" must be an object"))),
        None => Err(bad(index, format!("\"{key}\" is missing"))),
    }
}

fn filter_arg(model: &Model, index: usize, args: &Value) -> Result<OpFilter, CoreError> {
    let sent = match args.get("filter") {
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(bad(index, "\"filter\" must be an object")),
        None => return Err(bad(index, "\"filter\" is missing")),
    };
    let raw = resolve_wrappers(sent, chrono::Utc::now()).map_err(|e| bad(index, e))?;
    let parsed = parse_mongo_filter(model, &raw).map_err(|e| bad(index, e))?;
    Ok(OpFilter { raw, parsed })
}

fn upsert_arg(index: usize, args: &Value) -> Result<bool, CoreError> {
    match args.get("upsert") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(index, "\"upsert\" must be true or false")),
    }
}

fn parse_op(model: &Model, index: usize, op: &Value) -> Result<(BulkKind, BulkOp), CoreError> {
    let Some(obj) = op.as_object().filter(|o| o.len() == 1) else {
        return Err(bad(
            index,
            "must be an object with one key, the operation's name",
        ));
    };
    let Some((name, args)) = obj.iter().next() else {
        return Err(bad(index, "is empty"));
    };
    let Some(kind) = BulkKind::parse(name) else {
        return Err(bad(
            index,
            format!(
                "operation {name} is not allowed (insertOne, updateOne, replaceOne, deleteOne, updateMany, deleteMany)"
            ),
        ));
    };
    if !args.is_object() {
        return Err(bad(index, format!("{name} takes an object")));
    }
    let passwords: Vec<&str> = model
        .fields
        .iter()
        .filter(|f| f.is_password())
        .map(|f| f.name.as_str())
        .collect();
    let parsed = match kind {
        BulkKind::InsertOne => BulkOp::Insert(object_arg(index, args, "document")?),
        BulkKind::UpdateOne | BulkKind::UpdateMany => {
            let update = match args.get("update") {
                Some(Value::Array(_)) => {
                    return Err(bad(index, "update pipelines are not supported"));
                }
                Some(u) => Update::parse(u, &passwords).map_err(|e| bad(index, e))?,
                None => return Err(bad(index, "\"update\" is missing")),
            };
            BulkOp::Update {
                filter: filter_arg(model, index, args)?,
                change: Change::Operators(update),
                upsert: upsert_arg(index, args)?,
                many: kind == BulkKind::UpdateMany,
            }
        }
        BulkKind::ReplaceOne => {
            let replacement = object_arg(index, args, "replacement")?;
            if let Some(k) = replacement.keys().find(|k| k.starts_with('$')) {
                return Err(bad(
                    index,
                    format!("a replacement cannot hold operators ({k})"),
                ));
            }
            BulkOp::Update {
                filter: filter_arg(model, index, args)?,
                change: Change::Replace(replacement),
                upsert: upsert_arg(index, args)?,
                many: false,
            }
        }
        BulkKind::DeleteOne | BulkKind::DeleteMany => BulkOp::Delete {
            filter: filter_arg(model, index, args)?,
            many: kind == BulkKind::DeleteMany,
        },
    };
    Ok((kind, parsed))
}

/// The rights an operation needs.
fn rights(op: &BulkOp) -> Vec<Right> {
    match op {
        BulkOp::Insert(_) => vec![Right::Create],
        BulkOp::Update { upsert: true, .. } => vec![Right::Update, Right::Create],
        BulkOp::Update { .. } => vec![Right::Update],
        BulkOp::Delete { .. } => vec![Right::Delete],
    }
}

/// The equality conditions of a filter, which an upsert's new document starts from (as in
/// MongoDB: `{"name": "x"}` and `{"name": {"$eq": "x"}}` both give `name: "x"`).
fn equalities(filter: &Value) -> Document {
    let mut out = Document::new();
    let Some(obj) = filter.as_object() else {
        return out;
    };
    for (k, v) in obj {
        if k.starts_with('$') || k.contains('.') {
            continue;
        }
        match v {
            Value::Object(o) if o.keys().any(|k| k.starts_with('$')) => {
                if let (1, Some(eq)) = (o.len(), o.get("$eq")) {
                    out.insert(k.clone(), eq.clone());
                }
            }
            other => {
                out.insert(k.clone(), other.clone());
            }
        }
    }
    out
}

impl App {
    /// Runs the operations of a `/bulkwrite` request on `slug` for `who`.
    pub async fn bulk_write(
        &self,
        who: &Identity,
        slug: &str,
        ops: &[Value],
        ordered: bool,
        opts: WriteOptions,
    ) -> Result<BulkOutcome, CoreError> {
        let model = self.model(slug)?.clone();
        if !who.is_admin() && !model.options.advanced_queries.bulkwrite {
            return Err(CoreError::Forbidden(format!(
                "POST /bulkwrite is disabled for model {slug}"
            )));
        }
        if ops.is_empty() {
            return Err(CoreError::BadRequest("no operations to run".into()));
        }
        if ops.len() > BULK_MAX_OPS {
            return Err(CoreError::BadRequest(format!(
                "{} operations; at most {BULK_MAX_OPS} in one request",
                ops.len()
            )));
        }
        let mut parsed = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let (kind, op) = parse_op(&model, index, op)?;
            if kind.admin_only() && !who.is_admin() {
                return Err(CoreError::Forbidden(format!(
                    "operation {index}: {} requires an admin",
                    kind.name()
                )));
            }
            for right in rights(&op) {
                if access(&model, who, right) == Access::Denied {
                    return Err(CoreError::Forbidden(format!(
                        "operation {index}: you may not {} {slug}",
                        right.verb()
                    )));
                }
            }
            if let BulkOp::Update { filter, .. } | BulkOp::Delete { filter, .. } = &op {
                check_filter(&model, who, &filter.parsed).map_err(|e| match e {
                    CoreError::Forbidden(m) => {
                        CoreError::Forbidden(format!("operation {index}: {m}"))
                    }
                    e => e,
                })?;
                let right = match &op {
                    BulkOp::Delete { .. } => Right::Delete,
                    _ => Right::Update,
                };
                self.check_others_untouched(&model, who, index, &filter.parsed, right)
                    .await?;
            }
            parsed.push((kind, op));
        }
        let mut outcome = BulkOutcome::default();
        let together = !self.has_pre_write(WriteEvent::Post, slug)
            && !self.has_post_write(WriteEvent::Post, slug);
        let mut parsed = parsed.into_iter().enumerate().peekable();
        while let Some((index, (kind, op))) = parsed.next() {
            // Unordered, a run of inserts goes through the write path together (each its own
            // write, validated as ever), which MongoDB's `ordered: false` allows: the
            // operations may run in any order, and every one of them is tried. Write hooks see
            // one write after another, so a model with any keeps them in order.
            if !ordered && together && matches!(op, BulkOp::Insert(_)) {
                let mut run = vec![(index, kind, op)];
                while let Some((i, (k, o))) =
                    parsed.next_if(|(_, (_, o))| matches!(o, BulkOp::Insert(_)))
                {
                    run.push((i, k, o));
                }
                let (model, opts) = (&model, &opts);
                let reports: Vec<BulkReport> = futures_util::stream::iter(run)
                    .map(|(index, kind, op)| async move {
                        BulkReport {
                            index,
                            kind,
                            result: self.bulk_one(who, model, op, opts).await,
                        }
                    })
                    .buffered(INSERTS_IN_FLIGHT)
                    .collect()
                    .await;
                outcome.reports.extend(reports);
                continue;
            }
            let result = self.bulk_one(who, &model, op, &opts).await;
            let failed = result.is_err();
            outcome.reports.push(BulkReport {
                index,
                kind,
                result,
            });
            if failed && ordered {
                break;
            }
        }
        Ok(outcome)
    }

    /// Refuses (403) an operation whose filter selects live documents of other owners when
    /// `who` holds `right` only on their own: an owner right is checked against the stored
    /// documents, as on `DELETE /api` and `PUT /api`, rather than quietly matching nothing.
    /// Where the caller may not read those documents either, they stay as absent as a read
    /// answers them, and the operation matches only the caller's own.
    async fn check_others_untouched(
        &self,
        model: &Model,
        who: &Identity,
        index: usize,
        client: &Filter,
        right: Right,
    ) -> Result<(), CoreError> {
        if access(model, who, right) != Access::OwnOnly
            || access(model, who, Right::Read) != Access::All
        {
            return Ok(());
        }
        let others = Filter::Not(Box::new(perms::scope(model, who, right)))
            .and(client.clone())
            .and(Filter::live());
        if self.store().count(&model.slug, &others).await? > 0 {
            return Err(CoreError::Forbidden(format!(
                "operation {index}: you may not {} {}: the filter matches documents of other owners",
                right.verb(),
                model.slug
            )));
        }
        Ok(())
    }

    /// The filter of an operation as the store runs it: the client's conditions, live
    /// documents only, and for an owner-only right, the caller's own documents.
    fn bulk_filter(
        &self,
        model: &Model,
        who: &Identity,
        client: &Filter,
        right: Right,
    ) -> Result<Filter, CoreError> {
        if access(model, who, right) == Access::Denied {
            return Err(CoreError::Forbidden(format!(
                "you may not change {}",
                model.slug
            )));
        }
        Ok(perms::scope(model, who, right)
            .and(client.clone())
            .and(Filter::live()))
    }

    /// Ids of live documents matching `filter` after `after`, in id order, refused (413) when
    /// the page read for them is over `QUERY_MEMORY_LIMIT`.
    async fn bulk_ids(
        &self,
        model: &Model,
        filter: &Filter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<String>, CoreError> {
        let mut filter = filter.clone();
        if let Some(after) = after {
            filter = filter.and(Filter::cond(
                Path::plain("_id"),
                Op::Gt,
                Value::String(after.to_owned()),
            ));
        }
        let find = Find {
            filter,
            sort: vec![Sort {
                path: Path::plain("_id"),
                dir: SortDir::Asc,
            }],
            limit: Some(limit),
            ..Find::default()
        };
        // A page of matches is read whole, so it is the working set this request holds: it
        // must fit one request's budget, and its read the time limit.
        let mut budget = self.budget();
        let page = self.find_within(&model.slug, find, &budget).await?;
        let mut ids = Vec::with_capacity(page.len());
        for d in &page {
            budget.charge_doc(d)?;
            if let Some(id) = d.get("_id").and_then(Value::as_str) {
                ids.push(id.to_owned());
            }
        }
        Ok(ids)
    }

    /// Applies `visit` to the live documents `full` matches, in id order: all of them
    /// (`many`, a page at a time), or the first (looked for again when the pick went stale).
    /// Answers how many were still matches, and how many of those changed.
    async fn each_match(
        &self,
        who: &Identity,
        model: &Model,
        full: &Filter,
        many: bool,
        name: &str,
        visit: &Visit<'_>,
    ) -> Result<(u64, u64), CoreError> {
        let limit = if many { PAGE } else { 1 };
        let (mut hits, mut changed) = (0u64, 0u64);
        let mut after: Option<String> = None;
        let mut attempts = 0;
        let mut pages = 0u64;
        loop {
            let ids = self.bulk_ids(model, full, after.as_deref(), limit).await?;
            if ids.is_empty() {
                return Ok((hits, changed));
            }
            pages += 1;
            let mut stale = false;
            for id in &ids {
                match self.visit(who, &model.slug, id, visit).await? {
                    Visited::Changed => {
                        hits += 1;
                        changed += 1;
                    }
                    Visited::Unchanged => hits += 1,
                    Visited::Stale => stale = true,
                }
            }
            if many && pages.is_multiple_of(PROGRESS_PAGES) {
                tracing::info!(
                    model = %model.slug,
                    operation = name,
                    matched = hits,
                    changed,
                    "{name} in progress"
                );
            }
            if !many {
                if hits > 0 || !stale || attempts >= RETRIES {
                    return Ok((hits, changed));
                }
                attempts += 1;
                continue;
            }
            if (ids.len() as u64) < limit {
                return Ok((hits, changed));
            }
            after = ids.last().cloned();
        }
    }

    /// One matched document updated or deleted through the write path.
    async fn visit(
        &self,
        who: &Identity,
        slug: &str,
        id: &str,
        visit: &Visit<'_>,
    ) -> Result<Visited, CoreError> {
        let outcome = match visit {
            Visit::Update {
                change,
                matching,
                opts,
            } => {
                let edit = match change {
                    Change::Operators(u) => Edit::Operators(u.clone()),
                    Change::Replace(d) => Edit::Replace(d.clone()),
                };
                self.update_edit(who, slug, id, edit, (*opts).clone(), Some(matching))
                    .await
                    .map(|edited| match edited {
                        Edited::Modified(_) => Visited::Changed,
                        Edited::Unchanged(_) => Visited::Unchanged,
                        Edited::NoLongerMatches => Visited::Stale,
                    })
            }
            Visit::Delete(opts) => self
                .delete(who, slug, id, opts.clone())
                .await
                .map(|()| Visited::Changed),
        };
        match outcome {
            // Deleted since it was found: not a match any more.
            Err(CoreError::NotFound(_)) => Ok(Visited::Stale),
            other => other,
        }
    }

    async fn bulk_one(
        &self,
        who: &Identity,
        model: &Model,
        op: BulkOp,
        opts: &WriteOptions,
    ) -> Result<BulkDone, CoreError> {
        let slug = model.slug.as_str();
        match op {
            BulkOp::Insert(doc) => {
                let created = self.create(who, slug, doc, opts.clone()).await?;
                Ok(BulkDone {
                    inserted: created
                        .get("_id")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    ..BulkDone::default()
                })
            }
            BulkOp::Update {
                filter,
                change,
                upsert,
                many,
            } => {
                let full = self.bulk_filter(model, who, &filter.parsed, Right::Update)?;
                let name = if many { "updateMany" } else { "updateOne" };
                let visit = Visit::Update {
                    change: &change,
                    matching: &filter.parsed,
                    opts,
                };
                let (matched, modified) = self
                    .each_match(who, model, &full, many, name, &visit)
                    .await?;
                let mut done = BulkDone {
                    matched,
                    modified,
                    ..BulkDone::default()
                };
                if done.matched == 0 && upsert {
                    let mut doc = equalities(&filter.raw);
                    match change {
                        Change::Operators(u) => u
                            .apply(&mut doc, true)
                            .map_err(|e| CoreError::BadRequest(e.0))?,
                        Change::Replace(r) => doc.extend(r),
                    }
                    let created = self.create(who, slug, doc, opts.clone()).await?;
                    done.upserted = created
                        .get("_id")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                Ok(done)
            }
            BulkOp::Delete { filter, many } => {
                let full = self.bulk_filter(model, who, &filter.parsed, Right::Delete)?;
                let mut done = BulkDone::default();
                let delete = DeleteOptions {
                    perma: false,
                    cascade: false,
                    silence: opts.silence,
                };
                let name = if many { "deleteMany" } else { "deleteOne" };
                let (removed, _) = self
                    .each_match(who, model, &full, many, name, &Visit::Delete(delete))
                    .await?;
                done.removed = removed;
                Ok(done)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_upsert_starts_from_the_filters_equalities() {
        let got = equalities(&json!({
            "a": 1, "b": {"$eq": "x"}, "c": {"$gt": 2}, "d.e": 3, "$or": [{"f": 1}], "g": {"h": 1}
        }));
        assert_eq!(Value::Object(got), json!({"a": 1, "b": "x", "g": {"h": 1}}));
    }
}

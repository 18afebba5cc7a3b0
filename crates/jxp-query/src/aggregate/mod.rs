//! The aggregation pipeline of `POST /aggregate`: the stages MongoDB clients send, parsed into
//! typed stages up front (so every mistake is a 400 naming its stage before a document is
//! read), and a pure executor over documents in memory.
//!
//! The executor knows no model. After `$group` or `$project` the documents are not the model's,
//! so `$match` here is schemaless and compares values as given, as MongoDB's aggregation does
//! (it never casts). `$lookup` needs another model's documents: the caller fetches them under
//! its own permission rules and hands them to [`apply_lookup`].
//!
//! Also here (in `wrappers`): the Extended-JSON-style wrappers (`{"$oid": …}`, `{"$date": …}`,
//! `"ObjectId(\"…\")"`, `"new Date(\"…\")"`, `"relative_date(…)"`) that `/aggregate` and `/query`
//! accept, resolved to the strings ids and dates are stored as.
//!
//! Layout: this module holds the public entry points (parse a pipeline, run a stage or a whole
//! pipeline) and the stage type; `wrappers` resolves the wrappers, `values` is the value model
//! every part shares, `matching` is `$match`, `expr` the expressions, `group` `$group`, `hashed` a grouping counted in a hash table over scanned rows, `lookup`
//! `$lookup`, and `stages` the remaining stages.

mod expr;
mod group;
mod hashed;
mod lookup;
mod matching;
mod pushed;
mod stages;
mod values;
mod wrappers;

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::ast::SortDir;
use crate::budget::Budget;
use crate::error::{QueryError, RunError};
use expr::{Expr, eval};
use group::{Group, Grouper, parse_group, run_group};
pub use hashed::{CellRef, HashGroups, TooManyGroups, scanned_cell, unescaped};
use lookup::parse_lookup;
pub use lookup::{Lookup, apply_lookup, lookup_values};
use matching::{Pred, parse_pred, pred_matches};
pub use pushed::{
    Cell, FieldKind, GroupField, GroupSort, GroupTail, Grouping, PlainAcc, PlainGroup, PlainKey,
};
use stages::{
    Projection, SortKey, Unwind, parse_add_fields, parse_count, parse_project, parse_sort,
    parse_unset, parse_unwind, run_project, run_sort, run_unwind,
};
use values::{set_path, without_paths};
pub use wrappers::resolve_wrappers;
/// A document flowing through the pipeline.
pub type Doc = Map<String, Value>;

/// Internal results carry a bare message; the stage parser prefixes the stage's name.
type R<T> = Result<T, String>;

/// One parsed pipeline stage.
#[derive(Debug, Clone)]
pub struct Stage(Kind);

#[derive(Debug, Clone)]
enum Kind {
    Match { raw: Value, pred: Pred },
    Group(Group),
    Project(Projection),
    AddFields(Vec<(Vec<String>, Expr)>),
    Unset(Vec<Vec<String>>),
    Sort(Vec<SortKey>),
    Limit(u64),
    Skip(u64),
    Count(String),
    Unwind(Unwind),
    Lookup(Lookup),
}

impl Stage {
    /// The stage's name as written in a pipeline (`$match`, `$group`, …).
    pub fn name(&self) -> &'static str {
        match &self.0 {
            Kind::Match { .. } => "$match",
            Kind::Group(_) => "$group",
            Kind::Project(_) => "$project",
            Kind::AddFields(_) => "$addFields",
            Kind::Unset(_) => "$unset",
            Kind::Sort(_) => "$sort",
            Kind::Limit(_) => "$limit",
            Kind::Skip(_) => "$skip",
            Kind::Count(_) => "$count",
            Kind::Unwind(_) => "$unwind",
            Kind::Lookup(_) => "$lookup",
        }
    }

    /// A `$match` stage's filter as the client sent it (wrappers resolved), so a caller can
    /// run a leading `$match` in the database.
    pub fn match_filter(&self) -> Option<&Value> {
        match &self.0 {
            Kind::Match { raw, .. } => Some(raw),
            _ => None,
        }
    }

    /// A `$sort` stage's keys: dotted paths and directions.
    pub fn sort_keys(&self) -> Option<Vec<(&str, SortDir)>> {
        match &self.0 {
            Kind::Sort(keys) => Some(
                keys.iter()
                    .map(|k| {
                        let dir = if k.desc { SortDir::Desc } else { SortDir::Asc };
                        (k.dotted.as_str(), dir)
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    pub fn limit(&self) -> Option<u64> {
        match self.0 {
            Kind::Limit(n) => Some(n),
            _ => None,
        }
    }

    pub fn skip(&self) -> Option<u64> {
        match self.0 {
            Kind::Skip(n) => Some(n),
            _ => None,
        }
    }

    /// A `$group` stage's grouping, ready to be fed documents one at a time, so that input
    /// read in pages need never be held whole.
    pub fn grouper(&self) -> Option<GroupStream<'_>> {
        match &self.0 {
            Kind::Group(g) => Some(GroupStream(Grouper::new(g))),
            _ => None,
        }
    }

    pub fn lookup(&self) -> Option<&Lookup> {
        match &self.0 {
            Kind::Lookup(l) => Some(l),
            _ => None,
        }
    }
}

/// A `$group` being fed documents (see [`Stage::grouper`]): it holds the groups met so far,
/// and grows with them, not with the documents.
pub struct GroupStream<'a>(Grouper<'a>);

impl GroupStream<'_> {
    /// Adds one document to its group, charging `budget` for a new group and for the values
    /// `$push` and `$addToSet` keep, and checking its time.
    pub fn add(&mut self, doc: &Doc, budget: &mut Budget) -> Result<(), RunError> {
        Ok(self.0.add(doc, budget)?)
    }

    /// The groups' documents, in the order their first documents came.
    pub fn finish(self) -> Vec<Doc> {
        self.0.finish()
    }
}

const SUPPORTED_STAGES: &str = "$match, $group, $project, $addFields, $set, $unset, $sort, $limit, $skip, $count, $unwind, $lookup";

/// Parses a pipeline: an array of one-key stage objects. Wrappers should already be resolved
/// (see [`resolve_wrappers`]). Every error names the stage it is about.
pub fn parse_pipeline(v: &Value) -> Result<Vec<Stage>, QueryError> {
    let Value::Array(items) = v else {
        return Err(QueryError::new("query missing or not of type array"));
    };
    items.iter().map(parse_stage).collect()
}

fn parse_stage(v: &Value) -> Result<Stage, QueryError> {
    let Value::Object(obj) = v else {
        return Err(QueryError::new(format!(
            "a pipeline stage must be an object like {{\"$match\": {{…}}}}, got {v}"
        )));
    };
    let mut entries = obj.iter();
    let (Some((name, arg)), None) = (entries.next(), entries.next()) else {
        return Err(QueryError::new(format!(
            "a pipeline stage must have exactly one key, the stage's name; got {v}"
        )));
    };
    let kind = match name.as_str() {
        "$match" => parse_pred(arg).map(|pred| Kind::Match {
            raw: arg.clone(),
            pred,
        }),
        "$group" => parse_group(arg).map(Kind::Group),
        "$project" => parse_project(arg).map(Kind::Project),
        "$addFields" | "$set" => parse_add_fields(arg).map(Kind::AddFields),
        "$unset" => parse_unset(arg).map(Kind::Unset),
        "$sort" => parse_sort(arg).map(Kind::Sort),
        "$limit" => whole_number(arg, 1).map(Kind::Limit),
        "$skip" => whole_number(arg, 0).map(Kind::Skip),
        "$count" => parse_count(arg).map(Kind::Count),
        "$unwind" => parse_unwind(arg).map(Kind::Unwind),
        "$lookup" => parse_lookup(arg).map(Kind::Lookup),
        other => {
            return Err(QueryError::new(format!(
                "pipeline stage {other} is not supported (supported: {SUPPORTED_STAGES})"
            )));
        }
    };
    kind.map(Stage)
        .map_err(|e| QueryError::new(format!("{name}: {e}")))
}

fn whole_number(v: &Value, min: u64) -> R<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        _ => None,
    };
    n.filter(|n| *n >= min).ok_or_else(|| {
        if min == 0 {
            format!("takes a whole number of 0 or more, got {v}")
        } else {
            format!("takes a whole number of {min} or more, got {v}")
        }
    })
}

fn too_many(stage: &str, max_docs: usize) -> QueryError {
    QueryError::new(format!(
        "{stage}: the pipeline would hold more than {max_docs} documents; narrow it with $match or $limit first"
    ))
}

/// Runs one stage over `docs`. `max_docs` bounds how many documents a stage may produce
/// (`$unwind` can multiply them); `budget` is charged for what a stage builds (copies,
/// computed values, accumulated arrays) before it builds it, and checked for time as it goes.
/// A `$lookup` needs the foreign documents: use [`apply_lookup`] for it.
pub fn run_stage(
    stage: &Stage,
    docs: Vec<Doc>,
    max_docs: usize,
    budget: &mut Budget,
) -> Result<Vec<Doc>, RunError> {
    budget.check_time()?;
    Ok(match &stage.0 {
        Kind::Match { pred, .. } => docs.into_iter().filter(|d| pred_matches(pred, d)).collect(),
        Kind::Group(g) => run_group(g, docs, budget)?,
        Kind::Project(p) => run_project(p, docs, budget)?,
        Kind::AddFields(fields) => {
            let mut out = Vec::with_capacity(docs.len());
            for mut d in docs {
                // Every expression sees the document as it came in.
                let mut values = Vec::with_capacity(fields.len());
                for (_, e) in fields {
                    let v = eval(e, &d);
                    if let Some(v) = &v {
                        budget.charge_value(v)?;
                    }
                    values.push(v);
                }
                for ((path, _), v) in fields.iter().zip(values) {
                    if let Some(v) = v {
                        set_path(&mut d, path, v);
                    }
                }
                out.push(d);
            }
            out
        }
        Kind::Unset(paths) => without_paths(paths, docs),
        Kind::Sort(keys) => run_sort(keys, docs),
        Kind::Limit(n) => {
            let mut docs = docs;
            docs.truncate(usize::try_from(*n).unwrap_or(usize::MAX));
            docs
        }
        Kind::Skip(n) => docs
            .into_iter()
            .skip(usize::try_from(*n).unwrap_or(usize::MAX))
            .collect(),
        // MongoDB's $count of nothing is no document at all, not a zero.
        Kind::Count(_) if docs.is_empty() => Vec::new(),
        Kind::Count(name) => {
            let mut out = Map::new();
            out.insert(name.clone(), Value::from(docs.len()));
            vec![out]
        }
        Kind::Unwind(u) => run_unwind(u, docs, max_docs, budget)?,
        Kind::Lookup(l) => {
            return Err(QueryError::new(format!(
                "$lookup: the documents of {} were not provided",
                l.from
            ))
            .into());
        }
    })
}

/// Runs a whole pipeline with the foreign documents of every `$lookup` given by model name.
pub fn run_pipeline(
    stages: &[Stage],
    mut docs: Vec<Doc>,
    foreign: &HashMap<String, Vec<Doc>>,
    max_docs: usize,
    budget: &mut Budget,
) -> Result<Vec<Doc>, RunError> {
    for stage in stages {
        docs = match stage.lookup() {
            Some(l) => {
                let other = foreign.get(&l.from).map(Vec::as_slice).unwrap_or_default();
                apply_lookup(l, docs, other, max_docs, budget)?
            }
            None => run_stage(stage, docs, max_docs, budget)?,
        };
    }
    Ok(docs)
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn docs() -> Vec<Doc> {
        let v = json!([
            {"_id": "a1", "name": "apple", "kind": "fruit", "price": 3, "qty": 10,
             "tags": ["red", "sweet"], "when": "2024-01-05T10:00:00.000Z", "dims": {"w": 1, "h": 2}},
            {"_id": "a2", "name": "banana", "kind": "fruit", "price": 1.5, "qty": 20,
             "tags": ["yellow", "sweet"], "when": "2024-02-01T00:00:00.000Z"},
            {"_id": "a3", "name": "carrot", "kind": "veg", "price": 2, "qty": 0,
             "tags": [], "when": "2024-02-10T00:00:00.000Z"},
            {"_id": "a4", "name": "Date", "kind": "fruit", "price": null,
             "scores": [{"s": 80}, {"s": 90}]}
        ]);
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_object().cloned())
            .collect()
    }

    pub(super) fn run(pipeline: Value) -> Result<Value, RunError> {
        let stages = parse_pipeline(&pipeline)?;
        let mut foreign = HashMap::new();
        foreign.insert(
            "kinds".to_owned(),
            vec![
                json!({"_id": "k1", "code": "fruit", "label": "Fruit"}),
                json!({"_id": "k2", "code": "veg", "label": "Vegetable"}),
                json!({"_id": "k3", "code": "fruit", "label": "Also fruit"}),
            ]
            .into_iter()
            .filter_map(|d| d.as_object().cloned())
            .collect(),
        );
        let out = run_pipeline(&stages, docs(), &foreign, 1000, &mut Budget::unlimited())?;
        Ok(Value::Array(out.into_iter().map(Value::Object).collect()))
    }

    pub(super) fn ids(v: &Value) -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|d| d["_id"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    #[test]
    fn errors_name_the_stage() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"$match": {}}), "query missing or not of type array"),
            (json!([{"$out": "x"}]), "$out"),
            (json!([{"$merge": {}}]), "$merge"),
            (
                json!([{"$match": {"$where": "1"}}]),
                "$match: operator $where",
            ),
            (json!([{"$match": {"n": {"$function": {}}}}]), "$function"),
            (
                json!([{"$match": {"n": {"$type": "string"}}}]),
                "$match: filter on \"n\": operator $type",
            ),
            (json!([{"$match": {"n": {"$regex": "("}}}]), "$match"),
            (
                json!([{"$group": {"n": {"$sum": 1}}}]),
                "$group: needs an _id",
            ),
            (
                json!([{"$group": {"_id": null, "n": {"$median": "$x"}}}]),
                "$group: accumulator $median",
            ),
            (
                json!([{"$group": {"_id": null, "n": 1}}]),
                "$group: field \"n\"",
            ),
            (
                json!([{"$project": {"a": 1, "b": 0}}]),
                "$project: cannot mix",
            ),
            (
                json!([{"$project": {"a": {"$function": {}}}}]),
                "$project: expression operator $function",
            ),
            (json!([{"$project": {}}]), "$project"),
            (
                json!([{"$addFields": {"a": {"$where": 1}}}]),
                "$addFields: expression operator $where",
            ),
            (json!([{"$sort": {"a": 2}}]), "$sort"),
            (json!([{"$limit": 0}]), "$limit"),
            (json!([{"$limit": "5"}]), "$limit"),
            (json!([{"$skip": -1}]), "$skip"),
            (json!([{"$count": "$n"}]), "$count"),
            (json!([{"$unwind": "tags"}]), "$unwind"),
            (
                json!([{"$unwind": {"path": "$t", "bogus": 1}}]),
                "$unwind: unknown option",
            ),
            (
                json!([{"$lookup": {"from": "x", "localField": "a", "foreignField": "b"}}]),
                "$lookup: needs \"as\"",
            ),
            (
                json!([{"$lookup": {"from": "x", "pipeline": [], "as": "y"}}]),
                "$lookup: pipeline",
            ),
            (json!([{"$match": {}, "$limit": 1}]), "exactly one key"),
            (json!(["$match"]), "must be an object"),
            (json!([{"$unset": 5}]), "$unset"),
            (
                json!([{"$project": {"x": {"$add": "$a", "$b": 1}}}]),
                "$project",
            ),
            (
                json!([{"$project": {"x": {"$subtract": [1]}}}]),
                "$subtract takes 2",
            ),
        ];
        for (pipeline, needle) in cases {
            match run(pipeline.clone()) {
                Ok(v) => panic!("{pipeline} should fail, got {v}"),
                Err(e) => assert!(
                    e.to_string().contains(needle),
                    "{pipeline}: {e} does not mention {needle}"
                ),
            }
        }
    }

    #[test]
    fn growth_stops_at_the_budget_before_it_is_built() {
        use crate::budget::BudgetError;
        // Every document joins every other one: n * n copies of a large document.
        let big: Vec<Doc> = (0..50)
            .filter_map(|i| {
                json!({"_id": i, "foo": 1, "pad": "x".repeat(10_000)})
                    .as_object()
                    .cloned()
            })
            .collect();
        let mut foreign = HashMap::new();
        foreign.insert("self".to_owned(), big.clone());
        let join = parse_pipeline(&json!([
            {"$lookup": {"from": "self", "localField": "foo", "foreignField": "foo", "as": "s"}},
            {"$count": "c"}
        ]))
        .unwrap();
        let mut budget = Budget::new(1024 * 1024, std::time::Duration::ZERO);
        let err = run_pipeline(&join, big.clone(), &foreign, 100_000, &mut budget).unwrap_err();
        assert_eq!(
            err,
            RunError::Budget(BudgetError::Memory { limit: 1024 * 1024 })
        );
        // Refused at the first copy past the limit, not after the 25 MB were built.
        assert!(budget.used() < 2 * 1024 * 1024, "{}", budget.used());
        let mut roomy = Budget::new(64 * 1024 * 1024, std::time::Duration::ZERO);
        let out = run_pipeline(&join, big.clone(), &foreign, 100_000, &mut roomy).unwrap();
        assert_eq!(out, vec![json!({"c": 50}).as_object().cloned().unwrap()]);

        let tags: Vec<Doc> = vec![
            json!({"_id": 1, "pad": "x".repeat(10_000), "t": (0..500).collect::<Vec<_>>()})
                .as_object()
                .cloned()
                .unwrap(),
        ];
        let many = big.clone();
        let grouped =
            parse_pipeline(&json!([{"$group": {"_id": null, "all": {"$push": "$pad"}}}])).unwrap();
        let mut budget = Budget::new(256 * 1024, std::time::Duration::ZERO);
        let got = run_pipeline(&grouped, many, &HashMap::new(), 100_000, &mut budget);
        assert!(
            matches!(got, Err(RunError::Budget(BudgetError::Memory { .. }))),
            "$push past the budget"
        );
        for pipeline in [
            json!([{"$unwind": "$t"}]),
            json!([{"$addFields": {"a": {"$concat": ["$pad", "$pad", "$pad", "$pad"]}}}, {"$addFields": {"b": {"$concat": ["$a", "$a", "$a", "$a"]}}}, {"$addFields": {"c": {"$concat": ["$b", "$b", "$b", "$b"]}}}, {"$addFields": {"d": {"$concat": ["$c", "$c", "$c", "$c"]}}}]),
        ] {
            let stages = parse_pipeline(&pipeline).unwrap();
            let mut budget = Budget::new(1024 * 1024, std::time::Duration::ZERO);
            let got = run_pipeline(&stages, tags.clone(), &HashMap::new(), 100_000, &mut budget);
            assert!(
                matches!(got, Err(RunError::Budget(BudgetError::Memory { .. }))),
                "{pipeline} is not refused"
            );
        }
    }

    #[test]
    fn growth_is_bounded() {
        let stages = parse_pipeline(&json!([{"$unwind": "$tags"}])).unwrap();
        let unlimited = &mut Budget::unlimited();
        let err = run_pipeline(&stages, docs(), &HashMap::new(), 3, unlimited)
            .unwrap_err()
            .to_string();
        assert!(err.contains("$unwind") && err.contains("3"), "{err}");
        let stages = parse_pipeline(&json!([{"$lookup": {"from": "f", "localField": "nope", "foreignField": "nope", "as": "j"}}])).unwrap();
        let foreign: Vec<Doc> = (0..3)
            .filter_map(|i| json!({"_id": i}).as_object().cloned())
            .collect();
        let mut map = HashMap::new();
        map.insert("f".to_owned(), foreign);
        // Missing joins missing: every document would embed all three.
        let err = run_pipeline(&stages, docs(), &map, 5, unlimited)
            .unwrap_err()
            .to_string();
        assert!(err.contains("$lookup"), "{err}");
        assert_eq!(
            run_pipeline(&stages, docs(), &map, 100, unlimited)
                .unwrap()
                .len(),
            4
        );
    }
}

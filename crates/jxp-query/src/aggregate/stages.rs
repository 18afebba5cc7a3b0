//! The document-shaping stages besides `$match`, `$group` and `$lookup`: `$project`,
//! `$addFields`/`$set`, `$unset`, `$sort`, `$count` and `$unwind`, parsed and run.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::expr::{Expr, eval, parse_expr};
use super::matching::is_operator_object;
use super::values::{
    copy_path, field_path, get_direct, get_path, remove_path, set_path, total_cmp, without_paths,
};
use super::{Doc, R, too_many};
use crate::budget::{Budget, BudgetError, doc_size, value_size};
use crate::error::RunError;
#[derive(Debug, Clone)]
pub(super) struct SortKey {
    pub(super) dotted: String,
    path: Vec<String>,
    pub(super) desc: bool,
}

#[derive(Debug, Clone)]
pub(super) enum Projection {
    Include {
        keep_id: bool,
        id_expr: Option<Expr>,
        /// A path kept as it is (`None`) or computed.
        fields: Vec<(Vec<String>, Option<Expr>)>,
    },
    Exclude(Vec<Vec<String>>),
}

#[derive(Debug, Clone)]
pub(super) struct Unwind {
    path: Vec<String>,
    index: Option<Vec<String>>,
    preserve: bool,
}

/// Flattens `{a: {b: 1}}` into `("a.b", 1)`; objects that are expressions stay whole.
fn flatten_spec<'a>(
    prefix: &str,
    spec: &'a Map<String, Value>,
    out: &mut Vec<(String, &'a Value)>,
) {
    for (k, v) in spec {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if !inner.is_empty() && !is_operator_object(v) => {
                flatten_spec(&path, inner, out);
            }
            _ => out.push((path, v)),
        }
    }
}

/// The fields of a `$project` or `$addFields` specification, flattened.
fn spec_fields(v: &Value) -> R<Vec<(String, &Value)>> {
    let Value::Object(spec) = v else {
        return Err(format!("takes an object, got {v}"));
    };
    if spec.is_empty() {
        return Err("needs at least one field".into());
    }
    let mut flat = Vec::new();
    flatten_spec("", spec, &mut flat);
    Ok(flat)
}

pub(super) fn parse_project(v: &Value) -> R<Projection> {
    let flat = spec_fields(v)?;
    let mut keep_id = true;
    let mut id_expr = None;
    let mut includes = Vec::new();
    let mut excludes = Vec::new();
    for (path, val) in flat {
        let flag = match val {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => Some(n.as_f64() != Some(0.0)),
            _ => None,
        };
        if path == "_id" {
            match flag {
                Some(keep) => keep_id = keep,
                None => id_expr = Some(parse_expr(val)?),
            }
            continue;
        }
        match flag {
            Some(false) => excludes.push((path.clone(), field_path(&path)?)),
            Some(true) => includes.push((field_path(&path)?, None)),
            None => includes.push((field_path(&path)?, Some(parse_expr(val)?))),
        }
    }
    if let Some((name, _)) = excludes.first()
        && (!includes.is_empty() || id_expr.is_some())
    {
        return Err(format!(
            "cannot mix inclusion and exclusion (\"{name}\" is excluded while other fields are included)"
        ));
    }
    if !excludes.is_empty() || (includes.is_empty() && id_expr.is_none() && !keep_id) {
        let mut paths: Vec<Vec<String>> = excludes.into_iter().map(|(_, p)| p).collect();
        if !keep_id {
            paths.push(vec!["_id".to_owned()]);
        }
        return Ok(Projection::Exclude(paths));
    }
    Ok(Projection::Include {
        keep_id,
        id_expr,
        fields: includes,
    })
}

pub(super) fn parse_add_fields(v: &Value) -> R<Vec<(Vec<String>, Expr)>> {
    spec_fields(v)?
        .into_iter()
        .map(|(path, val)| Ok((field_path(&path)?, parse_expr(val)?)))
        .collect()
}

pub(super) fn parse_unset(v: &Value) -> R<Vec<Vec<String>>> {
    let names: Vec<&Value> = match v {
        Value::String(_) => vec![v],
        Value::Array(items) if !items.is_empty() => items.iter().collect(),
        _ => return Err(format!("takes a field name or an array of them, got {v}")),
    };
    names
        .into_iter()
        .map(|n| match n {
            Value::String(s) => field_path(s),
            other => Err(format!("field names are strings, got {other}")),
        })
        .collect()
}

pub(super) fn parse_sort(v: &Value) -> R<Vec<SortKey>> {
    let Value::Object(spec) = v else {
        return Err(format!("takes an object like {{\"field\": -1}}, got {v}"));
    };
    if spec.is_empty() {
        return Err("needs at least one field".into());
    }
    spec.iter()
        .map(|(k, dir)| {
            let desc = match dir.as_f64() {
                Some(1.0) => false,
                Some(-1.0) => true,
                _ if dir.is_object() => {
                    return Err(format!("sort on \"{k}\": {dir} is not supported"));
                }
                _ => return Err(format!("sort on \"{k}\" must be 1 or -1, got {dir}")),
            };
            Ok(SortKey {
                dotted: k.clone(),
                path: field_path(k)?,
                desc,
            })
        })
        .collect()
}

pub(super) fn parse_count(v: &Value) -> R<String> {
    match v {
        Value::String(s) if !s.is_empty() && !s.starts_with('$') && !s.contains('.') => {
            Ok(s.clone())
        }
        _ => Err(format!(
            "takes the name of the output field, like \"total\"; got {v}"
        )),
    }
}

pub(super) fn parse_unwind(v: &Value) -> R<Unwind> {
    let (path, index, preserve) = match v {
        Value::String(s) => (s.as_str(), None, false),
        Value::Object(o) => {
            if let Some(k) = o.keys().find(|k| {
                !matches!(
                    k.as_str(),
                    "path" | "includeArrayIndex" | "preserveNullAndEmptyArrays"
                )
            }) {
                return Err(format!("unknown option \"{k}\""));
            }
            let path = o
                .get("path")
                .and_then(Value::as_str)
                .ok_or("needs a path like \"$tags\"")?;
            let index = match o.get("includeArrayIndex") {
                None => None,
                Some(Value::String(s)) => Some(field_path(s)?),
                Some(other) => {
                    return Err(format!("includeArrayIndex takes a field name, got {other}"));
                }
            };
            let preserve = match o.get("preserveNullAndEmptyArrays") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(format!(
                        "preserveNullAndEmptyArrays takes true or false, got {other}"
                    ));
                }
            };
            (path, index, preserve)
        }
        _ => return Err(format!("takes a path like \"$tags\" or an object, got {v}")),
    };
    let field = path
        .strip_prefix('$')
        .ok_or_else(|| format!("the path must start with $, like \"${path}\""))?;
    Ok(Unwind {
        path: field_path(field)?,
        index,
        preserve,
    })
}

/// Runs `$project`, charging `budget` for the values it computes (what it copies from the
/// input is never more than the input).
pub(super) fn run_project(
    p: &Projection,
    docs: Vec<Doc>,
    budget: &mut Budget,
) -> Result<Vec<Doc>, BudgetError> {
    match p {
        Projection::Exclude(paths) => Ok(without_paths(paths, docs)),
        Projection::Include {
            keep_id,
            id_expr,
            fields,
        } => docs
            .iter()
            .map(|d| {
                let mut out = Map::new();
                match id_expr {
                    Some(e) => {
                        if let Some(v) = eval(e, d) {
                            budget.charge_value(&v)?;
                            out.insert("_id".to_owned(), v);
                        }
                    }
                    None if *keep_id => {
                        if let Some(v) = d.get("_id") {
                            out.insert("_id".to_owned(), v.clone());
                        }
                    }
                    None => {}
                }
                for (path, item) in fields {
                    match item {
                        None => copy_path(d, &mut out, path),
                        Some(e) => {
                            if let Some(v) = eval(e, d) {
                                budget.charge_value(&v)?;
                                set_path(&mut out, path, v);
                            }
                        }
                    }
                }
                Ok(out)
            })
            .collect(),
    }
}

/// A sort key of one value: an array sorts by its smallest element ascending and its largest
/// descending, as in MongoDB.
fn sort_value(v: Option<Value>, desc: bool) -> Option<Value> {
    match v {
        Some(Value::Array(items)) => {
            let pick = |a: &&Value, b: &&Value| total_cmp(Some(a), Some(b));
            let chosen = if desc {
                items.iter().max_by(pick)
            } else {
                items.iter().min_by(pick)
            };
            chosen.cloned()
        }
        other => other,
    }
}

pub(super) fn run_sort(keys: &[SortKey], docs: Vec<Doc>) -> Vec<Doc> {
    let mut keyed: Vec<(Vec<Option<Value>>, Doc)> = docs
        .into_iter()
        .map(|d| {
            let k = keys
                .iter()
                .map(|k| sort_value(get_path(&d, &k.path), k.desc))
                .collect();
            (k, d)
        })
        .collect();
    // A stable sort: ties keep their input order.
    keyed.sort_by(|(a, _), (b, _)| {
        a.iter()
            .zip(b)
            .zip(keys)
            .map(|((x, y), k)| {
                let o = total_cmp(x.as_ref(), y.as_ref());
                if k.desc { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    keyed.into_iter().map(|(_, d)| d).collect()
}

/// Runs `$unwind`, charging `budget` for every copy of a document it makes (the document
/// without the array, plus the element it takes) before making it.
pub(super) fn run_unwind(
    u: &Unwind,
    docs: Vec<Doc>,
    max_docs: usize,
    budget: &mut Budget,
) -> Result<Vec<Doc>, RunError> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let value = get_direct(&doc, &u.path).cloned();
        match value {
            Some(Value::Array(items)) if !items.is_empty() => {
                if out.len() + items.len() > max_docs {
                    return Err(too_many("$unwind", max_docs).into());
                }
                let whole = doc_size(&doc);
                let array: usize = items.iter().map(value_size).sum();
                let rest = whole.saturating_sub(array);
                for (i, item) in items.into_iter().enumerate() {
                    budget.charge(rest + value_size(&item))?;
                    let mut d = doc.clone();
                    set_path(&mut d, &u.path, item);
                    if let Some(ix) = &u.index {
                        set_path(&mut d, ix, Value::from(i));
                    }
                    out.push(d);
                }
            }
            Some(Value::Array(_)) | None | Some(Value::Null) => {
                if u.preserve {
                    let mut d = doc;
                    // An empty array is dropped from the output; null stays null.
                    if matches!(value, Some(Value::Array(_))) {
                        remove_path(&mut d, &u.path);
                    }
                    if let Some(ix) = &u.index {
                        set_path(&mut d, ix, Value::Null);
                    }
                    out.push(d);
                }
            }
            // A single value unwinds as an array of itself.
            Some(_) => {
                let mut d = doc;
                if let Some(ix) = &u.index {
                    set_path(&mut d, ix, Value::Null);
                }
                out.push(d);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::run;
    use serde_json::{Value, json};
    #[test]
    fn shaping_stages() {
        let cases: Vec<(Value, Value)> = vec![
            (
                json!([{"$match": {"_id": "a1"}}, {"$project": {"name": 1, "dims.w": 1}}]),
                json!([{"_id": "a1", "name": "apple", "dims": {"w": 1}}]),
            ),
            (
                json!([{"$match": {"_id": "a1"}}, {"$project": {"_id": 0, "label": "$name", "total": {"$multiply": ["$price", "$qty"]}, "k": {"$toUpper": "$kind"}}}]),
                json!([{"label": "apple", "total": 30, "k": "FRUIT"}]),
            ),
            (
                json!([{"$match": {"_id": "a4"}}, {"$project": {"scores.s": 1, "_id": 0}}]),
                json!([{"scores": [{"s": 80}, {"s": 90}]}]),
            ),
            (
                json!([{"$match": {"_id": "a3"}}, {"$project": {"tags": 0, "when": 0, "qty": 0}}]),
                json!([{"_id": "a3", "name": "carrot", "kind": "veg", "price": 2}]),
            ),
            (
                json!([{"$match": {"_id": "a3"}}, {"$addFields": {"value": {"$multiply": ["$price", 10]}, "dims.d": 4, "missing": "$nope"}}, {"$project": {"value": 1, "dims": 1}}]),
                json!([{"_id": "a3", "value": 20, "dims": {"d": 4}}]),
            ),
            (
                json!([{"$match": {"_id": "a1"}}, {"$set": {"dims.w": 5}}, {"$unset": ["tags", "when", "dims.h"]}]),
                json!([{"_id": "a1", "name": "apple", "kind": "fruit", "price": 3, "qty": 10, "dims": {"w": 5}}]),
            ),
            (
                json!([{"$match": {"_id": "a3"}}, {"$unset": "tags"}, {"$project": {"_id": 1}}]),
                json!([{"_id": "a3"}]),
            ),
            (
                json!([{"$sort": {"price": -1}}, {"$project": {"_id": 1}}]),
                json!([{"_id": "a1"}, {"_id": "a3"}, {"_id": "a2"}, {"_id": "a4"}]),
            ),
            (
                json!([{"$sort": {"kind": -1, "qty": 1}}, {"$skip": 1}, {"$limit": 2}, {"$project": {"_id": 1}}]),
                json!([{"_id": "a4"}, {"_id": "a1"}]),
            ),
            (
                json!([{"$match": {"kind": "fruit"}}, {"$count": "fruits"}]),
                json!([{"fruits": 3}]),
            ),
            (
                json!([{"$match": {"kind": "none"}}, {"$count": "n"}]),
                json!([]),
            ),
            (
                json!([{"$match": {"_id": {"$in": ["a1", "a3"]}}}, {"$unwind": "$tags"}, {"$project": {"tags": 1}}]),
                json!([{"_id": "a1", "tags": "red"}, {"_id": "a1", "tags": "sweet"}]),
            ),
            (
                json!([{"$match": {"_id": {"$in": ["a1", "a3", "a4"]}}},
                       {"$unwind": {"path": "$tags", "preserveNullAndEmptyArrays": true, "includeArrayIndex": "i"}},
                       {"$project": {"tags": 1, "i": 1}}]),
                json!([
                    {"_id": "a1", "tags": "red", "i": 0}, {"_id": "a1", "tags": "sweet", "i": 1},
                    {"_id": "a3", "i": null}, {"_id": "a4", "i": null}
                ]),
            ),
            (
                json!([{"$unwind": "$tags"}, {"$group": {"_id": "$tags", "n": {"$sum": 1}}}, {"$sort": {"n": -1, "_id": 1}}, {"$limit": 2}]),
                json!([{"_id": "sweet", "n": 2}, {"_id": "red", "n": 1}]),
            ),
            (
                json!([{"$match": {"_id": {"$in": ["a1", "a3"]}}},
                       {"$lookup": {"from": "kinds", "localField": "kind", "foreignField": "code", "as": "k"}},
                       {"$project": {"k.label": 1}}]),
                json!([
                    {"_id": "a1", "k": [{"label": "Fruit"}, {"label": "Also fruit"}]},
                    {"_id": "a3", "k": [{"label": "Vegetable"}]}
                ]),
            ),
            (
                json!([{"$group": {"_id": "$kind"}}, {"$match": {"_id": "veg"}}]),
                json!([{"_id": "veg"}]),
            ),
            (
                json!([{"$match": {"_id": "a1"}}, {"$project": {"_id": 0, "y": {"$year": "$when"}, "m": {"$month": "$when"},
                        "c": {"$concat": ["$name", "-", "$kind"]}, "s": {"$size": "$tags"},
                        "cond": {"$cond": {"if": {"$gte": ["$qty", 5]}, "then": "many", "else": "few"}},
                        "nn": {"$ifNull": ["$missing", "dflt"]}, "d": {"$divide": ["$qty", 4]},
                        "lit": {"$literal": "$notafield"}, "str": {"$toString": "$qty"}}}]),
                json!([{"y": 2024, "m": 1, "c": "apple-fruit", "s": 2, "cond": "many", "nn": "dflt", "d": 2.5, "lit": "$notafield", "str": "10"}]),
            ),
        ];
        for (pipeline, want) in cases {
            let got = run(pipeline.clone()).unwrap_or_else(|e| panic!("{pipeline}: {e}"));
            assert_eq!(got, want, "{pipeline}");
        }
    }
}

//! The schemaless `$match`: a filter parsed into predicates up front, then tested against
//! documents whose shape no model describes (values compared as given, never cast).

use std::cmp::Ordering;

use regex::Regex;
use serde_json::Value;

use super::expr::{Expr, eval, parse_expr};
use super::values::{field_path, field_values, json_eq, same_type_cmp, truthy};
use super::{Doc, R};
use crate::url::regex_pattern;
/// A schemaless filter: field paths are taken as written and values compared as given.
#[derive(Debug, Clone)]
pub(super) enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Nor(Vec<Pred>),
    Field(Vec<String>, Test),
    /// `$expr`: an aggregation expression, true when truthy. No JavaScript is ever run.
    Expr(Expr),
}

/// A test on the values a field path reaches.
#[derive(Debug, Clone)]
pub(super) enum Test {
    Eq(Value),
    Ne(Value),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Regex(Regex),
    Size(usize),
    All(Vec<Value>),
    ElemMatch(Box<ElemMatch>),
    Not(Box<Test>),
    And(Vec<Test>),
}

#[derive(Debug, Clone)]
pub(super) enum ElemMatch {
    /// `{$elemMatch: {field: …}}`: some element is a sub-document matching the filter.
    Doc(Pred),
    /// `{$elemMatch: {$gte: 1, $lt: 5}}`: one element satisfies every operator.
    Value(Test),
}

pub(super) fn parse_pred(v: &Value) -> R<Pred> {
    let Value::Object(obj) = v else {
        return Err(format!("a filter must be an object, got {v}"));
    };
    let mut parts = Vec::new();
    for (key, arg) in obj {
        let part = match key.as_str() {
            "$and" | "$or" | "$nor" => {
                let list = match arg {
                    Value::Array(items) if !items.is_empty() => {
                        items.iter().map(parse_pred).collect::<R<Vec<_>>>()?
                    }
                    _ => return Err(format!("{key} takes a non-empty array of filters")),
                };
                match key.as_str() {
                    "$and" => Pred::And(list),
                    "$or" => Pred::Or(list),
                    _ => Pred::Nor(list),
                }
            }
            "$expr" => Pred::Expr(parse_expr(arg)?),
            _ if key.starts_with('$') => return Err(format!("operator {key} is not supported")),
            _ => Pred::Field(field_path(key)?, parse_test(key, arg)?),
        };
        parts.push(part);
    }
    Ok(match parts.len() {
        1 => parts.pop().unwrap_or(Pred::And(Vec::new())),
        _ => Pred::And(parts),
    })
}

pub(super) fn is_operator_object(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.keys().any(|k| k.starts_with('$')))
}

fn compile_regex(field: &str, arg: &Value, options: &str) -> R<Regex> {
    let Value::String(re) = arg else {
        return Err(format!("filter on \"{field}\": $regex takes a string"));
    };
    let raw = if options.is_empty() || re.starts_with('/') {
        re.clone()
    } else {
        format!("/{re}/{options}")
    };
    let pattern = regex_pattern(field, &raw).map_err(|e| e.0)?;
    regex::RegexBuilder::new(&pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|_| format!("filter on \"{field}\": invalid regex \"{raw}\""))
}

fn value_list(field: &str, op: &str, arg: &Value) -> R<Vec<Value>> {
    match arg {
        Value::Array(items) => Ok(items.clone()),
        _ => Err(format!("filter on \"{field}\": {op} takes an array")),
    }
}

fn parse_test(field: &str, v: &Value) -> R<Test> {
    let ops = match v {
        Value::Object(ops) if is_operator_object(v) => ops,
        _ => return Ok(Test::Eq(v.clone())),
    };
    if let Some(k) = ops.keys().find(|k| !k.starts_with('$')) {
        return Err(format!(
            "filter on \"{field}\": cannot mix operators with the field \"{k}\""
        ));
    }
    let options = match ops.get("$options") {
        None => "",
        Some(Value::String(s)) if ops.contains_key("$regex") => s.as_str(),
        Some(Value::String(_)) => {
            return Err(format!("filter on \"{field}\": $options needs $regex"));
        }
        Some(_) => return Err(format!("filter on \"{field}\": $options takes a string")),
    };
    let mut tests = Vec::new();
    for (op, arg) in ops {
        let test = match op.as_str() {
            "$eq" => Test::Eq(arg.clone()),
            "$ne" => Test::Ne(arg.clone()),
            "$gt" => Test::Gt(arg.clone()),
            "$gte" => Test::Gte(arg.clone()),
            "$lt" => Test::Lt(arg.clone()),
            "$lte" => Test::Lte(arg.clone()),
            "$in" => Test::In(value_list(field, op, arg)?),
            "$nin" => Test::Nin(value_list(field, op, arg)?),
            "$all" => Test::All(value_list(field, op, arg)?),
            "$exists" => Test::Exists(truthy(Some(arg))),
            "$regex" => Test::Regex(compile_regex(field, arg, options)?),
            "$options" => continue,
            "$size" => {
                let n = arg
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        format!("filter on \"{field}\": $size takes a whole number, got {arg}")
                    })?;
                Test::Size(n)
            }
            "$elemMatch" => {
                let Value::Object(inner) = arg else {
                    return Err(format!("filter on \"{field}\": $elemMatch takes an object"));
                };
                // Operators on the element itself, unless they are the logical ones, which
                // combine filters on the element's fields.
                let on_value = inner.keys().any(|k| {
                    k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor" | "$expr")
                });
                let em = if on_value {
                    ElemMatch::Value(parse_test(field, arg)?)
                } else {
                    ElemMatch::Doc(parse_pred(arg)?)
                };
                Test::ElemMatch(Box::new(em))
            }
            "$not" => match arg {
                Value::Object(_) if is_operator_object(arg) => {
                    Test::Not(Box::new(parse_test(field, arg)?))
                }
                Value::String(_) => {
                    Test::Not(Box::new(Test::Regex(compile_regex(field, arg, "")?)))
                }
                _ => {
                    return Err(format!(
                        "filter on \"{field}\": $not takes an operator object or a regex"
                    ));
                }
            },
            other => {
                return Err(format!(
                    "filter on \"{field}\": operator {other} is not supported"
                ));
            }
        };
        tests.push(test);
    }
    Ok(match tests.len() {
        1 => tests.pop().unwrap_or(Test::And(Vec::new())),
        _ => Test::And(tests),
    })
}

pub(super) fn pred_matches(p: &Pred, doc: &Doc) -> bool {
    match p {
        Pred::And(parts) => parts.iter().all(|p| pred_matches(p, doc)),
        Pred::Or(parts) => parts.iter().any(|p| pred_matches(p, doc)),
        Pred::Nor(parts) => !parts.iter().any(|p| pred_matches(p, doc)),
        Pred::Field(path, test) => test_matches(test, &field_values(doc, path)),
        Pred::Expr(e) => truthy(eval(e, doc).as_ref()),
    }
}

/// The values a test looks at: each value found, and the elements of those that are arrays
/// (`{tags: "red"}` matches `tags: ["red", "sweet"]`).
fn candidates<'a>(found: &[&'a Value]) -> impl Iterator<Item = &'a Value> {
    found
        .iter()
        .copied()
        .flat_map(|v| std::iter::once(v).chain(v.as_array().into_iter().flatten()))
}

fn eq_match(found: &[&Value], x: &Value) -> bool {
    if x.is_null() {
        return found.is_empty() || candidates(found).any(Value::is_null);
    }
    candidates(found).any(|c| json_eq(c, x))
}

fn range_match(found: &[&Value], x: &Value, accept: fn(Ordering) -> bool, inclusive: bool) -> bool {
    if x.is_null() {
        // Only `$gte: null` and `$lte: null` hold, for null or missing values.
        return inclusive && eq_match(found, x);
    }
    candidates(found).any(|c| same_type_cmp(c, x).is_some_and(accept))
}

fn test_matches(t: &Test, found: &[&Value]) -> bool {
    match t {
        Test::Eq(x) => eq_match(found, x),
        Test::Ne(x) => !eq_match(found, x),
        Test::Gt(x) => range_match(found, x, Ordering::is_gt, false),
        Test::Gte(x) => range_match(found, x, Ordering::is_ge, true),
        Test::Lt(x) => range_match(found, x, Ordering::is_lt, false),
        Test::Lte(x) => range_match(found, x, Ordering::is_le, true),
        Test::In(xs) => xs.iter().any(|x| eq_match(found, x)),
        Test::Nin(xs) => !xs.iter().any(|x| eq_match(found, x)),
        Test::Exists(want) => found.is_empty() != *want,
        Test::Regex(re) => candidates(found).any(|c| c.as_str().is_some_and(|s| re.is_match(s))),
        Test::Size(n) => found
            .iter()
            .any(|v| v.as_array().is_some_and(|a| a.len() == *n)),
        Test::All(xs) => !xs.is_empty() && xs.iter().all(|x| eq_match(found, x)),
        Test::ElemMatch(em) => found.iter().any(|v| {
            v.as_array().is_some_and(|items| {
                items.iter().any(|item| match em.as_ref() {
                    ElemMatch::Doc(p) => item.as_object().is_some_and(|m| pred_matches(p, m)),
                    ElemMatch::Value(t) => test_matches(t, &[item]),
                })
            })
        }),
        Test::Not(inner) => !test_matches(inner, found),
        Test::And(tests) => tests.iter().all(|t| test_matches(t, found)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ids, run};
    use serde_json::{Value, json};
    #[test]
    fn match_operators() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({"kind": "fruit"}), vec!["a1", "a2", "a4"]),
            (json!({"price": {"$gt": 1.5}}), vec!["a1", "a3"]),
            (json!({"price": {"$gte": 1.5, "$lt": 3}}), vec!["a2", "a3"]),
            (json!({"price": {"$lte": 2}}), vec!["a2", "a3"]),
            (json!({"price": null}), vec!["a4"]),
            (json!({"price": {"$ne": null}}), vec!["a1", "a2", "a3"]),
            (json!({"qty": {"$exists": false}}), vec!["a4"]),
            (json!({"tags": "sweet"}), vec!["a1", "a2"]),
            (json!({"tags": ["red", "sweet"]}), vec!["a1"]),
            (json!({"tags": {"$size": 0}}), vec!["a3"]),
            (json!({"tags": {"$all": ["sweet", "red"]}}), vec!["a1"]),
            (
                json!({"name": {"$in": ["apple", "carrot"]}}),
                vec!["a1", "a3"],
            ),
            (
                json!({"name": {"$nin": ["apple", "carrot"]}}),
                vec!["a2", "a4"],
            ),
            (
                json!({"name": {"$regex": "^[a-c]", "$options": "i"}}),
                vec!["a1", "a2", "a3"],
            ),
            (json!({"name": {"$regex": "/^d/i"}}), vec!["a4"]),
            (json!({"name": {"$not": {"$regex": "^[abc]"}}}), vec!["a4"]),
            (json!({"dims.h": 2}), vec!["a1"]),
            (json!({"scores.s": {"$gt": 85}}), vec!["a4"]),
            (
                json!({"scores": {"$elemMatch": {"s": {"$gte": 85}}}}),
                vec!["a4"],
            ),
            (json!({"qty": {"$elemMatch": {"$gt": 1}}}), vec![]),
            (
                json!({"$or": [{"qty": 0}, {"name": "apple"}]}),
                vec!["a1", "a3"],
            ),
            (json!({"$nor": [{"kind": "fruit"}]}), vec!["a3"]),
            (
                json!({"$and": [{"kind": "fruit"}, {"qty": {"$gte": 10}}]}),
                vec!["a1", "a2"],
            ),
            (
                json!({"$expr": {"$gt": ["$qty", "$price"]}}),
                vec!["a1", "a2"],
            ),
            (
                json!({"when": {"$gte": "2024-02-01T00:00:00.000Z"}}),
                vec!["a2", "a3"],
            ),
            (json!({"qty": {"$gt": "5"}}), vec![]),
            (json!({}), vec!["a1", "a2", "a3", "a4"]),
        ];
        for (filter, want) in cases {
            let got = run(json!([{"$match": filter}])).unwrap_or_else(|e| panic!("{filter}: {e}"));
            assert_eq!(ids(&got), want, "{filter}");
        }
    }
}

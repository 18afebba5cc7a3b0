//! Values as MongoDB's aggregation sees them: equality, the total order between types, truth,
//! and reading and writing field paths. Shared by `$match`, expressions and every stage.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::{Doc, R};
/// A finite number as JSON, whole values as integers so sums read `3`, not `3.0`.
pub(super) fn number_value(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Value::from(f as i64);
    }
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Equality as MongoDB sees it: numbers by value (`1 == 1.0`), containers element by element.
pub(super) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// MongoDB's order between types: null (and missing) < numbers < strings < objects < arrays <
/// booleans. Ids and dates are strings here, so they sort among the strings.
fn type_rank(v: Option<&Value>) -> u8 {
    match v {
        None | Some(Value::Null) => 0,
        Some(Value::Number(_)) => 1,
        Some(Value::String(_)) => 2,
        Some(Value::Object(_)) => 3,
        Some(Value::Array(_)) => 4,
        Some(Value::Bool(_)) => 5,
    }
}

fn num_cmp(x: &serde_json::Number, y: &serde_json::Number) -> Ordering {
    match (x.as_i64(), y.as_i64()) {
        (Some(i), Some(j)) => i.cmp(&j),
        _ => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
    }
}

/// A total order over values, for `$sort`, `$min`/`$max` and expression comparisons.
pub(super) fn total_cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => num_cmp(x, y),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Array(x)), Some(Value::Array(y))) => x
            .iter()
            .zip(y)
            .map(|(a, b)| total_cmp(Some(a), Some(b)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Some(Value::Object(x)), Some(Value::Object(y))) => x
            .iter()
            .zip(y)
            .map(|((ka, va), (kb, vb))| ka.cmp(kb).then_with(|| total_cmp(Some(va), Some(vb))))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        _ => Ordering::Equal,
    }
}

/// An order only between values of one kind: a query `$gt` never compares a string with a
/// number (MongoDB's type bracketing).
pub(super) fn same_type_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(num_cmp(x, y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A value with whole floats turned into integers, so `1` and `1.0` group together.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.as_i64().is_none() => n.as_f64().map_or(v.clone(), number_value),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        other => other.clone(),
    }
}

/// The key a value groups and joins under.
pub(super) fn canon(v: &Value) -> String {
    normalized(v).to_string()
}

/// Truth as MongoDB expressions see it: false, null, missing and 0 are false.
pub(super) fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    }
}

pub(super) fn field_path(s: &str) -> R<Vec<String>> {
    let parts: Vec<String> = s.split('.').map(str::to_owned).collect();
    if parts.iter().any(|p| p.is_empty() || p.starts_with('$')) {
        return Err(format!("bad field path \"{s}\""));
    }
    Ok(parts)
}

/// The value at `path`; through an array of sub-documents it is the array of their values
/// (`"$items.price"`), as in MongoDB expressions.
pub(super) fn get_path(doc: &Doc, path: &[String]) -> Option<Value> {
    let (head, rest) = path.split_first()?;
    sub_path(doc.get(head)?, rest)
}

fn sub_path(v: &Value, path: &[String]) -> Option<Value> {
    let Some((head, rest)) = path.split_first() else {
        return Some(v.clone());
    };
    match v {
        Value::Object(m) => sub_path(m.get(head)?, rest),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter(|i| i.is_object())
                .filter_map(|i| sub_path(i, path))
                .collect(),
        )),
        _ => None,
    }
}

/// The value at `path` through objects only (for `$unwind`, which names one array).
pub(super) fn get_direct<'a>(doc: &'a Doc, path: &[String]) -> Option<&'a Value> {
    let (head, rest) = path.split_first()?;
    let mut v = doc.get(head)?;
    for seg in rest {
        v = v.as_object()?.get(seg)?;
    }
    Some(v)
}

/// Every value a query path reaches: through arrays of sub-documents, each element's value
/// (MongoDB's implicit array traversal in filters).
pub(super) fn field_values<'a>(doc: &'a Doc, path: &[String]) -> Vec<&'a Value> {
    fn walk<'a>(v: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
        let Some((head, rest)) = path.split_first() else {
            out.push(v);
            return;
        };
        match v {
            Value::Object(m) => {
                if let Some(c) = m.get(head) {
                    walk(c, rest, out);
                }
            }
            Value::Array(items) => {
                if let Some(c) = head.parse::<usize>().ok().and_then(|i| items.get(i)) {
                    walk(c, rest, out);
                }
                for item in items.iter().filter(|i| i.is_object()) {
                    walk(item, path, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some((head, rest)) = path.split_first()
        && let Some(v) = doc.get(head)
    {
        walk(v, rest, &mut out);
    }
    out
}

pub(super) fn set_path(doc: &mut Doc, path: &[String], value: Value) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        doc.insert(head.clone(), value);
        return;
    }
    let slot = doc
        .entry(head.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Value::Object(inner) = slot {
        set_path(inner, rest, value);
    }
}

pub(super) fn remove_path(doc: &mut Doc, path: &[String]) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        // shift_remove keeps the other fields in their order.
        doc.shift_remove(head);
        return;
    }
    match doc.get_mut(head) {
        Some(Value::Object(inner)) => remove_path(inner, rest),
        Some(Value::Array(items)) => {
            for item in items {
                if let Value::Object(inner) = item {
                    remove_path(inner, rest);
                }
            }
        }
        _ => {}
    }
}

/// The documents with the values at `paths` removed (`$unset`, `$project` exclusion).
pub(super) fn without_paths(paths: &[Vec<String>], docs: Vec<Doc>) -> Vec<Doc> {
    docs.into_iter()
        .map(|mut d| {
            for path in paths {
                remove_path(&mut d, path);
            }
            d
        })
        .collect()
}

/// Copies the value at `path` from `src` into the same place in `dst` (for `$project`
/// inclusion), projecting each sub-document of an array on the way.
pub(super) fn copy_path(src: &Doc, dst: &mut Doc, path: &[String]) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    let Some(v) = src.get(head) else {
        return;
    };
    if rest.is_empty() {
        dst.insert(head.clone(), v.clone());
        return;
    }
    match v {
        Value::Object(inner) => {
            let slot = dst
                .entry(head.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(d) = slot {
                copy_path(inner, d, rest);
            }
        }
        Value::Array(items) => {
            let objects: Vec<&Doc> = items.iter().filter_map(Value::as_object).collect();
            let slot = dst.entry(head.clone()).or_insert_with(|| {
                Value::Array(objects.iter().map(|_| Value::Object(Map::new())).collect())
            });
            if let Value::Array(outs) = slot {
                for (s, o) in objects.iter().zip(outs.iter_mut()) {
                    if let Value::Object(d) = o {
                        copy_path(s, d, rest);
                    }
                }
            }
        }
        _ => {}
    }
}

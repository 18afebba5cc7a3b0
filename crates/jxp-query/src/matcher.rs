//! The in-memory matcher: decides whether one document satisfies a filter with the same
//! meaning the SQL renderer gives it, so realtime filters agree with REST queries.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::ast::{Cond, Filter, Op};

/// Whether `doc` satisfies `filter`.
pub fn matches(filter: &Filter, doc: &Map<String, Value>) -> bool {
    eval(filter, Scope::Doc(doc))
}

/// What the paths of a filter are relative to: the document, or (inside `$elemMatch`) one
/// element of an array.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Doc(&'a Map<String, Value>),
    Elem(&'a Value),
}

fn eval(filter: &Filter, scope: Scope<'_>) -> bool {
    match filter {
        Filter::All => true,
        Filter::And(parts) => parts.iter().all(|f| eval(f, scope)),
        Filter::Or(parts) => parts.iter().any(|f| eval(f, scope)),
        Filter::Nor(parts) => !parts.iter().any(|f| eval(f, scope)),
        Filter::Not(inner) => !eval(inner, scope),
        Filter::Cond(cond) => match scope {
            Scope::Doc(doc) => matches_cond(cond, doc),
            Scope::Elem(item) => matches_elem_cond(cond, item),
        },
        Filter::ElemMatch { path, inner } => match scope {
            Scope::Doc(doc) => match whole_value(doc, &path.segments) {
                Some(Value::Array(items)) => items.iter().any(|i| eval(inner, Scope::Elem(i))),
                _ => false,
            },
            // The parser rejects arrays inside `$elemMatch`; the SQL renders this as false too.
            Scope::Elem(_) => false,
        },
    }
}

/// The value at the full path, arrays not looked into: what `$size`, `$all` and `$elemMatch`
/// examine as a whole.
fn whole_value<'a>(doc: &'a Map<String, Value>, segments: &[String]) -> Option<&'a Value> {
    let (first, rest) = segments.split_first()?;
    lookup(doc.get(first)?, rest)
}

/// A condition inside `$elemMatch`: its path is relative to the element, and arrays are
/// not looked into (the parser allows none there).
fn matches_elem_cond(cond: &Cond, item: &Value) -> bool {
    if matches!(cond.op, Op::Size | Op::All) {
        // Never built by the parser (the element path is not an array field); the SQL
        // renders these as false as well.
        return false;
    }
    compare(&cond.op, lookup(item, &cond.path.segments), &cond.value)
}

/// `$size` and `$all`: only an array qualifies, as in MongoDB (a stored null does not).
fn matches_whole_array(cond: &Cond, doc: &Map<String, Value>) -> bool {
    let Some(Value::Array(items)) = whole_value(doc, &cond.path.segments) else {
        return false;
    };
    match cond.op {
        Op::Size => cond
            .value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .is_some_and(|n| n == items.len()),
        Op::All => match cond.value.as_array() {
            Some(wanted) if !wanted.is_empty() => wanted
                .iter()
                .all(|w| items.iter().any(|i| compare(&Op::Eq, Some(i), w))),
            _ => false,
        },
        _ => false,
    }
}

fn lookup<'a>(mut v: &'a Value, segments: &[String]) -> Option<&'a Value> {
    for s in segments {
        v = v.as_object()?.get(s)?;
    }
    Some(v)
}

fn matches_cond(cond: &Cond, doc: &Map<String, Value>) -> bool {
    if matches!(cond.op, Op::Size | Op::All) {
        return matches_whole_array(cond, doc);
    }
    let segments = &cond.path.segments;
    let root_key = if segments.len() == 1 && segments[0] == "id" {
        "_id"
    } else {
        ""
    };
    let value_at = |segs: &[String]| -> Option<Value> {
        let (first, rest) = segs.split_first()?;
        let key = if root_key.is_empty() {
            first.as_str()
        } else {
            root_key
        };
        let v = doc.get(key)?;
        lookup(v, rest).cloned()
    };
    let Some(at) = cond.path.array_at else {
        let v = value_at(segments);
        return compare(&cond.op, v.as_ref(), &cond.value);
    };
    let split = (at + 1).min(segments.len());
    let (array_part, rest) = segments.split_at(split);
    let items = match value_at(array_part) {
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
        None => Vec::new(),
    };
    let elem = |item: &Value| lookup(item, rest).cloned();
    match cond.op {
        Op::Ne => !items
            .iter()
            .any(|i| compare(&Op::Eq, elem(i).as_ref(), &cond.value)),
        Op::Nin => !items
            .iter()
            .any(|i| compare(&Op::In, elem(i).as_ref(), &cond.value)),
        Op::Exists if rest.is_empty() => {
            value_at(array_part).is_some_and(|v| !v.is_null())
                == cond.value.as_bool().unwrap_or(true)
        }
        ref op => items
            .iter()
            .any(|i| compare(op, elem(i).as_ref(), &cond.value)),
    }
}

/// A number as SQLite holds it: an integer when it fits, else a float. Booleans are 0 and 1,
/// as SQLite's JSON functions give them.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn numeric(v: &Value) -> Option<Num> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(Num::Int(i)),
            None => n.as_f64().map(Num::Float),
        },
        Value::Bool(b) => Some(Num::Int(i64::from(*b))),
        _ => None,
    }
}

/// Compares an integer with a float exactly, as SQLite does; going through `f64` would make
/// large integers that differ compare equal.
fn int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // 2^63: every i64 is below it, and every float at or above it is above every i64.
    if f >= 9_223_372_036_854_775_808.0 {
        return Some(Ordering::Less);
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    // In range and integral, so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let w = whole as i64;
    match i.cmp(&w) {
        Ordering::Equal => 0.0_f64.partial_cmp(&(f - whole)),
        other => Some(other),
    }
}

fn num_order(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => int_float(x, y),
        (Num::Float(x), Num::Int(y)) => int_float(y, x).map(Ordering::reverse),
    }
}

/// Numbers order with numbers and strings with strings (byte-wise, as SQLite's BINARY
/// collation); nothing else is ordered.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (numeric(a), numeric(b)) {
        return num_order(x, y);
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Equality of two present values. Objects and arrays are equal when their JSON text is, as
/// the store compares them (and as MongoDB does, key order included).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Array(_) | Value::Object(_), Value::Array(_) | Value::Object(_)) => {
            json_text(a) == json_text(b)
        }
        _ => order(a, b) == Some(Ordering::Equal),
    }
}

/// The compact JSON text of a value. `Value`'s own `==` ignores key order, which neither the
/// store (comparing stored text) nor MongoDB does.
fn json_text(v: &Value) -> String {
    v.to_string()
}

/// Whether `actual` is one of `items`; a null item stands for a missing or null value.
fn one_of(actual: Option<&Value>, items: &[Value]) -> bool {
    items.iter().any(|i| match actual {
        None => i.is_null(),
        Some(a) => equal(a, i),
    })
}

fn compare(op: &Op, actual: Option<&Value>, expected: &Value) -> bool {
    let actual = actual.filter(|v| !v.is_null());
    match op {
        Op::Eq => one_of(actual, std::slice::from_ref(expected)),
        Op::Ne => !one_of(actual, std::slice::from_ref(expected)),
        Op::Gt => actual.and_then(|a| order(a, expected)) == Some(Ordering::Greater),
        Op::Gte => matches!(
            actual.and_then(|a| order(a, expected)),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        Op::Lt => actual.and_then(|a| order(a, expected)) == Some(Ordering::Less),
        Op::Lte => matches!(
            actual.and_then(|a| order(a, expected)),
            Some(Ordering::Less | Ordering::Equal)
        ),
        Op::In => one_of(
            actual,
            expected.as_array().map(Vec::as_slice).unwrap_or_default(),
        ),
        Op::Nin => !one_of(
            actual,
            expected.as_array().map(Vec::as_slice).unwrap_or_default(),
        ),
        Op::Exists => actual.is_some() == expected.as_bool().unwrap_or(true),
        Op::Regex => match (actual, expected) {
            (Some(Value::String(s)), Value::String(pattern)) => regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .is_ok_and(|re| re.is_match(s)),
            _ => false,
        },
        // Handled on the whole array before any element is compared.
        Op::Size | Op::All => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Path;
    use serde_json::json;

    #[test]
    fn table() {
        let doc = json!({
            "_id": "abc", "foo": "Foo", "n": 5, "b": true, "shmack": ["do", "ray"],
            "address": {"city": "Cape Town"}, "composite_array": [{"abar": 1}, {"abar": 4}],
            "nothing": null
        });
        let doc = doc.as_object().cloned().unwrap_or_default();
        let c = |p: Path, op: Op, v: Value| Filter::cond(p, op, v);
        let cases = vec![
            (c(Path::plain("foo"), Op::Eq, json!("Foo")), true),
            (c(Path::plain("foo"), Op::Eq, json!("foo")), false),
            (c(Path::plain("id"), Op::Eq, json!("abc")), true),
            (c(Path::plain("n"), Op::Gte, json!(5)), true),
            (c(Path::plain("n"), Op::Gt, json!(5.0)), false),
            (c(Path::plain("n"), Op::Lt, json!("6")), false),
            (c(Path::plain("b"), Op::Eq, json!(true)), true),
            (c(Path::plain("missing"), Op::Ne, json!("x")), true),
            (c(Path::plain("nothing"), Op::Eq, json!(null)), true),
            (c(Path::plain("missing"), Op::Exists, json!(false)), true),
            (c(Path::plain("foo"), Op::Exists, json!(true)), true),
            (
                c(
                    Path::plain("address.city"),
                    Op::In,
                    json!(["Cape Town", "Durban"]),
                ),
                true,
            ),
            (
                c(Path::plain("address.city"), Op::Nin, json!(["Cape Town"])),
                false,
            ),
            (c(Path::new("shmack", Some(0)), Op::Eq, json!("ray")), true),
            (c(Path::new("shmack", Some(0)), Op::Ne, json!("ray")), false),
            (
                c(Path::new("composite_array.abar", Some(0)), Op::Gt, json!(3)),
                true,
            ),
            (
                c(Path::new("composite_array.abar", Some(0)), Op::Gt, json!(4)),
                false,
            ),
            (c(Path::plain("foo"), Op::Regex, json!("(?i)^foo")), true),
            (c(Path::new("shmack", Some(0)), Op::Size, json!(2)), true),
            (c(Path::new("shmack", Some(0)), Op::Size, json!(1)), false),
            (c(Path::plain("nothing"), Op::Size, json!(0)), false),
            (c(Path::plain("missing"), Op::Size, json!(0)), false),
            (
                c(Path::new("shmack", Some(0)), Op::All, json!(["ray", "do"])),
                true,
            ),
            (
                c(Path::new("shmack", Some(0)), Op::All, json!(["ray", "me"])),
                false,
            ),
            (c(Path::new("shmack", Some(0)), Op::All, json!([])), false),
            (c(Path::plain("foo"), Op::All, json!(["Foo"])), false),
            (
                Filter::ElemMatch {
                    path: Path::new("composite_array", Some(0)),
                    inner: Box::new(Filter::And(vec![
                        c(Path::plain("abar"), Op::Gt, json!(2)),
                        c(Path::plain("abar"), Op::Lt, json!(5)),
                    ])),
                },
                true,
            ),
            (
                Filter::ElemMatch {
                    path: Path::new("composite_array", Some(0)),
                    inner: Box::new(Filter::And(vec![
                        c(Path::plain("abar"), Op::Gt, json!(1)),
                        c(Path::plain("abar"), Op::Lt, json!(4)),
                    ])),
                },
                false,
            ),
            (
                Filter::ElemMatch {
                    path: Path::new("shmack", Some(0)),
                    inner: Box::new(c(Path::element(), Op::Regex, json!("^r"))),
                },
                true,
            ),
            (
                Filter::ElemMatch {
                    path: Path::plain("foo"),
                    inner: Box::new(Filter::All),
                },
                false,
            ),
            (Filter::And(vec![]), true),
            (Filter::Or(vec![]), false),
            (
                Filter::Nor(vec![c(Path::plain("n"), Op::Eq, json!(5))]),
                false,
            ),
        ];
        for (i, (f, want)) in cases.into_iter().enumerate() {
            assert_eq!(matches(&f, &doc), want, "case {i}: {f:?}");
        }
    }
}

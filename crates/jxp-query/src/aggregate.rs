//! The aggregation pipeline of `POST /aggregate`: the stages MongoDB clients send, parsed into
//! typed stages up front (so every mistake is a 400 naming its stage before a document is
//! read), and a pure executor over documents in memory.
//!
//! The executor knows no model. After `$group` or `$project` the documents are not the model's,
//! so `$match` here is schemaless and compares values as given, as MongoDB's aggregation does
//! (it never casts). `$lookup` needs another model's documents: the caller fetches them under
//! its own permission rules and hands them to [`apply_lookup`].
//!
//! Also here: the Extended-JSON-style wrappers (`{"$oid": …}`, `{"$date": …}`,
//! `"ObjectId(\"…\")"`, `"new Date(\"…\")"`, `"relative_date(…)"`) that `/aggregate` and `/query`
//! accept, resolved to the strings ids and dates are stored as.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use jxp_model::{format_date, is_object_id, parse_date};
use regex::Regex;
use serde_json::{Map, Value};

use crate::ast::SortDir;
use crate::error::QueryError;
use crate::url::regex_pattern;

/// A document flowing through the pipeline.
pub type Doc = Map<String, Value>;

/// Internal results carry a bare message; the stage parser prefixes the stage's name.
type R<T> = Result<T, String>;

// ---------------------------------------------------------------------------------------------
// Wrappers
// ---------------------------------------------------------------------------------------------

/// Replaces every wrapper in `v` by the plain value it stands for: `{"$oid": id}` and
/// `"ObjectId(\"id\")"` by the lower-case id, `{"$date": d}`, `"new Date(\"d\")"`,
/// `"ISODate(\"d\")"` and `"relative_date(offset, unit, startof, endof)"` by the ISO date string
/// dates are stored as. `now` anchors the relative forms, so tests can pin it.
pub fn resolve_wrappers(v: &Value, now: DateTime<Utc>) -> Result<Value, QueryError> {
    match v {
        Value::Object(map) => {
            if map.len() == 1 {
                if let Some(id) = map.get("$oid") {
                    return oid_value(id).map(Value::String).map_err(QueryError::new);
                }
                if let Some(d) = map.get("$date") {
                    return date_wrapper(d).map(Value::String).map_err(QueryError::new);
                }
            }
            let mut out = Map::new();
            for (k, inner) in map {
                out.insert(k.clone(), resolve_wrappers(inner, now)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|i| resolve_wrappers(i, now))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::String(s) => Ok(string_wrapper(s, now)
            .map_err(QueryError::new)?
            .unwrap_or_else(|| v.clone())),
        _ => Ok(v.clone()),
    }
}

fn oid_value(v: &Value) -> R<String> {
    match v {
        Value::String(s) if is_object_id(s.trim()) => Ok(s.trim().to_ascii_lowercase()),
        _ => Err(format!(
            "{v} is not a valid ObjectId: an id is 24 hex characters"
        )),
    }
}

fn date_wrapper(v: &Value) -> R<String> {
    // Canonical Extended JSON nests epoch milliseconds as {"$numberLong": "…"}.
    let plain = match v {
        Value::Object(o) => o
            .get("$numberLong")
            .and_then(Value::as_str)
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map_or(Value::Null, Value::from),
        other => other.clone(),
    };
    parse_date(&plain)
        .map(format_date)
        .ok_or_else(|| format!("{v} is not a valid date for $date"))
}

/// The string forms; `None` when `s` is an ordinary string.
fn string_wrapper(s: &str, now: DateTime<Utc>) -> R<Option<Value>> {
    let t = s.trim();
    if let Some(args) = call_args(t, "ObjectId") {
        let id = unquote(args).ok_or_else(|| format!("{s} is not a valid ObjectId"))?;
        return oid_value(&Value::String(id.to_owned())).map(|id| Some(Value::String(id)));
    }
    let date_args = t
        .strip_prefix("new")
        .map(str::trim_start)
        .and_then(|rest| call_args(rest, "Date"))
        .or_else(|| call_args(t, "ISODate"));
    if let Some(args) = date_args {
        let args = args.trim();
        if args.is_empty() {
            return Ok(Some(Value::String(format_date(now))));
        }
        let bad = || format!("{s} is not a valid date");
        let raw = match unquote(args) {
            Some(text) => Value::String(text.to_owned()),
            None => Value::from(args.parse::<i64>().map_err(|_| bad())?),
        };
        return parse_date(&raw)
            .map(|d| Some(Value::String(format_date(d))))
            .ok_or_else(bad);
    }
    if let Some(args) = call_args(t, "relative_date") {
        return relative_date(args, now)
            .map(|d| Some(Value::String(format_date(d))))
            .map_err(|e| format!("{s}: {e}"));
    }
    Ok(None)
}

/// `name(args)` → `args`.
fn call_args<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    s.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    ['"', '\''].iter().find_map(|q| {
        s.strip_prefix(*q)
            .and_then(|r| r.strip_suffix(*q))
            .filter(|_| s.len() >= 2)
    })
}

/// An argument of `relative_date(…)`.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Null,
    Num(f64),
    Text(String),
}

fn parse_args(s: &str) -> R<Vec<Arg>> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                current.push(c);
            }
            (None, ',') => pieces.push(std::mem::take(&mut current)),
            (None, c) => current.push(c),
        }
    }
    if quote.is_some() {
        return Err("unterminated string".into());
    }
    pieces.push(current);
    pieces
        .iter()
        .map(|p| {
            let p = p.trim();
            if p.is_empty() || p == "null" || p == "undefined" {
                Ok(Arg::Null)
            } else if let Some(text) = unquote(p) {
                Ok(Arg::Text(text.to_owned()))
            } else {
                p.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Arg::Num)
                    .ok_or_else(|| format!("bad argument {p}"))
            }
        })
        .collect()
}

/// Calendar units, by moment.js's names (which JXP's `relative_date` takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Year,
    Quarter,
    Month,
    Week,
    IsoWeek,
    Day,
    Hour,
    Minute,
    Second,
}

fn unit(s: &str) -> R<Unit> {
    let s = s.trim();
    // moment's one-letter forms are case-sensitive: "M" is a month, "m" a minute.
    Ok(match s {
        "y" => Unit::Year,
        "Q" => Unit::Quarter,
        "M" => Unit::Month,
        "w" => Unit::Week,
        "d" => Unit::Day,
        "h" => Unit::Hour,
        "m" => Unit::Minute,
        "s" => Unit::Second,
        other => match other.to_ascii_lowercase().as_str() {
            "year" | "years" => Unit::Year,
            "quarter" | "quarters" => Unit::Quarter,
            "month" | "months" => Unit::Month,
            "week" | "weeks" => Unit::Week,
            "isoweek" | "isoweeks" => Unit::IsoWeek,
            "day" | "days" | "date" => Unit::Day,
            "hour" | "hours" => Unit::Hour,
            "minute" | "minutes" => Unit::Minute,
            "second" | "seconds" => Unit::Second,
            _ => return Err(format!("unknown unit \"{other}\"")),
        },
    })
}

const OUT_OF_RANGE: &str = "the date is out of range";

fn shift(d: DateTime<Utc>, n: i64, u: Unit) -> R<DateTime<Utc>> {
    let months = |m: i64| -> Option<DateTime<Utc>> {
        let span = Months::new(u32::try_from(m.unsigned_abs()).ok()?);
        if m >= 0 {
            d.checked_add_months(span)
        } else {
            d.checked_sub_months(span)
        }
    };
    let delta = |t: Option<TimeDelta>| t.and_then(|t| d.checked_add_signed(t));
    let out = match u {
        Unit::Year => n.checked_mul(12).and_then(months),
        Unit::Quarter => n.checked_mul(3).and_then(months),
        Unit::Month => months(n),
        Unit::Week | Unit::IsoWeek => delta(TimeDelta::try_weeks(n)),
        Unit::Day => delta(TimeDelta::try_days(n)),
        Unit::Hour => delta(TimeDelta::try_hours(n)),
        Unit::Minute => delta(TimeDelta::try_minutes(n)),
        Unit::Second => delta(TimeDelta::try_seconds(n)),
    };
    out.ok_or_else(|| OUT_OF_RANGE.into())
}

fn start_of(d: DateTime<Utc>, u: Unit) -> R<DateTime<Utc>> {
    let date = d.date_naive();
    let clock = |h: u32, m: u32| {
        date.and_hms_opt(h, m, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| OUT_OF_RANGE.to_owned())
    };
    let day = match u {
        Unit::Second => {
            return d.with_nanosecond(0).ok_or_else(|| OUT_OF_RANGE.to_owned());
        }
        Unit::Minute => return clock(d.hour(), d.minute()),
        Unit::Hour => return clock(d.hour(), 0),
        Unit::Day => Some(date),
        // moment's "week" starts on Sunday (its default locale); "isoWeek" on Monday.
        Unit::Week => {
            date.checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_sunday())))
        }
        Unit::IsoWeek => {
            date.checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))
        }
        Unit::Month => date.with_day(1),
        Unit::Quarter => NaiveDate::from_ymd_opt(date.year(), date.month0() / 3 * 3 + 1, 1),
        Unit::Year => NaiveDate::from_ymd_opt(date.year(), 1, 1),
    };
    day.map(|d| d.and_time(NaiveTime::MIN).and_utc())
        .ok_or_else(|| OUT_OF_RANGE.into())
}

fn end_of(d: DateTime<Utc>, u: Unit) -> R<DateTime<Utc>> {
    let next = shift(start_of(d, u)?, 1, u)?;
    next.checked_sub_signed(TimeDelta::milliseconds(1))
        .ok_or_else(|| OUT_OF_RANGE.into())
}

/// `relative_date(offset, unit, startof, endof)`: now moved by `offset` `unit`s, then to the
/// start of `startof` and the end of `endof` (each may be null), as moment.js computes it, in UTC.
fn relative_date(args: &str, now: DateTime<Utc>) -> R<DateTime<Utc>> {
    let args = parse_args(args)?;
    if args.len() > 4 {
        return Err("takes at most 4 arguments: offset, unit, startof, endof".into());
    }
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Arg::Null);
    let offset = match arg(0) {
        Arg::Null => None,
        Arg::Num(n) => Some(n),
        Arg::Text(t) => Some(
            t.trim()
                .parse::<f64>()
                .map_err(|_| format!("offset \"{t}\" is not a number"))?,
        ),
    };
    let mut d = now;
    if let Some(n) = offset {
        if n.fract() != 0.0 || n.abs() > 1.0e9 {
            return Err(format!("offset {n} must be a whole number"));
        }
        let Arg::Text(u) = arg(1) else {
            return Err("an offset needs a unit, like \"days\"".into());
        };
        d = shift(d, n as i64, unit(&u)?)?;
    }
    match arg(2) {
        Arg::Null => {}
        Arg::Text(u) => d = start_of(d, unit(&u)?)?,
        Arg::Num(_) => return Err("startof must be a unit name".into()),
    }
    match arg(3) {
        Arg::Null => {}
        Arg::Text(u) => d = end_of(d, unit(&u)?)?,
        Arg::Num(_) => return Err("endof must be a unit name".into()),
    }
    Ok(d)
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// A finite number as JSON, whole values as integers so sums read `3`, not `3.0`.
fn number_value(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Value::from(f as i64);
    }
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Equality as MongoDB sees it: numbers by value (`1 == 1.0`), containers element by element.
fn json_eq(a: &Value, b: &Value) -> bool {
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
fn total_cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
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
fn same_type_cmp(a: &Value, b: &Value) -> Option<Ordering> {
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
fn canon(v: &Value) -> String {
    normalized(v).to_string()
}

/// Truth as MongoDB expressions see it: false, null, missing and 0 are false.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    }
}

fn field_path(s: &str) -> R<Vec<String>> {
    let parts: Vec<String> = s.split('.').map(str::to_owned).collect();
    if parts.iter().any(|p| p.is_empty() || p.starts_with('$')) {
        return Err(format!("bad field path \"{s}\""));
    }
    Ok(parts)
}

/// The value at `path`; through an array of sub-documents it is the array of their values
/// (`"$items.price"`), as in MongoDB expressions.
fn get_path(doc: &Doc, path: &[String]) -> Option<Value> {
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
fn get_direct<'a>(doc: &'a Doc, path: &[String]) -> Option<&'a Value> {
    let (head, rest) = path.split_first()?;
    let mut v = doc.get(head)?;
    for seg in rest {
        v = v.as_object()?.get(seg)?;
    }
    Some(v)
}

/// Every value a query path reaches: through arrays of sub-documents, each element's value
/// (MongoDB's implicit array traversal in filters).
fn field_values<'a>(doc: &'a Doc, path: &[String]) -> Vec<&'a Value> {
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

fn set_path(doc: &mut Doc, path: &[String], value: Value) {
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

fn remove_path(doc: &mut Doc, path: &[String]) {
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

/// Copies the value at `path` from `src` into the same place in `dst` (for `$project`
/// inclusion), projecting each sub-document of an array on the way.
fn copy_path(src: &Doc, dst: &mut Doc, path: &[String]) {
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

// ---------------------------------------------------------------------------------------------
// Filters ($match)
// ---------------------------------------------------------------------------------------------

/// A schemaless filter: field paths are taken as written and values compared as given.
#[derive(Debug, Clone)]
enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Nor(Vec<Pred>),
    Field(Vec<String>, Test),
    /// `$expr`: an aggregation expression, true when truthy. No JavaScript is ever run.
    Expr(Expr),
}

/// A test on the values a field path reaches.
#[derive(Debug, Clone)]
enum Test {
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
enum ElemMatch {
    /// `{$elemMatch: {field: …}}`: some element is a sub-document matching the filter.
    Doc(Pred),
    /// `{$elemMatch: {$gte: 1, $lt: 5}}`: one element satisfies every operator.
    Value(Test),
}

fn parse_pred(v: &Value) -> R<Pred> {
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

fn is_operator_object(v: &Value) -> bool {
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

fn pred_matches(p: &Pred, doc: &Doc) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------------

/// An aggregation expression: `"$field"`, a literal, an object or array of expressions, or an
/// operator. Evaluation never fails: a value of the wrong type gives null, so one odd
/// document does not fail a whole report.
#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Field(Vec<String>),
    Root,
    Obj(Vec<(String, Expr)>),
    Arr(Vec<Expr>),
    Op(Fun, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fun {
    Add,
    Subtract,
    Multiply,
    Divide,
    Mod,
    Abs,
    Floor,
    Ceil,
    Concat,
    ToLower,
    ToUpper,
    ToString,
    ToInt,
    ToDouble,
    ToBool,
    IfNull,
    Size,
    Cond,
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Cmp,
    And,
    Or,
    Not,
    In,
    ToObjectId,
    ToDate,
    Year,
    Month,
    DayOfMonth,
    Hour,
    Minute,
    Second,
    DayOfWeek,
    DateToString,
}

const MANY: usize = usize::MAX;

/// Expression operators: name, meaning, fewest and most arguments.
const FUNS: &[(&str, Fun, usize, usize)] = &[
    ("$add", Fun::Add, 0, MANY),
    ("$subtract", Fun::Subtract, 2, 2),
    ("$multiply", Fun::Multiply, 0, MANY),
    ("$divide", Fun::Divide, 2, 2),
    ("$mod", Fun::Mod, 2, 2),
    ("$abs", Fun::Abs, 1, 1),
    ("$floor", Fun::Floor, 1, 1),
    ("$ceil", Fun::Ceil, 1, 1),
    ("$concat", Fun::Concat, 0, MANY),
    ("$toLower", Fun::ToLower, 1, 1),
    ("$toUpper", Fun::ToUpper, 1, 1),
    ("$toString", Fun::ToString, 1, 1),
    ("$toInt", Fun::ToInt, 1, 1),
    ("$toLong", Fun::ToInt, 1, 1),
    ("$toDouble", Fun::ToDouble, 1, 1),
    ("$toDecimal", Fun::ToDouble, 1, 1),
    ("$toBool", Fun::ToBool, 1, 1),
    ("$ifNull", Fun::IfNull, 2, MANY),
    ("$size", Fun::Size, 1, 1),
    ("$cond", Fun::Cond, 3, 3),
    ("$eq", Fun::Eq, 2, 2),
    ("$ne", Fun::Ne, 2, 2),
    ("$gt", Fun::Gt, 2, 2),
    ("$gte", Fun::Gte, 2, 2),
    ("$lt", Fun::Lt, 2, 2),
    ("$lte", Fun::Lte, 2, 2),
    ("$cmp", Fun::Cmp, 2, 2),
    ("$and", Fun::And, 0, MANY),
    ("$or", Fun::Or, 0, MANY),
    ("$not", Fun::Not, 1, 1),
    ("$in", Fun::In, 2, 2),
    ("$toObjectId", Fun::ToObjectId, 1, 1),
    ("$toDate", Fun::ToDate, 1, 1),
    ("$dateFromString", Fun::ToDate, 1, 1),
    ("$year", Fun::Year, 1, 1),
    ("$month", Fun::Month, 1, 1),
    ("$dayOfMonth", Fun::DayOfMonth, 1, 1),
    ("$hour", Fun::Hour, 1, 1),
    ("$minute", Fun::Minute, 1, 1),
    ("$second", Fun::Second, 1, 1),
    ("$dayOfWeek", Fun::DayOfWeek, 1, 1),
    ("$dateToString", Fun::DateToString, 2, 2),
];

/// MongoDB's default `$dateToString` format.
const DEFAULT_DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S.%LZ";

fn named_args(name: &str, o: &Map<String, Value>, keys: &[&str]) -> R<Vec<Value>> {
    keys.iter()
        .map(|k| {
            o.get(*k)
                .cloned()
                .ok_or_else(|| format!("{name} needs \"{k}\""))
        })
        .collect()
}

fn parse_expr(v: &Value) -> R<Expr> {
    match v {
        Value::String(s) if s.starts_with("$$") => match s.as_str() {
            "$$ROOT" | "$$CURRENT" => Ok(Expr::Root),
            _ => match s
                .strip_prefix("$$ROOT.")
                .or_else(|| s.strip_prefix("$$CURRENT."))
            {
                Some(rest) => Ok(Expr::Field(field_path(rest)?)),
                None => Err(format!("variable {s} is not supported")),
            },
        },
        Value::String(s) if s.starts_with('$') => Ok(Expr::Field(field_path(&s[1..])?)),
        Value::Array(items) => Ok(Expr::Arr(
            items.iter().map(parse_expr).collect::<R<Vec<_>>>()?,
        )),
        Value::Object(obj) if is_operator_object(v) => {
            let mut entries = obj.iter();
            let (Some((name, arg)), None) = (entries.next(), entries.next()) else {
                return Err(format!(
                    "an expression object takes exactly one operator, got {v}"
                ));
            };
            if name == "$literal" {
                return Ok(Expr::Lit(arg.clone()));
            }
            let Some((_, fun, min, max)) = FUNS.iter().find(|(n, ..)| n == name) else {
                return Err(format!("expression operator {name} is not supported"));
            };
            let args: Vec<Value> = match (fun, arg) {
                (Fun::Cond, Value::Object(o)) if !is_operator_object(arg) => {
                    named_args(name, o, &["if", "then", "else"])?
                }
                (Fun::DateToString, Value::Object(o)) => {
                    let format = o
                        .get("format")
                        .cloned()
                        .unwrap_or_else(|| Value::String(DEFAULT_DATE_FORMAT.into()));
                    let date = named_args(name, o, &["date"])?;
                    std::iter::once(format).chain(date).collect()
                }
                (Fun::ToDate, Value::Object(o)) if name == "$dateFromString" => {
                    named_args(name, o, &["dateString"])?
                }
                (
                    Fun::Year
                    | Fun::Month
                    | Fun::DayOfMonth
                    | Fun::Hour
                    | Fun::Minute
                    | Fun::Second
                    | Fun::DayOfWeek,
                    Value::Object(o),
                ) if o.contains_key("date") => named_args(name, o, &["date"])?,
                (_, Value::Array(items)) => items.clone(),
                (_, other) => vec![other.clone()],
            };
            if args.len() < *min || args.len() > *max {
                let want = if min == max {
                    format!("{min}")
                } else if *max == MANY {
                    format!("at least {min}")
                } else {
                    format!("{min} to {max}")
                };
                return Err(format!(
                    "{name} takes {want} argument(s), got {}",
                    args.len()
                ));
            }
            Ok(Expr::Op(
                *fun,
                args.iter().map(parse_expr).collect::<R<Vec<_>>>()?,
            ))
        }
        Value::Object(obj) => Ok(Expr::Obj(
            obj.iter()
                .map(|(k, v)| Ok((k.clone(), parse_expr(v)?)))
                .collect::<R<Vec<_>>>()?,
        )),
        other => Ok(Expr::Lit(other.clone())),
    }
}

/// The value of `e` on `doc`; `None` is a missing field, which `$project` and `$addFields`
/// leave out.
fn eval(e: &Expr, doc: &Doc) -> Option<Value> {
    match e {
        Expr::Lit(v) => Some(v.clone()),
        Expr::Field(p) => get_path(doc, p),
        Expr::Root => Some(Value::Object(doc.clone())),
        Expr::Obj(fields) => Some(Value::Object(
            fields
                .iter()
                .filter_map(|(k, e)| eval(e, doc).map(|v| (k.clone(), v)))
                .collect(),
        )),
        Expr::Arr(items) => Some(Value::Array(
            items
                .iter()
                .map(|e| eval(e, doc).unwrap_or(Value::Null))
                .collect(),
        )),
        Expr::Op(fun, args) => {
            let vals: Vec<Option<Value>> = args.iter().map(|a| eval(a, doc)).collect();
            Some(apply_fun(*fun, &vals))
        }
    }
}

/// `a op b` on integers when both are, else on floats.
fn arith(
    vals: &[Option<Value>],
    int: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
    start: Option<i64>,
) -> Value {
    let mut nums = Vec::with_capacity(vals.len());
    for v in vals {
        match v {
            Some(Value::Number(n)) => nums.push(n.clone()),
            _ => return Value::Null,
        }
    }
    let mut iter = nums.iter();
    let first = match start {
        Some(s) => serde_json::Number::from(s),
        None => match iter.next() {
            Some(n) => n.clone(),
            None => return Value::Null,
        },
    };
    let mut acc_int = first.as_i64();
    let mut acc_float = first.as_f64().unwrap_or(0.0);
    for n in iter {
        acc_int = match (acc_int, n.as_i64()) {
            (Some(a), Some(b)) => int(a, b),
            _ => None,
        };
        acc_float = float(acc_float, n.as_f64().unwrap_or(0.0));
    }
    match acc_int {
        Some(i) => Value::from(i),
        None => number_value(acc_float),
    }
}

fn as_f64(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn date_of(v: Option<&Value>) -> Option<DateTime<Utc>> {
    parse_date(v?)
}

fn format_mongo_date(d: DateTime<Utc>, fmt: &str) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{:04}", d.year()),
            Some('m') => write!(out, "{:02}", d.month()),
            Some('d') => write!(out, "{:02}", d.day()),
            Some('H') => write!(out, "{:02}", d.hour()),
            Some('M') => write!(out, "{:02}", d.minute()),
            Some('S') => write!(out, "{:02}", d.second()),
            Some('L') => write!(out, "{:03}", d.timestamp_subsec_millis()),
            Some('j') => write!(out, "{:03}", d.ordinal()),
            Some('u') => write!(out, "{}", d.weekday().number_from_monday()),
            Some('w') => write!(out, "{}", d.weekday().number_from_sunday()),
            Some('%') => write!(out, "%"),
            Some(other) => write!(out, "%{other}"),
            None => write!(out, "%"),
        };
    }
    out
}

fn apply_fun(fun: Fun, vals: &[Option<Value>]) -> Value {
    let arg = |i: usize| vals.get(i).and_then(Option::as_ref);
    let nullish = |i: usize| arg(i).is_none_or(Value::is_null);
    let cmp = || {
        total_cmp(
            arg(0).filter(|v| !v.is_null()),
            arg(1).filter(|v| !v.is_null()),
        )
    };
    let date_part =
        |f: fn(DateTime<Utc>) -> u32| date_of(arg(0)).map_or(Value::Null, |d| Value::from(f(d)));
    match fun {
        Fun::Add => arith(vals, i64::checked_add, |a, b| a + b, Some(0)),
        Fun::Multiply => arith(vals, i64::checked_mul, |a, b| a * b, Some(1)),
        Fun::Subtract => arith(vals, i64::checked_sub, |a, b| a - b, None),
        Fun::Divide => match (as_f64(arg(0)), as_f64(arg(1))) {
            (Some(a), Some(b)) if b != 0.0 => number_value(a / b),
            _ => Value::Null,
        },
        Fun::Mod if as_f64(arg(1)) == Some(0.0) => Value::Null,
        Fun::Mod => arith(vals, i64::checked_rem, |a, b| a % b, None),
        Fun::Abs => as_f64(arg(0)).map_or(Value::Null, |f| number_value(f.abs())),
        Fun::Floor => as_f64(arg(0)).map_or(Value::Null, |f| number_value(f.floor())),
        Fun::Ceil => as_f64(arg(0)).map_or(Value::Null, |f| number_value(f.ceil())),
        Fun::Concat => {
            let mut out = String::new();
            for v in vals {
                match v {
                    Some(Value::String(s)) => out.push_str(s),
                    _ => return Value::Null,
                }
            }
            Value::String(out)
        }
        Fun::ToLower | Fun::ToUpper => {
            let text = match arg(0) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            Value::String(if fun == Fun::ToLower {
                text.to_lowercase()
            } else {
                text.to_uppercase()
            })
        }
        Fun::ToString => match arg(0) {
            Some(Value::String(s)) => Value::String(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Value::String(v.to_string()),
            _ => Value::Null,
        },
        Fun::ToInt | Fun::ToDouble => {
            let f = match arg(0) {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                Some(Value::Bool(b)) => Some(f64::from(u8::from(*b))),
                _ => None,
            };
            match f {
                Some(f) if fun == Fun::ToInt => number_value(f.trunc()),
                Some(f) => number_value(f),
                None => Value::Null,
            }
        }
        Fun::ToBool => {
            if nullish(0) {
                Value::Null
            } else {
                Value::Bool(truthy(arg(0)))
            }
        }
        Fun::IfNull => (0..vals.len())
            .find(|i| !nullish(*i))
            .or(vals.len().checked_sub(1))
            .and_then(arg)
            .cloned()
            .unwrap_or(Value::Null),
        Fun::Size => arg(0)
            .and_then(Value::as_array)
            .map_or(Value::Null, |a| Value::from(a.len())),
        Fun::Cond => {
            let pick = if truthy(arg(0)) { 1 } else { 2 };
            arg(pick).cloned().unwrap_or(Value::Null)
        }
        Fun::Eq => Value::Bool(cmp().is_eq()),
        Fun::Ne => Value::Bool(cmp().is_ne()),
        Fun::Gt => Value::Bool(cmp().is_gt()),
        Fun::Gte => Value::Bool(cmp().is_ge()),
        Fun::Lt => Value::Bool(cmp().is_lt()),
        Fun::Lte => Value::Bool(cmp().is_le()),
        Fun::Cmp => Value::from(cmp() as i8),
        Fun::And => Value::Bool(vals.iter().all(|v| truthy(v.as_ref()))),
        Fun::Or => Value::Bool(vals.iter().any(|v| truthy(v.as_ref()))),
        Fun::Not => Value::Bool(!truthy(arg(0))),
        Fun::In => Value::Bool(match (arg(0), arg(1)) {
            (Some(x), Some(Value::Array(items))) => items.iter().any(|i| json_eq(i, x)),
            _ => false,
        }),
        Fun::ToObjectId => match arg(0) {
            Some(Value::String(s)) if is_object_id(s) => Value::String(s.to_ascii_lowercase()),
            _ => Value::Null,
        },
        Fun::ToDate => date_of(arg(0)).map_or(Value::Null, |d| Value::String(format_date(d))),
        Fun::Year => date_of(arg(0)).map_or(Value::Null, |d| Value::from(d.year())),
        Fun::Month => date_part(|d| d.month()),
        Fun::DayOfMonth => date_part(|d| d.day()),
        Fun::Hour => date_part(|d| d.hour()),
        Fun::Minute => date_part(|d| d.minute()),
        Fun::Second => date_part(|d| d.second()),
        Fun::DayOfWeek => date_part(|d| d.weekday().number_from_sunday()),
        Fun::DateToString => match (arg(0), date_of(arg(1))) {
            (Some(Value::String(fmt)), Some(d)) => Value::String(format_mongo_date(d, fmt)),
            _ => Value::Null,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Stages
// ---------------------------------------------------------------------------------------------

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

#[derive(Debug, Clone)]
struct SortKey {
    dotted: String,
    path: Vec<String>,
    desc: bool,
}

#[derive(Debug, Clone)]
struct Group {
    id: Expr,
    accs: Vec<Accumulator>,
}

#[derive(Debug, Clone)]
struct Accumulator {
    name: String,
    op: AccOp,
    expr: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    First,
    Last,
    Push,
    AddToSet,
}

#[derive(Debug, Clone)]
enum Projection {
    Include {
        keep_id: bool,
        id_expr: Option<Expr>,
        /// A path kept as it is (`None`) or computed.
        fields: Vec<(Vec<String>, Option<Expr>)>,
    },
    Exclude(Vec<Vec<String>>),
}

#[derive(Debug, Clone)]
struct Unwind {
    path: Vec<String>,
    index: Option<Vec<String>>,
    preserve: bool,
}

/// `$lookup: {from, localField, foreignField, as}`: the names as the client wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub from: String,
    pub local_field: String,
    pub foreign_field: String,
    pub as_field: String,
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

    pub fn lookup(&self) -> Option<&Lookup> {
        match &self.0 {
            Kind::Lookup(l) => Some(l),
            _ => None,
        }
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

fn parse_group(v: &Value) -> R<Group> {
    let Value::Object(spec) = v else {
        return Err(format!("takes an object with an _id, got {v}"));
    };
    let id = spec
        .get("_id")
        .ok_or("needs an _id (null for one group of everything)")
        .map_err(str::to_owned)
        .and_then(parse_expr)?;
    let mut accs = Vec::new();
    for (name, def) in spec.iter().filter(|(k, _)| *k != "_id") {
        if name.contains('.') || name.starts_with('$') {
            return Err(format!("bad output field name \"{name}\""));
        }
        let Some((op, arg)) = def
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return Err(format!(
                "field \"{name}\" must be an accumulator object like {{\"$sum\": 1}}"
            ));
        };
        let op_kind = match op.as_str() {
            "$sum" => AccOp::Sum,
            "$avg" => AccOp::Avg,
            "$min" => AccOp::Min,
            "$max" => AccOp::Max,
            "$count" => AccOp::Count,
            "$first" => AccOp::First,
            "$last" => AccOp::Last,
            "$push" => AccOp::Push,
            "$addToSet" => AccOp::AddToSet,
            other => {
                return Err(format!(
                    "accumulator {other} (field \"{name}\") is not supported"
                ));
            }
        };
        let expr = if op_kind == AccOp::Count {
            if !arg.as_object().is_some_and(Map::is_empty) {
                return Err(format!("$count (field \"{name}\") takes {{}}"));
            }
            Expr::Lit(Value::Null)
        } else {
            parse_expr(arg)?
        };
        accs.push(Accumulator {
            name: name.clone(),
            op: op_kind,
            expr,
        });
    }
    Ok(Group { id, accs })
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

fn parse_project(v: &Value) -> R<Projection> {
    let Value::Object(spec) = v else {
        return Err(format!("takes an object, got {v}"));
    };
    if spec.is_empty() {
        return Err("needs at least one field".into());
    }
    let mut flat = Vec::new();
    flatten_spec("", spec, &mut flat);
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

fn parse_add_fields(v: &Value) -> R<Vec<(Vec<String>, Expr)>> {
    let Value::Object(spec) = v else {
        return Err(format!("takes an object, got {v}"));
    };
    if spec.is_empty() {
        return Err("needs at least one field".into());
    }
    let mut flat = Vec::new();
    flatten_spec("", spec, &mut flat);
    flat.into_iter()
        .map(|(path, val)| Ok((field_path(&path)?, parse_expr(val)?)))
        .collect()
}

fn parse_unset(v: &Value) -> R<Vec<Vec<String>>> {
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

fn parse_sort(v: &Value) -> R<Vec<SortKey>> {
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

fn parse_count(v: &Value) -> R<String> {
    match v {
        Value::String(s) if !s.is_empty() && !s.starts_with('$') && !s.contains('.') => {
            Ok(s.clone())
        }
        _ => Err(format!(
            "takes the name of the output field, like \"total\"; got {v}"
        )),
    }
}

fn parse_unwind(v: &Value) -> R<Unwind> {
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

fn parse_lookup(v: &Value) -> R<Lookup> {
    let Value::Object(o) = v else {
        return Err(format!(
            "takes {{from, localField, foreignField, as}}, got {v}"
        ));
    };
    if o.contains_key("pipeline") || o.contains_key("let") {
        return Err("pipeline and let are not supported; use localField and foreignField".into());
    }
    if let Some(k) = o
        .keys()
        .find(|k| !matches!(k.as_str(), "from" | "localField" | "foreignField" | "as"))
    {
        return Err(format!("unknown option \"{k}\""));
    }
    let text = |k: &str| -> R<String> {
        match o.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(format!("needs \"{k}\" as a string")),
        }
    };
    let lookup = Lookup {
        from: text("from")?,
        local_field: text("localField")?,
        foreign_field: text("foreignField")?,
        as_field: text("as")?,
    };
    for f in [&lookup.local_field, &lookup.foreign_field, &lookup.as_field] {
        field_path(f)?;
    }
    Ok(lookup)
}

// ---------------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------------

/// The state of one accumulator in one group.
enum AccState {
    Sum {
        ints: i128,
        floats: f64,
        any_float: bool,
    },
    Avg {
        sum: f64,
        n: u64,
    },
    Min(Option<Value>),
    Max(Option<Value>),
    Count(u64),
    First(Option<Value>),
    Last(Value),
    Push(Vec<Value>),
    AddToSet(Vec<Value>, HashSet<String>),
}

impl AccState {
    fn new(op: AccOp) -> Self {
        match op {
            AccOp::Sum => AccState::Sum {
                ints: 0,
                floats: 0.0,
                any_float: false,
            },
            AccOp::Avg => AccState::Avg { sum: 0.0, n: 0 },
            AccOp::Min => AccState::Min(None),
            AccOp::Max => AccState::Max(None),
            AccOp::Count => AccState::Count(0),
            AccOp::First => AccState::First(None),
            AccOp::Last => AccState::Last(Value::Null),
            AccOp::Push => AccState::Push(Vec::new()),
            AccOp::AddToSet => AccState::AddToSet(Vec::new(), HashSet::new()),
        }
    }

    fn add(&mut self, v: Option<Value>) {
        match self {
            // Non-numbers (strings, arrays, missing) count as nothing, as MongoDB's $sum.
            AccState::Sum {
                ints,
                floats,
                any_float,
            } => {
                if let Some(Value::Number(n)) = &v {
                    match n.as_i64() {
                        Some(i) => *ints += i128::from(i),
                        None => {
                            *floats += n.as_f64().unwrap_or(0.0);
                            *any_float = true;
                        }
                    }
                }
            }
            AccState::Avg { sum, n } => {
                if let Some(f) = v.as_ref().and_then(Value::as_f64) {
                    *sum += f;
                    *n += 1;
                }
            }
            AccState::Min(best) => keep_better(best, v, Ordering::is_lt),
            AccState::Max(best) => keep_better(best, v, Ordering::is_gt),
            AccState::Count(n) => *n += 1,
            AccState::First(first) => {
                if first.is_none() {
                    *first = Some(v.unwrap_or(Value::Null));
                }
            }
            AccState::Last(last) => *last = v.unwrap_or(Value::Null),
            AccState::Push(items) => {
                if let Some(v) = v {
                    items.push(v);
                }
            }
            AccState::AddToSet(items, seen) => {
                if let Some(v) = v
                    && seen.insert(canon(&v))
                {
                    items.push(v);
                }
            }
        }
    }

    fn finish(self) -> Value {
        match self {
            AccState::Sum {
                ints,
                floats,
                any_float,
            } => {
                if !any_float && let Ok(i) = i64::try_from(ints) {
                    return Value::from(i);
                }
                number_value(ints as f64 + floats)
            }
            AccState::Avg { sum, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    number_value(sum / n as f64)
                }
            }
            AccState::Min(v) | AccState::Max(v) | AccState::First(v) => v.unwrap_or(Value::Null),
            AccState::Count(n) => Value::from(n),
            AccState::Last(v) => v,
            AccState::Push(items) | AccState::AddToSet(items, _) => Value::Array(items),
        }
    }
}

/// `$min`/`$max`: keeps `v` when it beats the best so far; null and missing never count.
fn keep_better(best: &mut Option<Value>, v: Option<Value>, beats: fn(Ordering) -> bool) {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return;
    };
    if best
        .as_ref()
        .is_none_or(|b| beats(total_cmp(Some(&v), Some(b))))
    {
        *best = Some(v);
    }
}

fn run_group(g: &Group, docs: Vec<Doc>) -> Vec<Doc> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(Value, Vec<AccState>)> = Vec::new();
    for doc in &docs {
        let key = eval(&g.id, doc).unwrap_or(Value::Null);
        let slot = *index.entry(canon(&key)).or_insert_with(|| {
            groups.push((key, g.accs.iter().map(|a| AccState::new(a.op)).collect()));
            groups.len() - 1
        });
        if let Some((_, states)) = groups.get_mut(slot) {
            for (acc, state) in g.accs.iter().zip(states.iter_mut()) {
                state.add(eval(&acc.expr, doc));
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, states)| {
            let mut out = Map::new();
            out.insert("_id".to_owned(), key);
            for (acc, state) in g.accs.iter().zip(states) {
                out.insert(acc.name.clone(), state.finish());
            }
            out
        })
        .collect()
}

fn run_project(p: &Projection, docs: Vec<Doc>) -> Vec<Doc> {
    match p {
        Projection::Exclude(paths) => docs
            .into_iter()
            .map(|mut d| {
                for path in paths {
                    remove_path(&mut d, path);
                }
                d
            })
            .collect(),
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
                                set_path(&mut out, path, v);
                            }
                        }
                    }
                }
                out
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

fn run_sort(keys: &[SortKey], docs: Vec<Doc>) -> Vec<Doc> {
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

fn too_many(stage: &str, max_docs: usize) -> QueryError {
    QueryError::new(format!(
        "{stage}: the pipeline would hold more than {max_docs} documents; narrow it with $match or $limit first"
    ))
}

fn run_unwind(u: &Unwind, docs: Vec<Doc>, max_docs: usize) -> Result<Vec<Doc>, QueryError> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let value = get_direct(&doc, &u.path).cloned();
        match value {
            Some(Value::Array(items)) if !items.is_empty() => {
                if out.len() + items.len() > max_docs {
                    return Err(too_many("$unwind", max_docs));
                }
                for (i, item) in items.into_iter().enumerate() {
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

/// Runs one stage over `docs`. `max_docs` bounds how many documents a stage may produce
/// (`$unwind` can multiply them). A `$lookup` needs the foreign documents: use
/// [`apply_lookup`] for it.
pub fn run_stage(stage: &Stage, docs: Vec<Doc>, max_docs: usize) -> Result<Vec<Doc>, QueryError> {
    Ok(match &stage.0 {
        Kind::Match { pred, .. } => docs.into_iter().filter(|d| pred_matches(pred, d)).collect(),
        Kind::Group(g) => run_group(g, docs),
        Kind::Project(p) => run_project(p, docs),
        Kind::AddFields(fields) => docs
            .into_iter()
            .map(|mut d| {
                // Every expression sees the document as it came in.
                let values: Vec<Option<Value>> = fields.iter().map(|(_, e)| eval(e, &d)).collect();
                for ((path, _), v) in fields.iter().zip(values) {
                    if let Some(v) = v {
                        set_path(&mut d, path, v);
                    }
                }
                d
            })
            .collect(),
        Kind::Unset(paths) => docs
            .into_iter()
            .map(|mut d| {
                for p in paths {
                    remove_path(&mut d, p);
                }
                d
            })
            .collect(),
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
        Kind::Unwind(u) => run_unwind(u, docs, max_docs)?,
        Kind::Lookup(l) => {
            return Err(QueryError::new(format!(
                "$lookup: the documents of {} were not provided",
                l.from
            )));
        }
    })
}

/// The values a join key reaches in one document: the elements of an array, each value of
/// an array of sub-documents, and null when the field is missing (which joins with foreign
/// documents that lack the field too, as in MongoDB).
fn join_values(doc: &Doc, path: &[String]) -> Vec<Value> {
    let found = field_values(doc, path);
    if found.is_empty() {
        return vec![Value::Null];
    }
    let mut out = Vec::new();
    for v in found {
        match v {
            Value::Array(items) => out.extend(items.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    out
}

/// The distinct values of `localField` over `docs`, to fetch only the foreign documents that
/// can join. Contains `null` when some document lacks the field.
pub fn lookup_values(spec: &Lookup, docs: &[Doc]) -> Vec<Value> {
    let path: Vec<String> = spec.local_field.split('.').map(str::to_owned).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for d in docs {
        for v in join_values(d, &path) {
            if seen.insert(canon(&v)) {
                out.push(v);
            }
        }
    }
    out
}

/// `$lookup`: sets `as` on each document to the array of `foreign` documents whose
/// `foreignField` equals its `localField`. `max_docs` bounds the joined documents in total.
pub fn apply_lookup(
    spec: &Lookup,
    docs: Vec<Doc>,
    foreign: &[Doc],
    max_docs: usize,
) -> Result<Vec<Doc>, QueryError> {
    let split = |s: &str| -> Vec<String> { s.split('.').map(str::to_owned).collect() };
    let (local, remote, as_path) = (
        split(&spec.local_field),
        split(&spec.foreign_field),
        split(&spec.as_field),
    );
    let mut index: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, f) in foreign.iter().enumerate() {
        let mut seen = HashSet::new();
        for v in join_values(f, &remote) {
            let k = canon(&v);
            if seen.insert(k.clone()) {
                index.entry(k).or_default().push(i);
            }
        }
    }
    let mut joined_total = 0usize;
    let mut out = Vec::with_capacity(docs.len());
    for mut doc in docs {
        let mut hits: Vec<usize> = join_values(&doc, &local)
            .iter()
            .filter_map(|v| index.get(&canon(v)))
            .flatten()
            .copied()
            .collect();
        hits.sort_unstable();
        hits.dedup();
        joined_total += hits.len();
        if joined_total > max_docs {
            return Err(too_many("$lookup", max_docs));
        }
        let joined = hits
            .iter()
            .filter_map(|i| foreign.get(*i))
            .map(|d| Value::Object(d.clone()))
            .collect();
        set_path(&mut doc, &as_path, Value::Array(joined));
        out.push(doc);
    }
    Ok(out)
}

/// Runs a whole pipeline with the foreign documents of every `$lookup` given by model name.
pub fn run_pipeline(
    stages: &[Stage],
    mut docs: Vec<Doc>,
    foreign: &HashMap<String, Vec<Doc>>,
    max_docs: usize,
) -> Result<Vec<Doc>, QueryError> {
    for stage in stages {
        docs = match stage.lookup() {
            Some(l) => {
                let other = foreign.get(&l.from).map(Vec::as_slice).unwrap_or_default();
                apply_lookup(l, docs, other, max_docs)?
            }
            None => run_stage(stage, docs, max_docs)?,
        };
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn docs() -> Vec<Doc> {
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

    fn run(pipeline: Value) -> Result<Value, QueryError> {
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
        let out = run_pipeline(&stages, docs(), &foreign, 1000)?;
        Ok(Value::Array(out.into_iter().map(Value::Object).collect()))
    }

    fn ids(v: &Value) -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|d| d["_id"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

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

    #[test]
    fn group_accumulators() {
        let got = run(json!([
            {"$group": {
                "_id": "$kind",
                "n": {"$sum": 1},
                "qty": {"$sum": "$qty"},
                "price": {"$sum": "$price"},
                "avg": {"$avg": "$qty"},
                "min": {"$min": "$price"},
                "max": {"$max": "$name"},
                "count": {"$count": {}},
                "first": {"$first": "$name"},
                "last": {"$last": "$qty"},
                "names": {"$push": "$name"},
                "tags": {"$addToSet": "$kind"}
            }}
        ]))
        .unwrap();
        assert_eq!(
            got,
            json!([
                {"_id": "fruit", "n": 3, "qty": 30, "price": 4.5, "avg": 15, "min": 1.5,
                 "max": "banana", "count": 3, "first": "apple", "last": null,
                 "names": ["apple", "banana", "Date"], "tags": ["fruit"]},
                {"_id": "veg", "n": 1, "qty": 0, "price": 2, "avg": 0, "min": 2,
                 "max": "carrot", "count": 1, "first": "carrot", "last": 0,
                 "names": ["carrot"], "tags": ["veg"]}
            ])
        );
        let got = run(json!([{"$group": {"_id": null, "total": {"$sum": "$qty"}, "none": {"$avg": "$missing"}}}])).unwrap();
        assert_eq!(got, json!([{"_id": null, "total": 30, "none": null}]));
        let got = run(json!([
            {"$group": {"_id": {"k": "$kind", "cheap": {"$lt": ["$price", 2.5]}}, "n": {"$sum": 1}}},
            {"$sort": {"n": -1, "_id.k": 1}}
        ]))
        .unwrap();
        assert_eq!(
            got,
            json!([
                {"_id": {"k": "fruit", "cheap": true}, "n": 2},
                {"_id": {"k": "fruit", "cheap": false}, "n": 1},
                {"_id": {"k": "veg", "cheap": true}, "n": 1}
            ])
        );
        let got = run(json!([
            {"$group": {"_id": {"$dateToString": {"format": "%Y-%m", "date": "$when"}}, "n": {"$sum": 1}}},
            {"$sort": {"_id": 1}}
        ]))
        .unwrap();
        assert_eq!(
            got,
            json!([{"_id": null, "n": 1}, {"_id": "2024-01", "n": 1}, {"_id": "2024-02", "n": 2}])
        );
    }

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
                    e.0.contains(needle),
                    "{pipeline}: {e} does not mention {needle}"
                ),
            }
        }
    }

    #[test]
    fn growth_is_bounded() {
        let stages = parse_pipeline(&json!([{"$unwind": "$tags"}])).unwrap();
        let err = run_pipeline(&stages, docs(), &HashMap::new(), 3).unwrap_err();
        assert!(err.0.contains("$unwind") && err.0.contains("3"), "{err}");
        let stages = parse_pipeline(&json!([{"$lookup": {"from": "f", "localField": "nope", "foreignField": "nope", "as": "j"}}])).unwrap();
        let foreign: Vec<Doc> = (0..3)
            .filter_map(|i| json!({"_id": i}).as_object().cloned())
            .collect();
        let mut map = HashMap::new();
        map.insert("f".to_owned(), foreign);
        // Missing joins missing: every document would embed all three.
        let err = run_pipeline(&stages, docs(), &map, 5).unwrap_err();
        assert!(err.0.contains("$lookup"), "{err}");
        assert_eq!(run_pipeline(&stages, docs(), &map, 100).unwrap().len(), 4);
    }

    #[test]
    fn lookup_values_are_distinct_and_flattened() {
        let spec = Lookup {
            from: "x".into(),
            local_field: "tags".into(),
            foreign_field: "t".into(),
            as_field: "j".into(),
        };
        assert_eq!(
            lookup_values(&spec, &docs()),
            vec![json!("red"), json!("sweet"), json!("yellow"), json!(null)]
        );
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 7)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn wrappers_resolve() {
        // A Wednesday.
        let now = at(2024, 3, 13, 15, 42);
        let id = "5FD45D05F2B93AF8D59588FB";
        let cases: Vec<(Value, Value)> = vec![
            (json!({"$oid": id}), json!("5fd45d05f2b93af8d59588fb")),
            (
                json!(format!("ObjectId(\"{id}\")")),
                json!("5fd45d05f2b93af8d59588fb"),
            ),
            (
                json!(format!("ObjectId('{id}')")),
                json!("5fd45d05f2b93af8d59588fb"),
            ),
            (
                json!({"$date": "2021-03-03T00:00:00.0Z"}),
                json!("2021-03-03T00:00:00.000Z"),
            ),
            (json!({"$date": 0}), json!("1970-01-01T00:00:00.000Z")),
            (
                json!({"$date": {"$numberLong": "86400000"}}),
                json!("1970-01-02T00:00:00.000Z"),
            ),
            (
                json!("new Date(\"2021-03-03\")"),
                json!("2021-03-03T00:00:00.000Z"),
            ),
            (
                json!("ISODate(\"2021-03-03T10:00:00Z\")"),
                json!("2021-03-03T10:00:00.000Z"),
            ),
            (json!("new Date()"), json!("2024-03-13T15:42:07.000Z")),
            (
                json!("relative_date(-7, \"days\")"),
                json!("2024-03-06T15:42:07.000Z"),
            ),
            (
                json!("relative_date(-7, 'days', 'day')"),
                json!("2024-03-06T00:00:00.000Z"),
            ),
            (
                json!("relative_date(null, null, \"month\")"),
                json!("2024-03-01T00:00:00.000Z"),
            ),
            (
                json!("relative_date(null, null, null, \"month\")"),
                json!("2024-03-31T23:59:59.999Z"),
            ),
            (
                json!("relative_date(-1, \"months\", \"month\")"),
                json!("2024-02-01T00:00:00.000Z"),
            ),
            (
                json!("relative_date(-1, \"months\", null, \"month\")"),
                json!("2024-02-29T23:59:59.999Z"),
            ),
            (
                json!("relative_date(null, null, \"week\")"),
                json!("2024-03-10T00:00:00.000Z"),
            ),
            (
                json!("relative_date(null, null, \"isoWeek\")"),
                json!("2024-03-11T00:00:00.000Z"),
            ),
            (
                json!("relative_date(null, null, null, \"week\")"),
                json!("2024-03-16T23:59:59.999Z"),
            ),
            (
                json!("relative_date(2, \"weeks\")"),
                json!("2024-03-27T15:42:07.000Z"),
            ),
            (
                json!("relative_date(3, \"hours\", \"hour\")"),
                json!("2024-03-13T18:00:00.000Z"),
            ),
            (
                json!("relative_date(-30, \"minutes\", \"minute\")"),
                json!("2024-03-13T15:12:00.000Z"),
            ),
            (
                json!("relative_date(1, \"day\", null, \"day\")"),
                json!("2024-03-14T23:59:59.999Z"),
            ),
            (
                json!("relative_date(null, null, \"year\")"),
                json!("2024-01-01T00:00:00.000Z"),
            ),
            (json!("relative_date()"), json!("2024-03-13T15:42:07.000Z")),
            (json!("just a string"), json!("just a string")),
            (json!("ObjectIdentity"), json!("ObjectIdentity")),
            (
                json!({"a": [{"$oid": id}, {"b": "new Date(0)"}], "$date": "x", "c": 1}),
                json!({"a": ["5fd45d05f2b93af8d59588fb", {"b": "1970-01-01T00:00:00.000Z"}], "$date": "x", "c": 1}),
            ),
        ];
        for (input, want) in cases {
            let got = resolve_wrappers(&input, now).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
        }
        for bad in [
            json!({"$oid": "xyz"}),
            json!({"$oid": 5}),
            json!("ObjectId(\"nothex\")"),
            json!({"$date": "not a date"}),
            json!("new Date(\"garbage\")"),
            json!("relative_date(-7)"),
            json!("relative_date(-7, \"fortnights\")"),
            json!("relative_date(1.5, \"days\")"),
            json!("relative_date(1, 2, 3, 4, 5)"),
            json!("relative_date(\"x\", \"days\")"),
            json!("relative_date('unterminated)"),
        ] {
            assert!(resolve_wrappers(&bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn wrappers_then_match() {
        let now = at(2024, 2, 15, 0, 0);
        let pipeline = resolve_wrappers(
            &json!([{"$match": {"when": {"$gte": "relative_date(-1, \"months\", \"month\")", "$lt": {"$date": "2024-02-05"}}}}]),
            now,
        )
        .unwrap();
        assert_eq!(ids(&run(pipeline).unwrap()), vec!["a1", "a2"]);
    }
}

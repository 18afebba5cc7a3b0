//! Aggregation expressions (`"$field"`, literals, `{$add: …}`, `{$dateToString: …}`, …):
//! parsed once per stage, evaluated per document, never failing (a wrong type gives null).

use std::cmp::Ordering::{self, Equal, Greater, Less};
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};
use jxp_model::{format_date, is_object_id, parse_date};
use serde_json::{Map, Value};

use super::matching::is_operator_object;
use super::values::{field_path, get_path, json_eq, number_value, total_cmp, truthy};
use super::{Doc, R};
/// An aggregation expression: `"$field"`, a literal, an object or array of expressions, or an
/// operator. Evaluation never fails: a value of the wrong type gives null, so one odd
/// document does not fail a whole report.
#[derive(Debug, Clone)]
pub(super) enum Expr {
    Lit(Value),
    Field(Vec<String>),
    Root,
    Obj(Vec<(String, Expr)>),
    Arr(Vec<Expr>),
    Op(Fun, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fun {
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
    /// `$eq`, `$gt`, …: true when the order of the two arguments is one of these.
    Compare(&'static [Ordering]),
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
    ("$eq", Fun::Compare(&[Equal]), 2, 2),
    ("$ne", Fun::Compare(&[Less, Greater]), 2, 2),
    ("$gt", Fun::Compare(&[Greater]), 2, 2),
    ("$gte", Fun::Compare(&[Greater, Equal]), 2, 2),
    ("$lt", Fun::Compare(&[Less]), 2, 2),
    ("$lte", Fun::Compare(&[Less, Equal]), 2, 2),
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

pub(super) fn parse_expr(v: &Value) -> R<Expr> {
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
pub(super) fn eval(e: &Expr, doc: &Doc) -> Option<Value> {
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
        Fun::Compare(holds) => Value::Bool(holds.contains(&cmp())),
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

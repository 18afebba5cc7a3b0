//! The Extended-JSON-style wrappers (`{"$oid": …}`, `{"$date": …}`, `"ObjectId(\"…\")"`,
//! `"new Date(\"…\")"`, `"relative_date(…)"`) that `/aggregate` and `/query` accept, resolved to
//! the strings ids and dates are stored as: a pass over the raw JSON before any parsing.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use jxp_model::{format_date, is_object_id, parse_date};
use serde_json::{Map, Value};

use super::R;
use crate::error::QueryError;
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

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::super::tests::{ids, run};
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;
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

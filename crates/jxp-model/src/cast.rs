//! Mongoose-style casting of one JSON value to a scalar type, and the date parsing and
//! formatting the query layer shares so filters on Date fields accept what writes accept.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Number, Value};

use crate::objectid::is_object_id;
use crate::schema::ScalarType;

/// The largest integer an f64 (and so a JavaScript number) holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Casts a non-null value to `ty`, or `None` when Mongoose would refuse it.
pub(crate) fn cast(ty: ScalarType, value: &Value) -> Option<Value> {
    match ty {
        ScalarType::String => match value {
            Value::String(_) => Some(value.clone()),
            Value::Number(n) => Some(Value::String(n.to_string())),
            Value::Bool(b) => Some(Value::String(b.to_string())),
            _ => None,
        },
        ScalarType::Number => cast_number(value),
        ScalarType::Boolean => cast_bool(value).map(Value::Bool),
        ScalarType::Date => parse_date(value).map(|dt| Value::String(format_date(dt))),
        ScalarType::ObjectId => cast_object_id(value).map(Value::String),
        ScalarType::Mixed => Some(value.clone()),
    }
}

/// A date from an ISO 8601 string (with or without fractional seconds and offset; no offset
/// means UTC), a date-only string (midnight UTC), epoch milliseconds as a number or a string
/// of digits, or `{"$date": …}`.
pub fn parse_date(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => parse_date_str(s.trim()),
        Value::Number(n) => {
            let millis = match n.as_i64() {
                Some(ms) => ms,
                // Fractions of a millisecond are below the stored precision.
                None => n.as_f64().filter(|f| f.is_finite())?.round() as i64,
            };
            DateTime::from_timestamp_millis(millis)
        }
        Value::Object(map) => match map.get("$date") {
            Some(inner) if !inner.is_object() => parse_date(inner),
            _ => None,
        },
        _ => None,
    }
}

/// The one stored date format: `2020-05-10T09:55:15.957Z`.
pub fn format_date(dt: DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A finite f64 as a JSON number, integral values as integers so `5.0` reads back as `5`,
/// as JavaScript prints it.
pub(crate) fn number_value(f: f64) -> Option<Value> {
    if !f.is_finite() {
        return None;
    }
    if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER {
        return Some(Value::from(f as i64));
    }
    Number::from_f64(f).map(Value::Number)
}

fn cast_number(value: &Value) -> Option<Value> {
    match value {
        Value::Number(n) if n.is_f64() => number_value(n.as_f64()?),
        Value::Number(_) => Some(value.clone()),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return Some(Value::from(i));
            }
            // Rust also reads "inf" and "NaN"; number_value refuses those.
            number_value(s.parse::<f64>().ok()?)
        }
        Value::Bool(b) => Some(Value::from(i64::from(*b))),
        _ => None,
    }
}

fn cast_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A 24-hex string, `{"$oid": …}`, or a populated document (an object with a string `_id`).
fn cast_object_id(value: &Value) -> Option<String> {
    let id = match value {
        Value::String(s) => s.as_str(),
        Value::Object(map) => map
            .get("$oid")
            .or_else(|| map.get("_id"))
            .and_then(Value::as_str)?,
        _ => return None,
    };
    is_object_id(id).then(|| id.to_ascii_lowercase())
}

fn parse_date_str(s: &str) -> Option<DateTime<Utc>> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return DateTime::from_timestamp_millis(s.parse().ok()?);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.to_utc());
    }
    if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(dt.to_utc());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
            return Some(naive.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(ty: ScalarType, cases: &[(Value, Option<Value>)]) {
        for (input, expected) in cases {
            assert_eq!(&cast(ty, input), expected, "{} <- {input}", ty.name());
        }
    }

    #[test]
    fn casts_strings() {
        check(
            ScalarType::String,
            &[
                (json!("abc"), Some(json!("abc"))),
                (json!(""), Some(json!(""))),
                (json!(5), Some(json!("5"))),
                (json!(5.5), Some(json!("5.5"))),
                (json!(true), Some(json!("true"))),
                (json!({"a": 1}), None),
                (json!(["a"]), None),
            ],
        );
    }

    #[test]
    fn casts_numbers() {
        check(
            ScalarType::Number,
            &[
                (json!(5), Some(json!(5))),
                (json!(-5), Some(json!(-5))),
                (json!(5.5), Some(json!(5.5))),
                (json!(5.0), Some(json!(5))),
                (json!("5"), Some(json!(5))),
                (json!(" 5 "), Some(json!(5))),
                (json!("5.5"), Some(json!(5.5))),
                (json!("5.0"), Some(json!(5))),
                (json!("-1e3"), Some(json!(-1000))),
                (json!(true), Some(json!(1))),
                (json!(false), Some(json!(0))),
                (json!("abc"), None),
                (json!(""), None),
                (json!("  "), None),
                (json!("inf"), None),
                (json!("NaN"), None),
                (json!("1e400"), None),
                (json!([1]), None),
                (json!({}), None),
            ],
        );
    }

    #[test]
    fn casts_booleans() {
        check(
            ScalarType::Boolean,
            &[
                (json!(true), Some(json!(true))),
                (json!(false), Some(json!(false))),
                (json!("true"), Some(json!(true))),
                (json!("TRUE"), Some(json!(true))),
                (json!("Yes"), Some(json!(true))),
                (json!("1"), Some(json!(true))),
                (json!("false"), Some(json!(false))),
                (json!("no"), Some(json!(false))),
                (json!("0"), Some(json!(false))),
                (json!(1), Some(json!(true))),
                (json!(0), Some(json!(false))),
                (json!(2), None),
                (json!("maybe"), None),
                (json!(""), None),
                (json!([]), None),
            ],
        );
    }

    #[test]
    fn casts_dates() {
        check(
            ScalarType::Date,
            &[
                (
                    json!("2020-05-10T09:55:15.957Z"),
                    Some(json!("2020-05-10T09:55:15.957Z")),
                ),
                (
                    json!("2020-05-10T09:55:15Z"),
                    Some(json!("2020-05-10T09:55:15.000Z")),
                ),
                (
                    json!("2020-05-10T11:55:15.5+02:00"),
                    Some(json!("2020-05-10T09:55:15.500Z")),
                ),
                (
                    json!("2020-05-10T11:55:15+0200"),
                    Some(json!("2020-05-10T09:55:15.000Z")),
                ),
                (
                    json!("2020-05-10T09:55:15"),
                    Some(json!("2020-05-10T09:55:15.000Z")),
                ),
                (
                    json!("2020-05-10T09:55:15.123"),
                    Some(json!("2020-05-10T09:55:15.123Z")),
                ),
                (
                    json!("2020-05-10 09:55:15"),
                    Some(json!("2020-05-10T09:55:15.000Z")),
                ),
                (
                    json!("2020-05-10T09:55"),
                    Some(json!("2020-05-10T09:55:00.000Z")),
                ),
                (json!("2020-05-10"), Some(json!("2020-05-10T00:00:00.000Z"))),
                (
                    json!(1589104515957_i64),
                    Some(json!("2020-05-10T09:55:15.957Z")),
                ),
                (
                    json!("1589104515957"),
                    Some(json!("2020-05-10T09:55:15.957Z")),
                ),
                (json!(0), Some(json!("1970-01-01T00:00:00.000Z"))),
                (json!(-1000), Some(json!("1969-12-31T23:59:59.000Z"))),
                (
                    json!({"$date": "2020-05-10"}),
                    Some(json!("2020-05-10T00:00:00.000Z")),
                ),
                (json!("2020-13-10"), None),
                (json!("yesterday"), None),
                (json!(""), None),
                (json!(true), None),
                (json!([]), None),
                (json!(1e300), None),
            ],
        );
    }

    #[test]
    fn casts_object_ids() {
        let id = "5eb7cf838c9fba641e0e9dcb";
        check(
            ScalarType::ObjectId,
            &[
                (json!(id), Some(json!(id))),
                (json!(id.to_uppercase()), Some(json!(id))),
                (json!({"$oid": id}), Some(json!(id))),
                (json!({"_id": id, "name": "x"}), Some(json!(id))),
                (json!("5eb7cf838c9fba641e0e9dcz"), None),
                (json!("abc"), None),
                (json!(5), None),
                (json!({"name": "x"}), None),
            ],
        );
    }

    #[test]
    fn mixed_takes_anything() {
        for v in [json!(1), json!("x"), json!({"a": [1]}), json!([true])] {
            assert_eq!(cast(ScalarType::Mixed, &v), Some(v.clone()));
        }
    }
}

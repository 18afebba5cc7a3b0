//! The checks on one scalar value: its cast, the string transforms, `required`, `enum`,
//! `min`/`max`, lengths and `match`; and how a rejected value is shown in an error.

use serde_json::Value;

use crate::cast::{cast, parse_date};
use crate::error::ValidationError;
use crate::schema::{Field, ScalarType};

/// Longest rendering of a rejected value in an error message, so a huge body does not come
/// back whole.
const SHOWN_VALUE_CHARS: usize = 60;

pub(super) fn validate_scalar(
    field: &Field,
    ty: ScalarType,
    value: &mut Value,
    path: &str,
) -> Result<(), ValidationError> {
    let fail = |reason: String| Err(ValidationError::new(path, reason));
    let typed = !matches!(ty, ScalarType::String | ScalarType::Mixed);
    if typed && value.as_str().is_some_and(|s| s.trim().is_empty()) {
        // An empty form input clears a typed field, as Mongoose casts "" to null.
        *value = Value::Null;
        return if field.options.required {
            fail("is required".into())
        } else {
            Ok(())
        };
    }
    let Some(mut cast_value) = cast(ty, value) else {
        return fail(format!(
            "cannot cast {} to {}",
            shown(field, value),
            ty.name()
        ));
    };
    let opts = &field.options;
    if let Value::String(s) = &mut cast_value
        && ty == ScalarType::String
    {
        if opts.trim {
            *s = s.trim().to_owned();
        }
        if opts.lowercase {
            *s = s.to_lowercase();
        }
        if opts.uppercase {
            *s = s.to_uppercase();
        }
    }
    *value = cast_value;

    if opts.required && value.as_str() == Some("") && ty == ScalarType::String {
        return fail("is required".to_owned());
    }
    if let Some(allowed) = &opts.enum_values
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return fail(format!("must be one of {}", list.join(", ")));
    }
    if let Some(min) = &opts.min
        && compare(ty, value, min) == Some(std::cmp::Ordering::Less)
    {
        return fail(format!("must be at least {}", bound(min)));
    }
    if let Some(max) = &opts.max
        && compare(ty, value, max) == Some(std::cmp::Ordering::Greater)
    {
        return fail(format!("must be at most {}", bound(max)));
    }
    if let Value::String(s) = &*value {
        let len = s.chars().count();
        if let Some(min) = opts.minlength
            && len < min
        {
            return fail(format!("is shorter than the minimum length {min}"));
        }
        if let Some(max) = opts.maxlength
            && len > max
        {
            return fail(format!("is longer than the maximum length {max}"));
        }
        // Mongoose's match validator lets the empty string through; `required` covers it.
        if let Some(pattern) = &opts.pattern
            && !s.is_empty()
            && !pattern.is_match(s)
        {
            return fail(format!("does not match /{}/", pattern.as_str()));
        }
    }
    Ok(())
}

/// Orders a cast value against a `min`/`max` bound: numbers as numbers, dates as dates.
fn compare(ty: ScalarType, value: &Value, bound: &Value) -> Option<std::cmp::Ordering> {
    match ty {
        ScalarType::Number => value.as_f64()?.partial_cmp(&bound.as_f64()?),
        ScalarType::Date => Some(parse_date(value)?.cmp(&parse_date(bound)?)),
        _ => None,
    }
}

/// A bound as a person writes it: dates without quotes.
fn bound(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A rejected value for an error message: shortened, and withheld for private fields so a
/// secret never reaches a log.
pub(super) fn shown(field: &Field, value: &Value) -> String {
    if field.is_private() {
        return "this value".to_owned();
    }
    let text = value.to_string();
    if text.chars().count() <= SHOWN_VALUE_CHARS {
        return text;
    }
    let mut short: String = text.chars().take(SHOWN_VALUE_CHARS - 1).collect();
    short.push('…');
    short
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use crate::validate::tests::{OID, check, run};

    #[test]
    fn coerces_each_type() {
        check(
            "",
            vec![
                ("s = \"String\"", json!({"s": "x"}), Ok(json!({"s": "x"}))),
                ("s = \"String\"", json!({"s": 5}), Ok(json!({"s": "5"}))),
                (
                    "s = \"String\"",
                    json!({"s": false}),
                    Ok(json!({"s": "false"})),
                ),
                (
                    "s = \"String\"",
                    json!({"s": {"a": 1}}),
                    Err(("s", "cannot cast {\"a\":1} to String")),
                ),
                (
                    "s = \"String\"",
                    json!({"s": [1]}),
                    Err(("s", "cannot cast [1] to String")),
                ),
                ("n = \"Number\"", json!({"n": "5"}), Ok(json!({"n": 5}))),
                (
                    "n = \"Number\"",
                    json!({"n": " 5.5 "}),
                    Ok(json!({"n": 5.5})),
                ),
                ("n = \"Number\"", json!({"n": true}), Ok(json!({"n": 1}))),
                (
                    "n = \"Number\"",
                    json!({"n": "abc"}),
                    Err(("n", "cannot cast \"abc\" to Number")),
                ),
                ("n = \"Number\"", json!({"n": ""}), Ok(json!({"n": null}))),
                (
                    "b = \"Boolean\"",
                    json!({"b": "yes"}),
                    Ok(json!({"b": true})),
                ),
                ("b = \"Boolean\"", json!({"b": 0}), Ok(json!({"b": false}))),
                (
                    "b = \"Boolean\"",
                    json!({"b": "perhaps"}),
                    Err(("b", "cannot cast \"perhaps\" to Boolean")),
                ),
                (
                    "d = \"Date\"",
                    json!({"d": "2020-05-10"}),
                    Ok(json!({"d": "2020-05-10T00:00:00.000Z"})),
                ),
                (
                    "d = \"Date\"",
                    json!({"d": 1589104515957_i64}),
                    Ok(json!({"d": "2020-05-10T09:55:15.957Z"})),
                ),
                (
                    "d = \"Date\"",
                    json!({"d": "soon"}),
                    Err(("d", "cannot cast \"soon\" to Date")),
                ),
                (
                    "o = \"ObjectId\"",
                    json!({"o": OID.to_uppercase()}),
                    Ok(json!({"o": OID})),
                ),
                (
                    "o = \"ObjectId\"",
                    json!({"o": {"_id": OID, "name": "x"}}),
                    Ok(json!({"o": OID})),
                ),
                (
                    "o = \"ObjectId\"",
                    json!({"o": "123"}),
                    Err(("o", "cannot cast \"123\" to ObjectId")),
                ),
                (
                    "m = \"Mixed\"",
                    json!({"m": {"any": [1, "x"]}}),
                    Ok(json!({"m": {"any": [1, "x"]}})),
                ),
                // Null is a value for every field that is not required.
                ("n = \"Number\"", json!({"n": null}), Ok(json!({"n": null}))),
                (
                    "a = { x = \"String\" }",
                    json!({"a": null}),
                    Ok(json!({"a": null})),
                ),
                (
                    "t = [\"String\"]",
                    json!({"t": null}),
                    Ok(json!({"t": null})),
                ),
                // Private values stay out of error messages.
                (
                    "secret = { type = \"Number\", private = true }",
                    json!({"secret": "hunter2"}),
                    Err(("secret", "cannot cast this value to Number")),
                ),
                (
                    "password = \"String\"",
                    json!({"password": ["hunter2"]}),
                    Err(("password", "cannot cast this value to String")),
                ),
            ],
        );
    }

    #[test]
    fn checks() {
        let date = "d = { type = \"Date\", min = \"2020-01-01\", max = 2000000000000 }";
        check(
            "",
            vec![
                (
                    "s = { type = \"String\", required = true }",
                    json!({}),
                    Err(("s", "is required")),
                ),
                (
                    "s = { type = \"String\", required = true }",
                    json!({"s": null}),
                    Err(("s", "is required")),
                ),
                (
                    "s = { type = \"String\", required = true }",
                    json!({"s": ""}),
                    Err(("s", "is required")),
                ),
                (
                    "s = { type = \"String\", required = true, trim = true }",
                    json!({"s": "  "}),
                    Err(("s", "is required")),
                ),
                (
                    "n = { type = \"Number\", required = true }",
                    json!({"n": 0}),
                    Ok(json!({"n": 0})),
                ),
                (
                    "b = { type = \"Boolean\", required = true }",
                    json!({"b": false}),
                    Ok(json!({"b": false})),
                ),
                (
                    "s = { type = \"String\", enum = [\"a\", \"b\"] }",
                    json!({"s": "b"}),
                    Ok(json!({"s": "b"})),
                ),
                (
                    "s = { type = \"String\", enum = [\"a\", \"b\"] }",
                    json!({"s": "c"}),
                    Err(("s", "must be one of \"a\", \"b\"")),
                ),
                (
                    "s = { type = \"String\", enum = [\"a\", \"b\"] }",
                    json!({"s": null}),
                    Ok(json!({"s": null})),
                ),
                (
                    "s = { type = \"String\", enum = [\"a\"], lowercase = true }",
                    json!({"s": "A"}),
                    Ok(json!({"s": "a"})),
                ),
                (
                    "n = { type = \"Number\", enum = [1, 2] }",
                    json!({"n": "2"}),
                    Ok(json!({"n": 2})),
                ),
                (
                    "n = { type = \"Number\", enum = [1, 2] }",
                    json!({"n": 3}),
                    Err(("n", "must be one of 1, 2")),
                ),
                (
                    "n = { type = \"Number\", min = 0, max = 10 }",
                    json!({"n": 0}),
                    Ok(json!({"n": 0})),
                ),
                (
                    "n = { type = \"Number\", min = 0, max = 10 }",
                    json!({"n": "10"}),
                    Ok(json!({"n": 10})),
                ),
                (
                    "n = { type = \"Number\", min = 0, max = 10 }",
                    json!({"n": -0.5}),
                    Err(("n", "must be at least 0")),
                ),
                (
                    "n = { type = \"Number\", min = 0, max = 10 }",
                    json!({"n": 10.5}),
                    Err(("n", "must be at most 10")),
                ),
                (
                    date,
                    json!({"d": "2021-06-01"}),
                    Ok(json!({"d": "2021-06-01T00:00:00.000Z"})),
                ),
                (
                    date,
                    json!({"d": "2019-12-31T23:59:59Z"}),
                    Err(("d", "must be at least 2020-01-01T00:00:00.000Z")),
                ),
                (
                    date,
                    json!({"d": "2040-01-01"}),
                    Err(("d", "must be at most 2033-05-18T03:33:20.000Z")),
                ),
                (
                    "s = { type = \"String\", minlength = 3, maxlength = 5 }",
                    json!({"s": "abc"}),
                    Ok(json!({"s": "abc"})),
                ),
                (
                    "s = { type = \"String\", minlength = 3, maxlength = 5 }",
                    json!({"s": "éé"}),
                    Err(("s", "is shorter than the minimum length 3")),
                ),
                (
                    "s = { type = \"String\", minlength = 3, maxlength = 5 }",
                    json!({"s": "éééééé"}),
                    Err(("s", "is longer than the maximum length 5")),
                ),
                (
                    "s = { type = \"String\", match = \"^[a-z]+$\" }",
                    json!({"s": "abc"}),
                    Ok(json!({"s": "abc"})),
                ),
                (
                    "s = { type = \"String\", match = \"^[a-z]+$\" }",
                    json!({"s": "ab1"}),
                    Err(("s", "does not match /^[a-z]+$/")),
                ),
                (
                    "s = { type = \"String\", match = \"^[a-z]+$\" }",
                    json!({"s": ""}),
                    Ok(json!({"s": ""})),
                ),
                (
                    "s = { type = \"String\", trim = true, lowercase = true }",
                    json!({"s": "  MiXed "}),
                    Ok(json!({"s": "mixed"})),
                ),
                (
                    "s = { type = \"String\", uppercase = true }",
                    json!({"s": "abc"}),
                    Ok(json!({"s": "ABC"})),
                ),
                (
                    "s = { type = \"String\", trim = true, maxlength = 3 }",
                    json!({"s": " abc "}),
                    Ok(json!({"s": "abc"})),
                ),
            ],
        );
    }

    #[test]
    fn long_values_are_shortened_in_errors() {
        let long = "x".repeat(500);
        let err = run("n = \"Number\"", "", json!({ "n": long })).unwrap_err();
        assert!(err.reason.len() < 120, "{}", err.reason);
        assert!(err.reason.contains('…'));
    }
}

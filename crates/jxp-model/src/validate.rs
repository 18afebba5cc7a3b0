//! Validation and Mongoose-style coercion of documents against their model: defaults, casts,
//! string transforms, the field checks, and what happens to keys the model does not know.

use serde_json::{Map, Value};

use crate::cast::cast;
use crate::document::{Document, SYSTEM_FIELDS};
use crate::error::ValidationError;
use crate::schema::{Field, FieldKind, Model, ScalarType, Strict};

pub use crate::cast::{format_date, parse_date};

/// Longest rendering of a rejected value in an error message, so a huge body does not come
/// back whole.
const SHOWN_VALUE_CHARS: usize = 60;

impl Model {
    /// Validates and coerces the model's fields of `doc` in place: `doc` is a full document (a
    /// create body, or a stored document with an update merged in). System fields are left as
    /// they are; other keys the model does not know are dropped or rejected by `strict`.
    pub fn validate(&self, doc: &mut Document) -> Result<(), ValidationError> {
        validate_object(&self.fields, doc, "", self.options.strict)
    }
}

/// Validates one present value of `field` at `path`; the loader uses it to check defaults.
pub(crate) fn validate_value(
    field: &Field,
    value: &mut Value,
    path: &str,
    strict: Strict,
) -> Result<(), ValidationError> {
    if value.is_null() {
        return if field.options.required {
            Err(ValidationError::new(path, "is required"))
        } else {
            Ok(())
        };
    }
    match &field.kind {
        FieldKind::Scalar(ty) => validate_scalar(field, *ty, value, path),
        FieldKind::Array(element) => {
            // Mongoose wraps a single value into a one-element array.
            if !value.is_array() {
                *value = Value::Array(vec![value.take()]);
            }
            if let Value::Array(items) = value {
                for (i, item) in items.iter_mut().enumerate() {
                    validate_value(element, item, &format!("{path}.{i}"), strict)?;
                }
            }
            Ok(())
        }
        FieldKind::Object(children) => match value {
            Value::Object(map) => validate_object(children, map, path, strict),
            other => Err(ValidationError::new(
                path,
                format!("cannot cast {} to an object", shown(field, other)),
            )),
        },
    }
}

/// Validates the `fields` of one object; `prefix` is its path, empty for the document itself
/// (the only level where system fields are exempt).
fn validate_object(
    fields: &[Field],
    obj: &mut Map<String, Value>,
    prefix: &str,
    strict: Strict,
) -> Result<(), ValidationError> {
    for field in fields {
        let path = join(prefix, &field.name);
        match obj.get_mut(&field.name) {
            Some(value) => validate_value(field, value, &path, strict)?,
            None => {
                if let Some(value) = missing_value(field, &path, strict)? {
                    obj.insert(field.name.clone(), value);
                }
            }
        }
    }
    let known = |key: &str| {
        fields.iter().any(|f| f.name == key) || (prefix.is_empty() && SYSTEM_FIELDS.contains(&key))
    };
    match strict {
        Strict::Drop => obj.retain(|key, _| known(key)),
        Strict::Throw => {
            if let Some(key) = obj.keys().find(|key| !known(key)) {
                return Err(ValidationError::new(
                    join(prefix, key),
                    "is not in the model",
                ));
            }
        }
    }
    Ok(())
}

/// What a missing field becomes: its default, `[]` for arrays, an object for nested objects
/// with defaults inside; `None` leaves it missing.
fn missing_value(
    field: &Field,
    path: &str,
    strict: Strict,
) -> Result<Option<Value>, ValidationError> {
    if let Some(default) = &field.options.default {
        let mut value = if is_date_now(field, default) {
            Value::String(crate::document::now_iso())
        } else {
            default.clone()
        };
        validate_value(field, &mut value, path, strict)?;
        return Ok(Some(value));
    }
    match &field.kind {
        FieldKind::Array(_) => Ok(Some(Value::Array(Vec::new()))),
        FieldKind::Object(children) => {
            let mut obj = Map::new();
            // Validating an empty object reports required fields inside it, as Mongoose does
            // for nested paths; it is kept only when defaults gave it content.
            validate_object(children, &mut obj, path, strict)?;
            if has_default(children) {
                Ok(Some(Value::Object(obj)))
            } else if field.options.required {
                Err(ValidationError::new(path, "is required"))
            } else {
                Ok(None)
            }
        }
        FieldKind::Scalar(_) if field.options.required => {
            Err(ValidationError::new(path, "is required"))
        }
        FieldKind::Scalar(_) => Ok(None),
    }
}

/// `default = "now"` on a Date field: the time of the write.
pub(crate) fn is_date_now(field: &Field, default: &Value) -> bool {
    matches!(field.kind, FieldKind::Scalar(ScalarType::Date)) && default.as_str() == Some("now")
}

fn has_default(fields: &[Field]) -> bool {
    fields.iter().any(|f| {
        f.options.default.is_some()
            || matches!(&f.kind, FieldKind::Object(children) if has_default(children))
    })
}

fn validate_scalar(
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
fn shown(field: &Field, value: &Value) -> String {
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

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::load::parse_model_toml;

    fn model(fields: &str, options: &str) -> Model {
        let text = format!("[fields]\n{fields}\n[options]\n{options}\n");
        parse_model_toml("test", Path::new("test.toml"), &text).unwrap()
    }

    fn run(fields: &str, options: &str, input: Value) -> Result<Value, ValidationError> {
        let Value::Object(mut doc) = input else {
            panic!("input must be an object")
        };
        model(fields, options).validate(&mut doc)?;
        Ok(Value::Object(doc))
    }

    type Case = (
        &'static str,
        Value,
        Result<Value, (&'static str, &'static str)>,
    );

    fn check(options: &str, cases: Vec<Case>) {
        for (fields, input, expected) in cases {
            let got = run(fields, options, input.clone());
            let expected = expected.map_err(|(field, reason)| ValidationError::new(field, reason));
            assert_eq!(got, expected, "fields: {fields}\ninput: {input}");
        }
    }

    const OID: &str = "5eb7cf838c9fba641e0e9dcb";

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
    fn defaults() {
        check(
            "",
            vec![
                (
                    "s = { type = \"String\", default = \"x\" }",
                    json!({}),
                    Ok(json!({"s": "x"})),
                ),
                (
                    "s = { type = \"String\", default = \"x\" }",
                    json!({"s": "y"}),
                    Ok(json!({"s": "y"})),
                ),
                (
                    "s = { type = \"String\", default = \"x\" }",
                    json!({"s": null}),
                    Ok(json!({"s": null})),
                ),
                (
                    "n = { type = \"Number\", default = 3 }",
                    json!({}),
                    Ok(json!({"n": 3})),
                ),
                ("t = [\"String\"]", json!({}), Ok(json!({"t": []}))),
                ("t = [{ a = \"String\" }]", json!({}), Ok(json!({"t": []}))),
                (
                    "t = { type = [\"Number\"], default = [1, 2] }",
                    json!({}),
                    Ok(json!({"t": [1, 2]})),
                ),
                (
                    "a = { x = \"String\", y = \"Number\" }",
                    json!({}),
                    Ok(json!({})),
                ),
                (
                    "a = { x = \"String\", y = { type = \"Number\", default = 1 } }",
                    json!({}),
                    Ok(json!({"a": {"y": 1}})),
                ),
                (
                    "a = { b = { c = { type = \"Boolean\", default = true } }, t = [\"String\"] }",
                    json!({}),
                    Ok(json!({"a": {"b": {"c": true}, "t": []}})),
                ),
                (
                    "a = { x = \"String\", y = { type = \"Number\", default = 1 } }",
                    json!({"a": {"x": "s"}}),
                    Ok(json!({"a": {"x": "s", "y": 1}})),
                ),
            ],
        );
        let mut doc = Document::new();
        model("d = { type = \"Date\", default = \"now\" }", "")
            .validate(&mut doc)
            .unwrap();
        let stored = parse_date(&doc["d"]).unwrap();
        assert!((chrono::Utc::now() - stored).num_seconds().abs() < 5);
        assert_eq!(doc["d"].as_str().map(str::len), Some(24));
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
    fn unknown_keys_follow_strict() {
        let fields = "a = \"String\"\nsub = { x = \"Number\" }\nlist = [{ y = \"String\" }]";
        let system = json!({
            "_id": OID, "id": OID, "_owner_id": OID, "_updated_by_id": null, "_deleted": false,
            "createdAt": "2020-05-10T09:55:15.957Z", "updatedAt": "2020-05-10T09:55:15.957Z", "__v": 0
        });
        let mut with_system = system.clone();
        with_system["a"] = json!("x");
        let mut expected = with_system.clone();
        expected["list"] = json!([]);
        for options in ["", "strict = \"throw\""] {
            check(
                options,
                vec![(fields, with_system.clone(), Ok(expected.clone()))],
            );
        }
        check(
            "",
            vec![
                (
                    fields,
                    json!({"a": "x", "zzz": 1}),
                    Ok(json!({"a": "x", "list": []})),
                ),
                (
                    fields,
                    json!({"sub": {"x": 1, "zzz": 1}}),
                    Ok(json!({"sub": {"x": 1}, "list": []})),
                ),
                (
                    fields,
                    json!({"list": [{"y": "a", "zzz": 1}]}),
                    Ok(json!({"list": [{"y": "a"}]})),
                ),
                // System field names are only exempt at the top level.
                (
                    fields,
                    json!({"sub": {"_id": OID}}),
                    Ok(json!({"sub": {}, "list": []})),
                ),
            ],
        );
        check(
            "strict = \"throw\"",
            vec![
                (
                    fields,
                    json!({"a": "x", "zzz": 1}),
                    Err(("zzz", "is not in the model")),
                ),
                (
                    fields,
                    json!({"sub": {"x": 1, "zzz": 1}}),
                    Err(("sub.zzz", "is not in the model")),
                ),
                (
                    fields,
                    json!({"list": [{"y": "a"}, {"zzz": 1}]}),
                    Err(("list.1.zzz", "is not in the model")),
                ),
            ],
        );
    }

    #[test]
    fn nested_objects_and_arrays() {
        let address =
            "address = { street = \"String\", zip = { type = \"Number\", required = true } }";
        let composite =
            "composite_array = [{ afoo = \"String\", abar = { type = \"Number\", min = 0 } }]";
        check(
            "",
            vec![
                (
                    address,
                    json!({"address": {"street": 5, "zip": "1234"}}),
                    Ok(json!({"address": {"street": "5", "zip": 1234}})),
                ),
                (
                    address,
                    json!({"address": {"zip": "x"}}),
                    Err(("address.zip", "cannot cast \"x\" to Number")),
                ),
                (
                    address,
                    json!({"address": "Main St"}),
                    Err(("address", "cannot cast \"Main St\" to an object")),
                ),
                // A missing nested object still has its required fields checked, as Mongoose
                // checks nested paths.
                (address, json!({}), Err(("address.zip", "is required"))),
                (
                    "tags = [\"String\"]",
                    json!({"tags": ["a", 1, true]}),
                    Ok(json!({"tags": ["a", "1", "true"]})),
                ),
                (
                    "tags = [\"String\"]",
                    json!({"tags": "solo"}),
                    Ok(json!({"tags": ["solo"]})),
                ),
                (
                    "nums = [\"Number\"]",
                    json!({"nums": [1, "2", "x"]}),
                    Err(("nums.2", "cannot cast \"x\" to Number")),
                ),
                (
                    "nums = [\"Number\"]",
                    json!({"nums": [1, null]}),
                    Ok(json!({"nums": [1, null]})),
                ),
                (
                    "nums = [{ type = \"Number\", required = true }]",
                    json!({"nums": [1, null]}),
                    Err(("nums.1", "is required")),
                ),
                (
                    "tags = { type = [\"String\"], enum = [\"a\", \"b\"], lowercase = true }",
                    json!({"tags": ["A", "b"]}),
                    Ok(json!({"tags": ["a", "b"]})),
                ),
                (
                    "tags = { type = [\"String\"], enum = [\"a\", \"b\"] }",
                    json!({"tags": ["a", "c"]}),
                    Err(("tags.1", "must be one of \"a\", \"b\"")),
                ),
                (
                    "tags = { type = [\"String\"], required = true }",
                    json!({"tags": null}),
                    Err(("tags", "is required")),
                ),
                (
                    "ids = [{ type = \"ObjectId\", link = \"Link\" }]",
                    json!({"ids": [OID, {"$oid": OID}]}),
                    Ok(json!({"ids": [OID, OID]})),
                ),
                (
                    "anything = []",
                    json!({"anything": [1, "x", {"a": null}]}),
                    Ok(json!({"anything": [1, "x", {"a": null}]})),
                ),
                (
                    composite,
                    json!({"composite_array": [{"afoo": "x", "abar": "1"}, {"afoo": 2}]}),
                    Ok(json!({"composite_array": [{"afoo": "x", "abar": 1}, {"afoo": "2"}]})),
                ),
                (
                    composite,
                    json!({"composite_array": [{"abar": 1}, {"abar": -1}]}),
                    Err(("composite_array.1.abar", "must be at least 0")),
                ),
                (
                    composite,
                    json!({"composite_array": [{"abar": "x"}]}),
                    Err(("composite_array.0.abar", "cannot cast \"x\" to Number")),
                ),
                (
                    composite,
                    json!({"composite_array": [5]}),
                    Err(("composite_array.0", "cannot cast 5 to an object")),
                ),
                (
                    "subs = [{ n = { type = \"Number\", default = 7 } }]",
                    json!({"subs": [{}, {"n": 1}]}),
                    Ok(json!({"subs": [{"n": 7}, {"n": 1}]})),
                ),
            ],
        );
    }

    #[test]
    fn fields_are_checked_in_file_order() {
        let fields = "first = \"Number\"\nsecond = \"Number\"";
        let err = run(fields, "", json!({"second": "x", "first": "y"})).unwrap_err();
        assert_eq!(err.field, "first");
    }

    #[test]
    fn long_values_are_shortened_in_errors() {
        let long = "x".repeat(500);
        let err = run("n = \"Number\"", "", json!({ "n": long })).unwrap_err();
        assert!(err.reason.len() < 120, "{}", err.reason);
        assert!(err.reason.contains('…'));
    }
}

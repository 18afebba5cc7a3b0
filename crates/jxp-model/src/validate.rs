//! Validation and Mongoose-style coercion of documents against their model: the walk over
//! objects and arrays, defaults for missing fields, and what happens to keys the model does
//! not know. The checks on one scalar value are in `scalar`.

mod scalar;

use serde_json::{Map, Value};

use crate::document::{Document, SYSTEM_FIELDS};
use crate::error::ValidationError;
use crate::schema::{Field, FieldKind, Model, ScalarType, Strict};
use scalar::{shown, validate_scalar};

pub use crate::cast::{format_date, parse_date};

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

    pub(super) fn model(fields: &str, options: &str) -> Model {
        let text = format!("[fields]\n{fields}\n[options]\n{options}\n");
        parse_model_toml("test", Path::new("test.toml"), &text).unwrap()
    }

    pub(super) fn run(fields: &str, options: &str, input: Value) -> Result<Value, ValidationError> {
        let Value::Object(mut doc) = input else {
            panic!("input must be an object")
        };
        model(fields, options).validate(&mut doc)?;
        Ok(Value::Object(doc))
    }

    pub(super) type Case = (
        &'static str,
        Value,
        Result<Value, (&'static str, &'static str)>,
    );

    pub(super) fn check(options: &str, cases: Vec<Case>) {
        for (fields, input, expected) in cases {
            let got = run(fields, options, input.clone());
            let expected = expected.map_err(|(field, reason)| ValidationError::new(field, reason));
            assert_eq!(got, expected, "fields: {fields}\ninput: {input}");
        }
    }

    pub(super) const OID: &str = "5eb7cf838c9fba641e0e9dcb";

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
}

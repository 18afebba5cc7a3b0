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
    let Some(mut cast_value) = cast(ty, value) else {
        return fail(format!(
            "cannot cast {} to {}",
            shown(field, value),
            ty.name()
        ));
    };
    let opts = &field.options;
    if let Value::String(s) = &mut cast_value {
        if ty == ScalarType::String {
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
    }
    *value = cast_value;

    if opts.required && value.as_str() == Some("") && ty == ScalarType::String {
        return fail("is required".to_owned());
    }
    if let Some(allowed) = &opts.enum_values {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return fail(format!("must be one of {}", list.join(", ")));
        }
    }
    if let Some(min) = &opts.min {
        if compare(ty, value, min) == Some(std::cmp::Ordering::Less) {
            return fail(format!("must be at least {}", bound(min)));
        }
    }
    if let Some(max) = &opts.max {
        if compare(ty, value, max) == Some(std::cmp::Ordering::Greater) {
            return fail(format!("must be at most {}", bound(max)));
        }
    }
    if let Value::String(s) = &*value {
        let len = s.chars().count();
        if let Some(min) = opts.minlength {
            if len < min {
                return fail(format!("is shorter than the minimum length {min}"));
            }
        }
        if let Some(max) = opts.maxlength {
            if len > max {
                return fail(format!("is longer than the maximum length {max}"));
            }
        }
        // Mongoose's match validator lets the empty string through; `required` covers it.
        if let Some(pattern) = &opts.pattern {
            if !s.is_empty() && !pattern.is_match(s) {
                return fail(format!("does not match /{}/", pattern.as_str()));
            }
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

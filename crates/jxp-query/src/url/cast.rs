//! Field paths and values as a query string gives them: a path resolved against the model
//! (system fields included, private fields refused), a string cast to the field's type, and a
//! `/re/flags` pattern checked to compile.

use jxp_model::{FieldKind, Model, ScalarType, format_date, is_ident, parse_date};
use serde_json::Value;

use crate::ast::Path;
use crate::error::QueryError;

/// The size limit for compiled patterns, the same the store's REGEXP function uses.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The type and path of a field a query names, including the system fields.
pub fn resolve_path(model: &Model, dotted: &str) -> Result<(Path, Option<ScalarType>), QueryError> {
    let system = match dotted {
        "_id" | "id" | "_owner_id" | "_updated_by_id" => Some(ScalarType::ObjectId),
        "_deleted" => Some(ScalarType::Boolean),
        "createdAt" | "updatedAt" => Some(ScalarType::Date),
        "__v" => Some(ScalarType::Number),
        _ => None,
    };
    if let Some(t) = system {
        return Ok((Path::plain(dotted), Some(t)));
    }
    let mut fields = &model.fields;
    let mut array_at = None;
    let mut scalar = None;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        // Private fields are not queryable: a filter or sort on them would reveal their values
        // one probe at a time.
        let field = fields
            .iter()
            .find(|f| f.name == *part && !f.is_private())
            .ok_or_else(|| QueryError::new(format!("unknown field \"{dotted}\"")))?;
        if field.kind.is_array() && array_at.is_none() {
            array_at = Some(i);
        }
        match field.kind.element() {
            FieldKind::Object(children) => {
                fields = children;
                scalar = None;
            }
            FieldKind::Scalar(t) => {
                if i + 1 < parts.len() && *t != ScalarType::Mixed {
                    return Err(QueryError::new(format!("unknown field \"{dotted}\"")));
                }
                scalar = Some(*t);
                // Below a Mixed field any path is allowed; it stays a plain identifier path.
                if *t == ScalarType::Mixed {
                    if parts[i + 1..].iter().any(|p| !is_ident(p)) {
                        return Err(QueryError::new(format!("bad field path \"{dotted}\"")));
                    }
                    break;
                }
            }
            FieldKind::Array(_) => scalar = Some(ScalarType::Mixed),
        }
    }
    Ok((Path::new(dotted, array_at), scalar))
}

/// Casts a query-string value to the field's type. `field` names the parameter in errors.
pub fn cast_str(field: &str, scalar: Option<ScalarType>, raw: &str) -> Result<Value, QueryError> {
    let bad = |what: &str| {
        QueryError::new(format!(
            "filter on \"{field}\": \"{raw}\" is not a valid {what}"
        ))
    };
    Ok(match scalar {
        Some(ScalarType::Number) => {
            let n: f64 = raw.trim().parse().map_err(|_| bad("Number"))?;
            number_value(n).ok_or_else(|| bad("Number"))?
        }
        Some(ScalarType::Boolean) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => return Err(bad("Boolean")),
        },
        Some(ScalarType::Date) => {
            let d = parse_date(&Value::String(raw.to_owned())).ok_or_else(|| bad("Date"))?;
            Value::String(format_date(d))
        }
        Some(ScalarType::ObjectId) => Value::String(raw.to_ascii_lowercase()),
        _ => Value::String(raw.to_owned()),
    })
}

fn number_value(n: f64) -> Option<Value> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return Some(Value::from(n as i64));
    }
    serde_json::Number::from_f64(n).map(Value::Number)
}

/// `$regex:/re/flags` or a bare pattern → a pattern with the flags folded in, checked to compile.
pub fn regex_pattern(field: &str, raw: &str) -> Result<String, QueryError> {
    let (body, flags) = match raw
        .strip_prefix('/')
        .and_then(|r| r.rfind('/').map(|i| (&r[..i], &r[i + 1..])))
    {
        Some((body, flags)) => (body, flags),
        None => (raw, ""),
    };
    let mut prefix = String::new();
    for f in flags.chars() {
        match f {
            'i' | 'm' | 's' | 'x' => prefix.push(f),
            'g' | 'u' | 'y' => {}
            other => {
                return Err(QueryError::new(format!(
                    "filter on \"{field}\": unknown regex flag \"{other}\""
                )));
            }
        }
    }
    let pattern = if prefix.is_empty() {
        body.to_owned()
    } else {
        format!("(?{prefix}){body}")
    };
    if !compiles(&pattern) {
        return Err(QueryError::new(format!(
            "filter on \"{field}\": invalid regex \"{raw}\""
        )));
    }
    Ok(pattern)
}

/// Whether a pattern compiles within the size limit the store's REGEXP function uses, so a
/// pattern accepted here never fails there.
pub(super) fn compiles(pattern: &str) -> bool {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .is_ok()
}

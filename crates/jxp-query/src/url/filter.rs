//! The conditions a list query string sets: `filter[f]=value` with its `$op:` prefixes, the
//! plain values of a repeated `filter[f]` as one `$in`, and `search[f]=text`, each cast to the
//! field's type.

use jxp_model::{IndexKind, Model, ScalarType};
use serde_json::Value;

use super::cast::{cast_str, compiles, regex_pattern, resolve_path};
use crate::ast::{Filter, Op, Path};
use crate::error::QueryError;

/// Whether the model has an `index = "text"` field, i.e. a full-text table.
pub fn has_text_index(model: &Model) -> bool {
    model
        .leaf_fields()
        .iter()
        .any(|(_, f, _)| f.options.index == IndexKind::Text)
}

/// `search[field]=text` → a case-insensitive "contains" on a String field (or on the
/// elements of an array of strings). It is a regex of the escaped text, so it needs no new
/// operator: the store's REGEXP and the matcher already agree on it, Unicode case folding
/// included (SQLite's own `lower()` folds ASCII only).
pub(super) fn search_condition(
    model: &Model,
    field: &str,
    raw: &str,
) -> Result<Filter, QueryError> {
    let (path, scalar) = resolve_path(model, field)?;
    if scalar != Some(ScalarType::String) {
        return Err(QueryError::new(format!(
            "search[{field}]: only String fields can be searched"
        )));
    }
    if raw.contains('\0') {
        return Err(QueryError::new(format!(
            "search[{field}]: the search text must not contain a NUL character"
        )));
    }
    let pattern = format!("(?i){}", regex::escape(raw));
    if !compiles(&pattern) {
        return Err(QueryError::new(format!(
            "search[{field}]: the search text is too long"
        )));
    }
    Ok(Filter::cond(path, Op::Regex, Value::String(pattern)))
}

/// `filter[field]=$op:value`: the operator prefix decides the condition, the rest is cast to
/// the field's type (a list for `$in`/`$nin`, a flag for `$exists`, a pattern for `$regex`).
pub(super) fn operator_condition(
    field: &str,
    path: &Path,
    scalar: Option<ScalarType>,
    raw: &str,
) -> Result<Filter, QueryError> {
    const OPS: &[(&str, Op)] = &[
        ("$gte:", Op::Gte),
        ("$gt:", Op::Gt),
        ("$lte:", Op::Lte),
        ("$lt:", Op::Lt),
        ("$ne:", Op::Ne),
        ("$in:", Op::In),
        ("$nin:", Op::Nin),
        ("$exists:", Op::Exists),
        ("$regex:", Op::Regex),
    ];
    for (prefix, op) in OPS {
        let Some(rest) = raw.strip_prefix(prefix) else {
            continue;
        };
        let value = match op {
            Op::In | Op::Nin => {
                cast_list(field, scalar, rest.split(',').filter(|s| !s.is_empty()))?
            }
            Op::Exists => Value::Bool(!matches!(rest, "false" | "0")),
            Op::Regex => Value::String(regex_pattern(field, rest)?),
            _ => cast_str(field, scalar, rest)?,
        };
        return Ok(Filter::cond(path.clone(), op.clone(), value));
    }
    if raw.starts_with('$') && raw.contains(':') {
        let name = raw.split(':').next().unwrap_or(raw);
        return Err(QueryError::new(format!(
            "filter on \"{field}\": unknown operator \"{name}\""
        )));
    }
    Ok(Filter::cond(
        path.clone(),
        Op::Eq,
        cast_str(field, scalar, raw)?,
    ))
}

/// The plain values given for one field (`filter[f]=a`, `filter[f][]=a&filter[f][]=b`): one
/// value is an equality, several are an `$in`.
pub(super) fn values_condition(
    model: &Model,
    field: &str,
    values: &[String],
) -> Result<Filter, QueryError> {
    let (path, scalar) = resolve_path(model, field)?;
    Ok(match values {
        [one] => Filter::cond(path, Op::Eq, cast_str(field, scalar, one)?),
        _ => Filter::cond(
            path,
            Op::In,
            cast_list(field, scalar, values.iter().map(String::as_str))?,
        ),
    })
}

fn cast_list<'a>(
    field: &str,
    scalar: Option<ScalarType>,
    raw: impl Iterator<Item = &'a str>,
) -> Result<Value, QueryError> {
    raw.map(|s| cast_str(field, scalar, s))
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

//! Mongo-style JSON filters (`{"n": {"$gte": 3}, "$or": [...]}`), as `POST /query` and the
//! realtime `filter` take them. Paths are checked against the model and values cast to the
//! field's type; an operator outside the supported list is a 400 naming it.

use jxp_model::{Model, ScalarType, format_date, parse_date};
use serde_json::Value;

use crate::ast::{Filter, Op, Path};
use crate::error::QueryError;
use crate::url::{regex_pattern, resolve_path};

/// Parses a filter object.
pub fn parse_mongo_filter(model: &Model, value: &Value) -> Result<Filter, QueryError> {
    let Value::Object(obj) = value else {
        return Err(QueryError::new("a filter must be a JSON object"));
    };
    let mut parts = Vec::new();
    for (key, v) in obj {
        parts.push(parse_entry(model, key, v)?);
    }
    Ok(match parts.len() {
        0 => Filter::All,
        1 => parts.pop().unwrap_or_default(),
        _ => Filter::And(parts),
    })
}

fn list(model: &Model, op: &str, v: &Value) -> Result<Vec<Filter>, QueryError> {
    let Value::Array(items) = v else {
        return Err(QueryError::new(format!("{op} takes an array of filters")));
    };
    items.iter().map(|i| parse_mongo_filter(model, i)).collect()
}

fn parse_entry(model: &Model, key: &str, v: &Value) -> Result<Filter, QueryError> {
    match key {
        "$and" => Ok(Filter::And(list(model, key, v)?)),
        "$or" => Ok(Filter::Or(list(model, key, v)?)),
        "$nor" => Ok(Filter::Nor(list(model, key, v)?)),
        _ if key.starts_with('$') => {
            Err(QueryError::new(format!("operator {key} is not supported")))
        }
        _ => {
            let (path, scalar) = resolve_path(model, key)?;
            parse_field(key, &path, scalar, v)
        }
    }
}

/// Casts a JSON value to the field's type, as the REST filter casts query-string values.
pub fn cast_json(field: &str, scalar: Option<ScalarType>, v: &Value) -> Result<Value, QueryError> {
    let bad = || {
        QueryError::new(format!(
            "filter on \"{field}\": {v} is not a valid {}",
            scalar.map_or("value", ScalarType::name)
        ))
    };
    match (scalar, v) {
        (_, Value::Null) => Ok(Value::Null),
        (Some(ScalarType::Number), Value::Number(_)) => Ok(v.clone()),
        (Some(ScalarType::Number), Value::String(s)) => crate::url::cast_str(field, scalar, s),
        (Some(ScalarType::Number), _) => Err(bad()),
        (Some(ScalarType::Boolean), Value::Bool(_)) => Ok(v.clone()),
        (Some(ScalarType::Boolean), Value::String(s)) => crate::url::cast_str(field, scalar, s),
        (Some(ScalarType::Boolean), _) => Err(bad()),
        (Some(ScalarType::Date), _) => {
            let d = parse_date(v).ok_or_else(bad)?;
            Ok(Value::String(format_date(d)))
        }
        (Some(ScalarType::ObjectId), Value::String(s)) => Ok(Value::String(s.to_ascii_lowercase())),
        (Some(ScalarType::ObjectId), Value::Object(o)) => match o.get("$oid") {
            Some(Value::String(s)) => Ok(Value::String(s.to_ascii_lowercase())),
            _ => Err(bad()),
        },
        (Some(ScalarType::ObjectId), _) => Err(bad()),
        // A number never equals a String field's text: "5" matches 5 only on Number fields.
        _ => Ok(v.clone()),
    }
}

fn parse_field(
    field: &str,
    path: &Path,
    scalar: Option<ScalarType>,
    v: &Value,
) -> Result<Filter, QueryError> {
    let ops = match v {
        Value::Object(o) if o.keys().any(|k| k.starts_with('$')) => o,
        _ => {
            return Ok(Filter::cond(
                path.clone(),
                Op::Eq,
                cast_json(field, scalar, v)?,
            ));
        }
    };
    let mut parts = Vec::new();
    let options = ops
        .get("$options")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for (op, arg) in ops {
        let cond = |op: Op, value: Value| Filter::cond(path.clone(), op, value);
        let f = match op.as_str() {
            "$eq" => cond(Op::Eq, cast_json(field, scalar, arg)?),
            "$ne" => cond(Op::Ne, cast_json(field, scalar, arg)?),
            "$gt" => cond(Op::Gt, cast_json(field, scalar, arg)?),
            "$gte" => cond(Op::Gte, cast_json(field, scalar, arg)?),
            "$lt" => cond(Op::Lt, cast_json(field, scalar, arg)?),
            "$lte" => cond(Op::Lte, cast_json(field, scalar, arg)?),
            "$in" | "$nin" => {
                let Value::Array(items) = arg else {
                    return Err(QueryError::new(format!(
                        "filter on \"{field}\": {op} takes an array"
                    )));
                };
                let cast: Vec<Value> = items
                    .iter()
                    .map(|i| cast_json(field, scalar, i))
                    .collect::<Result<_, _>>()?;
                cond(
                    if op == "$in" { Op::In } else { Op::Nin },
                    Value::Array(cast),
                )
            }
            "$exists" => cond(
                Op::Exists,
                Value::Bool(
                    !matches!(arg, Value::Bool(false) | Value::Null) && arg != &Value::from(0),
                ),
            ),
            "$regex" => {
                let Value::String(re) = arg else {
                    return Err(QueryError::new(format!(
                        "filter on \"{field}\": $regex takes a string"
                    )));
                };
                let raw = if options.is_empty() || re.starts_with('/') {
                    re.clone()
                } else {
                    format!("/{re}/{options}")
                };
                cond(Op::Regex, Value::String(regex_pattern(field, &raw)?))
            }
            "$options" => continue,
            "$not" => Filter::Not(Box::new(parse_field(field, path, scalar, arg)?)),
            other => {
                return Err(QueryError::new(format!(
                    "operator {other} is not supported"
                )));
            }
        };
        parts.push(f);
    }
    Ok(match parts.len() {
        1 => parts.pop().unwrap_or_default(),
        _ => Filter::And(parts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::matches;
    use jxp_model::{Field, FieldKind, FieldOptions, ModelOptions, Perms};
    use serde_json::json;

    fn model() -> Model {
        let f = |name: &str, t| Field {
            name: name.into(),
            kind: FieldKind::Scalar(t),
            options: FieldOptions::default(),
        };
        Model {
            slug: "t".into(),
            name: "T".into(),
            fields: vec![
                f("foo", ScalarType::String),
                f("n", ScalarType::Number),
                f("d", ScalarType::Date),
                f("b", ScalarType::Boolean),
            ],
            perms: Perms::default(),
            options: ModelOptions::default(),
            builtin: false,
        }
    }

    #[test]
    fn parses_and_matches() {
        let m = model();
        let doc = json!({"foo": "Foo", "n": 5, "d": "2020-05-10T00:00:00.000Z", "b": true});
        let doc = doc.as_object().unwrap();
        let cases = [
            (json!({"n": "5"}), true),
            (json!({"foo": 5}), false),
            (json!({"n": {"$gte": 3, "$lt": 5}}), false),
            (json!({"n": {"$gte": 3, "$lte": 5}}), true),
            (json!({"$or": [{"n": 1}, {"foo": "Foo"}]}), true),
            (json!({"$nor": [{"n": 5}]}), false),
            (json!({"foo": {"$regex": "^fo", "$options": "i"}}), true),
            (json!({"foo": {"$in": ["a", "Foo"]}}), true),
            (json!({"n": {"$nin": [5]}}), false),
            (json!({"d": {"$gt": "2020-01-01"}}), true),
            (json!({"b": "true"}), true),
            (json!({"n": {"$not": {"$gt": 4}}}), false),
            (json!({"foo": {"$exists": true}}), true),
            (json!({}), true),
        ];
        for (f, want) in cases {
            let parsed = parse_mongo_filter(&m, &f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(matches(&parsed, doc), want, "{f}");
        }
    }

    #[test]
    fn rejects_dangerous_and_unknown() {
        let m = model();
        for f in [
            json!({"$where": "1"}),
            json!({"n": {"$function": {}}}),
            json!({"$expr": {}}),
            json!({"n": {"$gte": "abc"}}),
            json!({"d": {"$gt": "not a date"}}),
            json!({"n": {"$in": 3}}),
            json!([1]),
            json!({"unknown_field": 1}),
        ] {
            assert!(parse_mongo_filter(&m, &f).is_err(), "{f}");
        }
    }
}

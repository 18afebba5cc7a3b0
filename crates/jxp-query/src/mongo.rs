//! Mongo-style JSON filters (`{"n": {"$gte": 3}, "$or": [...]}`), as `POST /query` and the
//! realtime `filter` take them. Paths are checked against the model and values cast to the
//! field's type; an operator outside the supported list is a 400 naming it.

use jxp_model::{Field, FieldKind, Model, ScalarType, format_date, is_ident, parse_date};
use serde_json::Value;

use crate::ast::{Filter, Op, Path};
use crate::error::QueryError;
use crate::url::{regex_pattern, resolve_path};

/// Parses a filter object, of at most [`crate::MAX_FILTER_CONDITIONS`] comparisons.
pub fn parse_mongo_filter(model: &Model, value: &Value) -> Result<Filter, QueryError> {
    parse_filter(Scope::Model(model), value)?.within_limits()
}

/// What the keys of a filter name: the model's fields, or (inside `$elemMatch` on an array
/// of sub-documents) the fields of one element.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Model(&'a Model),
    Element(&'a [Field]),
}

impl Scope<'_> {
    /// The key's path, its scalar type, and the element kind when the path ends at an array
    /// (which `$size`, `$all` and `$elemMatch` need).
    fn resolve<'s>(
        &'s self,
        key: &str,
    ) -> Result<(Path, Option<ScalarType>, Option<&'s FieldKind>), QueryError> {
        match self {
            Scope::Model(model) => {
                let (path, scalar) = resolve_path(model, key)?;
                let last = path.segments.len().saturating_sub(1);
                let element = if path.array_at == Some(last) {
                    array_element(&model.fields, key)
                } else {
                    None
                };
                Ok((path, scalar, element))
            }
            Scope::Element(fields) => {
                let (path, scalar) = resolve_in_element(fields, key)?;
                Ok((path, scalar, None))
            }
        }
    }
}

/// The element kind of the array field at `dotted`, when that field is an array.
fn array_element<'f>(mut fields: &'f [Field], dotted: &str) -> Option<&'f FieldKind> {
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let field = fields.iter().find(|f| f.name == *part && !f.is_private())?;
        if i + 1 == parts.len() {
            return field.kind.is_array().then(|| field.kind.element());
        }
        match &field.kind {
            FieldKind::Object(children) => fields = children,
            _ => return None,
        }
    }
    None
}

/// Resolves a key inside `$elemMatch` against an element's fields. System fields do not
/// exist there, and arrays inside the element are refused: the SQL walks one `json_each`
/// only, and a second level would need a meaning the matcher and the SQL both implement.
fn resolve_in_element(
    mut fields: &[Field],
    dotted: &str,
) -> Result<(Path, Option<ScalarType>), QueryError> {
    let unknown = || QueryError::new(format!("unknown field \"{dotted}\" in $elemMatch"));
    let parts: Vec<&str> = dotted.split('.').collect();
    let mut scalar = None;
    for (i, part) in parts.iter().enumerate() {
        let field = fields
            .iter()
            .find(|f| f.name == *part && !f.is_private())
            .ok_or_else(unknown)?;
        match &field.kind {
            FieldKind::Array(_) => {
                return Err(QueryError::new(format!(
                    "filter on \"{dotted}\": arrays inside $elemMatch are not supported"
                )));
            }
            FieldKind::Object(children) => {
                fields = children;
                scalar = None;
            }
            FieldKind::Scalar(t) => {
                scalar = Some(*t);
                if *t == ScalarType::Mixed {
                    // Below a Mixed field any plain-identifier path is allowed, as at the top.
                    if parts[i + 1..].iter().any(|p| !is_ident(p)) {
                        return Err(QueryError::new(format!("bad field path \"{dotted}\"")));
                    }
                    break;
                }
                if i + 1 < parts.len() {
                    return Err(unknown());
                }
            }
        }
    }
    Ok((Path::new(dotted, None), scalar))
}

fn parse_filter(scope: Scope<'_>, value: &Value) -> Result<Filter, QueryError> {
    let Value::Object(obj) = value else {
        return Err(QueryError::new("a filter must be a JSON object"));
    };
    let mut parts = Vec::new();
    for (key, v) in obj {
        parts.push(parse_entry(scope, key, v)?);
    }
    Ok(match parts.len() {
        0 => Filter::All,
        1 => parts.pop().unwrap_or_default(),
        _ => Filter::And(parts),
    })
}

fn list(scope: Scope<'_>, op: &str, v: &Value) -> Result<Vec<Filter>, QueryError> {
    let Value::Array(items) = v else {
        return Err(QueryError::new(format!("{op} takes an array of filters")));
    };
    items.iter().map(|i| parse_filter(scope, i)).collect()
}

fn parse_entry(scope: Scope<'_>, key: &str, v: &Value) -> Result<Filter, QueryError> {
    match key {
        "$and" => Ok(Filter::And(list(scope, key, v)?)),
        "$or" => Ok(Filter::Or(list(scope, key, v)?)),
        "$nor" => Ok(Filter::Nor(list(scope, key, v)?)),
        _ if key.starts_with('$') => {
            Err(QueryError::new(format!("operator {key} is not supported")))
        }
        _ => {
            let (path, scalar, element) = scope.resolve(key)?;
            parse_field(key, &path, scalar, element, v)
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

/// The array argument of `$in`, `$nin` or `$all`, each item cast to the field's type.
fn cast_array(
    field: &str,
    scalar: Option<ScalarType>,
    op: &str,
    arg: &Value,
) -> Result<Value, QueryError> {
    let Value::Array(items) = arg else {
        return Err(QueryError::new(format!(
            "filter on \"{field}\": {op} takes an array"
        )));
    };
    items
        .iter()
        .map(|i| cast_json(field, scalar, i))
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

/// Parses the condition on one field. `element` is the element kind when the field is an
/// array (the path ending at it), which the whole-array operators require.
fn parse_field(
    field: &str,
    path: &Path,
    scalar: Option<ScalarType>,
    element: Option<&FieldKind>,
    v: &Value,
) -> Result<Filter, QueryError> {
    let not_array =
        |op: &str| QueryError::new(format!("filter on \"{field}\": {op} needs an array field"));
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
            "$in" => cond(Op::In, cast_array(field, scalar, op, arg)?),
            "$nin" => cond(Op::Nin, cast_array(field, scalar, op, arg)?),
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
            "$size" => {
                if element.is_none() {
                    return Err(not_array(op));
                }
                // Bound as an SQLite integer, so it must fit one.
                let n = arg
                    .as_u64()
                    .filter(|n| i64::try_from(*n).is_ok())
                    .ok_or_else(|| {
                        QueryError::new(format!(
                            "filter on \"{field}\": $size takes a non-negative integer"
                        ))
                    })?;
                cond(Op::Size, Value::from(n))
            }
            "$all" => {
                if element.is_none() {
                    return Err(not_array(op));
                }
                cond(Op::All, cast_array(field, scalar, op, arg)?)
            }
            "$elemMatch" => {
                let Some(element) = element else {
                    return Err(not_array(op));
                };
                Filter::ElemMatch {
                    path: path.clone(),
                    inner: Box::new(parse_elem_match(field, element, arg)?),
                }
            }
            "$not" => Filter::Not(Box::new(parse_field(field, path, scalar, element, arg)?)),
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

/// The inner object of `$elemMatch`: a filter on the element's fields for an array of
/// sub-documents, operators on the element itself for an array of values.
fn parse_elem_match(field: &str, element: &FieldKind, arg: &Value) -> Result<Filter, QueryError> {
    let Value::Object(inner) = arg else {
        return Err(QueryError::new(format!(
            "filter on \"{field}\": $elemMatch takes an object"
        )));
    };
    match element {
        FieldKind::Object(children) => parse_filter(Scope::Element(children), arg),
        FieldKind::Scalar(t) => {
            if inner.is_empty() {
                // Any element at all; parse_field would read `{}` as "equals {}".
                return Ok(Filter::All);
            }
            if inner.keys().any(|k| !k.starts_with('$')) {
                return Err(QueryError::new(format!(
                    "filter on \"{field}\": $elemMatch on an array of values takes operators only"
                )));
            }
            parse_field(field, &Path::element(), Some(*t), None, arg)
        }
        FieldKind::Array(_) => Err(QueryError::new(format!(
            "filter on \"{field}\": $elemMatch on nested arrays is not supported"
        ))),
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
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
        let arr = |name: &str, element: FieldKind| Field {
            name: name.into(),
            kind: FieldKind::Array(Box::new(Field {
                name: name.into(),
                kind: element,
                options: FieldOptions::default(),
            })),
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
                arr("tags", FieldKind::Scalar(ScalarType::String)),
                arr("scores", FieldKind::Scalar(ScalarType::Number)),
                arr(
                    "composite_array",
                    FieldKind::Object(vec![
                        f("afoo", ScalarType::String),
                        f("abar", ScalarType::Number),
                        arr("inner", FieldKind::Scalar(ScalarType::String)),
                    ]),
                ),
                Field {
                    name: "address".into(),
                    kind: FieldKind::Object(vec![f("city", ScalarType::String)]),
                    options: FieldOptions::default(),
                },
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
    fn long_lists_pass_and_too_many_conditions_are_refused() {
        let m = model();
        let values: Vec<i64> = (0..40_000).collect();
        let f = parse_mongo_filter(&m, &json!({"n": {"$in": values}})).unwrap();
        assert_eq!(f.condition_count(), 1);
        let wide: Vec<Value> = (0..1000).map(|i| json!({"n": i})).collect();
        assert!(parse_mongo_filter(&m, &json!({"$or": wide})).is_ok());
        let wider: Vec<Value> = (0..1001).map(|i| json!({"n": i})).collect();
        let err = parse_mongo_filter(&m, &json!({"$or": wider})).unwrap_err();
        assert!(err.0.contains("at most 1000 comparisons"), "{err}");
        let items: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
        assert!(parse_mongo_filter(&m, &json!({"tags": {"$all": items}})).is_err());
    }

    #[test]
    fn array_operators_parse_and_match() {
        let m = model();
        let doc = json!({
            "tags": ["a", "b", "c"], "scores": [70, 82, 90],
            "composite_array": [{"afoo": "x", "abar": 1}, {"afoo": "y", "abar": 5}],
            "n": 5
        });
        let doc = doc.as_object().unwrap();
        let cases = [
            (json!({"tags": {"$size": 3}}), true),
            (json!({"tags": {"$size": 2}}), false),
            (json!({"composite_array": {"$size": 2}}), true),
            (json!({"tags": {"$all": ["a", "c"]}}), true),
            (json!({"tags": {"$all": ["a", "z"]}}), false),
            (json!({"tags": {"$all": []}}), false),
            // Cast with the element's type, as $in is.
            (json!({"scores": {"$all": ["82", 90]}}), true),
            (
                json!({"scores": {"$elemMatch": {"$gte": 80, "$lt": 85}}}),
                true,
            ),
            (json!({"scores": {"$elemMatch": {"$gt": 90}}}), false),
            (
                json!({"scores": {"$elemMatch": {"$not": {"$lt": 95}}}}),
                false,
            ),
            (
                json!({"tags": {"$elemMatch": {"$regex": "^B", "$options": "i"}}}),
                true,
            ),
            (json!({"scores": {"$elemMatch": {}}}), true),
            (
                json!({"composite_array": {"$elemMatch": {"abar": {"$gte": 3}, "afoo": "y"}}}),
                true,
            ),
            // Both conditions must hold on the same element.
            (
                json!({"composite_array": {"$elemMatch": {"abar": {"$gte": 3}, "afoo": "x"}}}),
                false,
            ),
            (
                json!({"composite_array": {"$elemMatch": {"$or": [{"afoo": "z"}, {"abar": 1}]}}}),
                true,
            ),
            (json!({"$nor": [{"tags": {"$size": 3}}]}), false),
            (json!({"tags": {"$not": {"$all": ["z"]}}}), true),
        ];
        for (f, want) in cases {
            let parsed = parse_mongo_filter(&m, &f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(matches(&parsed, doc), want, "{f}");
        }
        let parsed = parse_mongo_filter(
            &m,
            &json!({"composite_array": {"$elemMatch": {"abar": {"$gte": "3"}}}}),
        )
        .unwrap();
        assert_eq!(
            parsed,
            Filter::ElemMatch {
                path: Path::new("composite_array", Some(0)),
                inner: Box::new(Filter::cond(Path::plain("abar"), Op::Gte, json!(3))),
            }
        );
    }

    #[test]
    fn array_operators_reject_bad_input() {
        let m = model();
        let cases = [
            (json!({"n": {"$size": 1}}), "\"n\""),
            (json!({"foo": {"$all": ["a"]}}), "\"foo\""),
            (
                json!({"address": {"$elemMatch": {"city": "a"}}}),
                "\"address\"",
            ),
            (
                json!({"composite_array.abar": {"$size": 1}}),
                "composite_array.abar",
            ),
            (json!({"tags": {"$size": -1}}), "non-negative integer"),
            (json!({"tags": {"$size": 1.5}}), "non-negative integer"),
            (json!({"tags": {"$size": "2"}}), "non-negative integer"),
            (json!({"tags": {"$all": "a"}}), "takes an array"),
            (json!({"scores": {"$all": ["x"]}}), "not a valid"),
            (json!({"tags": {"$elemMatch": "a"}}), "takes an object"),
            (json!({"tags": {"$elemMatch": {"x": 1}}}), "operators only"),
            (
                json!({"composite_array": {"$elemMatch": {"nope": 1}}}),
                "unknown field",
            ),
            (
                json!({"composite_array": {"$elemMatch": {"inner": "a"}}}),
                "arrays inside $elemMatch",
            ),
            (
                json!({"composite_array": {"$elemMatch": {"_id": "a"}}}),
                "unknown field",
            ),
            (
                json!({"scores": {"$elemMatch": {"$size": 1}}}),
                "needs an array",
            ),
        ];
        for (f, want) in cases {
            match parse_mongo_filter(&m, &f) {
                Ok(parsed) => panic!("{f} parsed as {parsed:?}"),
                Err(e) => assert!(e.0.contains(want), "{f}: {}", e.0),
            }
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

//! Parsing of the list query string (`filter[f]=…`, `sort`, `limit`, `page`, `showDeleted`,
//! `count`, `fields`) into a typed request. Every path is checked against the model, and every
//! value is cast to the field's type, so a bad parameter is a 400 here and never reaches SQL.

use jxp_model::{FieldKind, Model, ScalarType, format_date, parse_date};
use serde_json::Value;

use crate::ast::{Filter, Op, Path, Sort, SortDir};
use crate::error::QueryError;

/// A list request as the query string describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListParams {
    pub filter: Filter,
    pub sort: Vec<Sort>,
    pub limit: Option<u64>,
    pub page: Option<u64>,
    pub show_deleted: bool,
    pub count: bool,
    pub fields: Option<Vec<String>>,
    /// Whether the client narrowed the query (any `filter[...]`).
    pub filtered: bool,
}

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

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
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
    regex::RegexBuilder::new(&pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|_| QueryError::new(format!("filter on \"{field}\": invalid regex \"{raw}\"")))?;
    Ok(pattern)
}

fn parse_filter_value(
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
            Op::In | Op::Nin => Value::Array(
                rest.split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| cast_str(field, scalar, s))
                    .collect::<Result<_, _>>()?,
            ),
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

fn parse_positive(name: &str, raw: &str) -> Result<u64, QueryError> {
    match raw.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(QueryError::new(format!(
            "\"{name}\" must be a positive whole number, got \"{raw}\""
        ))),
    }
}

fn truthy(raw: &str) -> bool {
    matches!(raw, "true" | "1" | "yes" | "")
}

/// Parses the query-string pairs of a list, count or CSV request.
pub fn parse_list_params(
    model: &Model,
    pairs: &[(String, String)],
) -> Result<ListParams, QueryError> {
    let mut out = ListParams::default();
    // filter[field] → the plain values (for `$in` when repeated) and operator filters.
    let mut plain: Vec<(String, Vec<String>)> = Vec::new();
    let mut filters = Filter::All;
    for (key, raw) in pairs {
        if let Some(inner) = key.strip_prefix("filter[") {
            let (field, list) = match inner.strip_suffix("][]") {
                Some(f) => (f, true),
                None => (
                    inner
                        .strip_suffix(']')
                        .ok_or_else(|| QueryError::new(format!("bad parameter \"{key}\"")))?,
                    false,
                ),
            };
            out.filtered = true;
            let (path, scalar) = resolve_path(model, field)?;
            if !list && raw.starts_with('$') {
                filters = filters.and(parse_filter_value(field, &path, scalar, raw)?);
            } else {
                match plain.iter_mut().find(|(f, _)| f == field) {
                    Some((_, values)) => values.push(raw.clone()),
                    None => plain.push((field.to_owned(), vec![raw.clone()])),
                }
            }
            continue;
        }
        if let Some(inner) = key.strip_prefix("sort[") {
            let field = inner
                .strip_suffix(']')
                .ok_or_else(|| QueryError::new(format!("bad parameter \"{key}\"")))?;
            let (path, _) = resolve_path(model, field)?;
            let dir = match raw.as_str() {
                "1" | "asc" | "ascending" => SortDir::Asc,
                "-1" | "desc" | "descending" => SortDir::Desc,
                _ => {
                    return Err(QueryError::new(format!(
                        "sort on \"{field}\" must be 1 or -1, got \"{raw}\""
                    )));
                }
            };
            out.sort.push(Sort { path, dir });
            continue;
        }
        match key.as_str() {
            "sort" => {
                for part in raw.split(',').filter(|p| !p.is_empty()) {
                    let (field, dir) = match part.strip_prefix('-') {
                        Some(f) => (f, SortDir::Desc),
                        None => (part.strip_prefix('+').unwrap_or(part), SortDir::Asc),
                    };
                    let (path, _) = resolve_path(model, field)?;
                    out.sort.push(Sort { path, dir });
                }
            }
            "limit" => out.limit = Some(parse_positive("limit", raw)?),
            "page" => out.page = Some(parse_positive("page", raw)?),
            "showDeleted" => out.show_deleted = truthy(raw),
            "count" => out.count = truthy(raw),
            "fields" => {
                let fields: Vec<String> = raw
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect();
                // Naming a private field here is harmless (it is never returned), so it is
                // not an error; an unknown one is.
                for f in &fields {
                    let known = model.field_at(f).is_some() || resolve_path(model, f).is_ok();
                    if !known {
                        return Err(QueryError::new(format!("unknown field \"{f}\"")));
                    }
                }
                out.fields = Some(fields);
            }
            _ => {}
        }
    }
    for (field, values) in plain {
        let (path, scalar) = resolve_path(model, &field)?;
        let cond = if let [one] = values.as_slice() {
            Filter::cond(path, Op::Eq, cast_str(&field, scalar, one)?)
        } else {
            let cast: Vec<Value> = values
                .iter()
                .map(|v| cast_str(&field, scalar, v))
                .collect::<Result<_, _>>()?;
            Filter::cond(path, Op::In, Value::Array(cast))
        };
        filters = filters.and(cond);
    }
    out.filter = filters;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jxp_model::{Field, FieldOptions, Model, ModelOptions, Perms};
    use serde_json::json;

    fn field(name: &str, kind: FieldKind) -> Field {
        Field {
            name: name.into(),
            kind,
            options: FieldOptions::default(),
        }
    }

    fn model() -> Model {
        Model {
            slug: "test".into(),
            name: "Test".into(),
            fields: vec![
                field("foo", FieldKind::Scalar(ScalarType::String)),
                field("n", FieldKind::Scalar(ScalarType::Number)),
                field("d", FieldKind::Scalar(ScalarType::Date)),
                field("b", FieldKind::Scalar(ScalarType::Boolean)),
                field(
                    "shmack",
                    FieldKind::Array(Box::new(field(
                        "shmack",
                        FieldKind::Scalar(ScalarType::String),
                    ))),
                ),
                field(
                    "address",
                    FieldKind::Object(vec![field("city", FieldKind::Scalar(ScalarType::String))]),
                ),
            ],
            perms: Perms::default(),
            options: ModelOptions::default(),
            builtin: false,
        }
    }

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_filters_with_casts() {
        let m = model();
        let p = parse_list_params(
            &m,
            &pairs(&[("filter[n]", "5"), ("filter[address.city]", "Durban")]),
        )
        .unwrap();
        assert_eq!(
            p.filter,
            Filter::And(vec![
                Filter::cond(Path::plain("n"), Op::Eq, json!(5)),
                Filter::cond(Path::plain("address.city"), Op::Eq, json!("Durban")),
            ])
        );
        assert!(p.filtered);
        let p = parse_list_params(
            &m,
            &pairs(&[
                ("filter[d]", "$gte:2020-01-01"),
                ("filter[d]", "$lt:2021-01-01"),
            ]),
        )
        .unwrap();
        assert_eq!(
            p.filter,
            Filter::And(vec![
                Filter::cond(Path::plain("d"), Op::Gte, json!("2020-01-01T00:00:00.000Z")),
                Filter::cond(Path::plain("d"), Op::Lt, json!("2021-01-01T00:00:00.000Z")),
            ])
        );
        let p =
            parse_list_params(&m, &pairs(&[("filter[foo]", "a"), ("filter[foo]", "b")])).unwrap();
        assert_eq!(
            p.filter,
            Filter::cond(Path::plain("foo"), Op::In, json!(["a", "b"]))
        );
        let p = parse_list_params(&m, &pairs(&[("filter[shmack]", "do")])).unwrap();
        assert_eq!(
            p.filter,
            Filter::cond(Path::new("shmack", Some(0)), Op::Eq, json!("do"))
        );
        let p = parse_list_params(&m, &pairs(&[("filter[foo]", "$regex:/^fo/i")])).unwrap();
        assert_eq!(
            p.filter,
            Filter::cond(Path::plain("foo"), Op::Regex, json!("(?i)^fo"))
        );
        let p = parse_list_params(
            &m,
            &pairs(&[("filter[b]", "true"), ("filter[n]", "$in:1,2")]),
        )
        .unwrap();
        assert_eq!(
            p.filter,
            Filter::And(vec![
                Filter::cond(Path::plain("n"), Op::In, json!([1, 2])),
                Filter::cond(Path::plain("b"), Op::Eq, json!(true)),
            ])
        );
    }

    #[test]
    fn rejects_bad_parameters() {
        let m = model();
        for q in [
            vec![("filter[nope]", "1")],
            vec![("filter[n]", "abc")],
            vec![("filter[d]", "$gte:not-a-date")],
            vec![("filter[foo]", "$bogus:1")],
            vec![("filter[foo]", "$regex:/(/")],
            vec![("limit", "0")],
            vec![("limit", "-3")],
            vec![("page", "x")],
            vec![("sort[nope]", "1")],
            vec![("sort[n]", "up")],
            vec![("sort", "-nope")],
            vec![("fields", "foo,nope")],
            vec![("filter[foo.bar]", "1")],
        ] {
            assert!(parse_list_params(&m, &pairs(&q)).is_err(), "{q:?}");
        }
    }

    #[test]
    fn parses_sort_paging_and_flags() {
        let m = model();
        let p = parse_list_params(
            &m,
            &pairs(&[
                ("sort", "-n,foo"),
                ("sort[createdAt]", "-1"),
                ("limit", "10"),
                ("page", "2"),
                ("showDeleted", "true"),
                ("count", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(p.sort.len(), 3);
        assert_eq!(p.sort[0].dir, SortDir::Desc);
        assert_eq!(p.sort[1].dir, SortDir::Asc);
        assert_eq!(
            (p.limit, p.page, p.show_deleted, p.count),
            (Some(10), Some(2), true, true)
        );
        assert!(!p.filtered);
    }
}

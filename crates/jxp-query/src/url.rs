//! Parsing of the list query string (`filter[f]=…`, `search[f]=…`, `search=…`, `sort`,
//! `limit`, `page`, `showDeleted`, `count`, `fields`, `populate…`, `autopopulate`) into a typed
//! request. Every path is checked against the model, and every value is cast to the field's
//! type, so a bad parameter is a 400 here and never reaches SQL.

use jxp_model::{
    Field, FieldKind, IndexKind, Model, ScalarType, format_date, is_ident, parse_date,
};
use serde_json::Value;

use crate::ast::{Filter, Op, Path, Sort, SortDir};
use crate::error::QueryError;
use crate::sql::fts5_query;

/// The size limit for compiled patterns, the same the store's REGEXP function uses, so a
/// pattern accepted here never fails there.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

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
    /// Whether the client narrowed the query (any `filter[...]`, `search[...]` or `search`).
    pub filtered: bool,
    /// `search[field]=text`: case-insensitive "contains" conditions. Kept apart from `filter`
    /// because `/count` ignores them, as JXP's does; a list ANDs them with the filter.
    pub search: Filter,
    /// `search=text`: what to look for in the model's full-text index (checked to exist and
    /// to hold at least one word). A list sorts by relevance first and adds `score`.
    pub text: Option<String>,
    /// Link fields whose documents are joined into each result (`populate…`, `autopopulate`).
    pub populate: Vec<Populate>,
}

/// One link field to populate.
#[derive(Debug, Clone, PartialEq)]
pub struct Populate {
    /// The top-level link field, holding one id or an array of ids.
    pub field: String,
    /// The linked model's display name, as `link` names it.
    pub link: String,
    /// The key the linked document(s) appear under in the result.
    pub key: String,
    /// Whether the field holds an array of ids (then the key holds an array of documents).
    pub many: bool,
    /// `populate[key]=f1,f2`: only these fields of each linked document (with `_id`); the
    /// core checks them against the linked model.
    pub fields: Option<Vec<String>>,
}

/// The key a link field's documents appear under: `map_to` if the field sets one, else the
/// linked model's name in lower case, as JXP names its populate virtuals (`link_id` with
/// `link = "Link"` → `link`).
fn populate_key(field: &Field) -> Option<String> {
    let link = field.options.link.as_deref()?;
    Some(
        field
            .options
            .map_to
            .clone()
            .unwrap_or_else(|| link.to_ascii_lowercase()),
    )
}

/// The system link fields every document has, as JXP's schema declares them: the creator and
/// the last updater, both users, shown as `_owner` and `_updated_by`.
const SYSTEM_LINKS: &[(&str, &str)] = &[("_owner_id", "_owner"), ("_updated_by_id", "_updated_by")];

/// The populatable link fields of a model, in field order and then the system links, first of
/// each key only (two fields that would show under one key cannot both be populated). Private
/// link fields are left out: populating one would reveal the id it hides.
fn link_fields(model: &Model) -> Vec<Populate> {
    let mut out: Vec<Populate> = Vec::new();
    for field in &model.fields {
        if field.is_private() {
            continue;
        }
        let (Some(link), Some(key)) = (field.options.link.clone(), populate_key(field)) else {
            continue;
        };
        if out.iter().any(|p| p.key == key) {
            continue;
        }
        out.push(Populate {
            field: field.name.clone(),
            link,
            key,
            many: field.kind.is_array(),
            fields: None,
        });
    }
    for (field, key) in SYSTEM_LINKS {
        if model.field(field).is_none() && !out.iter().any(|p| p.key == *key) {
            out.push(Populate {
                field: (*field).to_owned(),
                link: "User".to_owned(),
                key: (*key).to_owned(),
                many: false,
                fields: None,
            });
        }
    }
    out
}

/// Adds a populate request for `name` (the result key, or the link field's own name).
fn add_populate(
    model: &Model,
    out: &mut Vec<Populate>,
    name: &str,
    fields: Option<Vec<String>>,
) -> Result<(), QueryError> {
    let candidates = link_fields(model);
    let found = candidates
        .iter()
        .find(|p| p.key == name)
        .or_else(|| candidates.iter().find(|p| p.field == name))
        .ok_or_else(|| {
            QueryError::new(format!(
                "cannot populate \"{name}\": {} has no link field by that name",
                model.slug
            ))
        })?;
    match out.iter_mut().find(|p| p.key == found.key) {
        // Asked twice: a projection given either time applies.
        Some(existing) => {
            if fields.is_some() {
                existing.fields = fields;
            }
        }
        None => out.push(Populate {
            fields,
            ..found.clone()
        }),
    }
    Ok(())
}

/// Names in a `populate` or `fields` value: comma- or space-separated.
fn name_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

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
fn search_condition(model: &Model, field: &str, raw: &str) -> Result<Filter, QueryError> {
    let (path, scalar) = resolve_path(model, field)?;
    if scalar != Some(ScalarType::String) {
        return Err(QueryError::new(format!(
            "search[{field}]: only String fields can be searched"
        )));
    }
    let pattern = format!("(?i){}", regex::escape(raw));
    regex::RegexBuilder::new(&pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|_| QueryError::new(format!("search[{field}]: the search text is too long")))?;
    Ok(Filter::cond(path, Op::Regex, Value::String(pattern)))
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
        .size_limit(REGEX_SIZE_LIMIT)
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
    let mut search = Filter::All;
    let mut autopopulate = false;
    for (key, raw) in pairs {
        if let Some(inner) = key.strip_prefix("search[") {
            let field = inner
                .strip_suffix("][]")
                .or_else(|| inner.strip_suffix(']'))
                .ok_or_else(|| QueryError::new(format!("bad parameter \"{key}\"")))?;
            out.filtered = true;
            search = search.and(search_condition(model, field, raw)?);
            continue;
        }
        if let Some(inner) = key.strip_prefix("populate[") {
            let name = inner
                .strip_suffix(']')
                .ok_or_else(|| QueryError::new(format!("bad parameter \"{key}\"")))?;
            if name.is_empty() {
                // `populate[]=a`: a list entry, not a projection.
                for n in name_list(raw) {
                    add_populate(model, &mut out.populate, n, None)?;
                }
            } else {
                let fields: Vec<String> = name_list(raw).map(str::to_owned).collect();
                let fields = (!fields.is_empty()).then_some(fields);
                add_populate(model, &mut out.populate, name, fields)?;
            }
            continue;
        }
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
            "search" => {
                if !has_text_index(model) {
                    return Err(QueryError::new(format!(
                        "model {} has no full-text index",
                        model.slug
                    )));
                }
                if fts5_query(raw).is_none() {
                    return Err(QueryError::new(
                        "search needs at least one word to look for",
                    ));
                }
                out.filtered = true;
                out.text = Some(raw.clone());
            }
            "populate" => {
                for n in name_list(raw) {
                    add_populate(model, &mut out.populate, n, None)?;
                }
            }
            "autopopulate" => autopopulate = truthy(raw),
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
    out.search = search;
    if autopopulate {
        for p in link_fields(model) {
            if !out.populate.iter().any(|q| q.key == p.key) {
                out.populate.push(p);
            }
        }
    }
    Ok(out)
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
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

    fn with(mut f: Field, set: impl FnOnce(&mut FieldOptions)) -> Field {
        set(&mut f.options);
        f
    }

    fn link_field(name: &str, link: &str, map_to: Option<&str>) -> Field {
        with(field(name, FieldKind::Scalar(ScalarType::ObjectId)), |o| {
            o.link = Some(link.into());
            o.map_to = map_to.map(str::to_owned);
        })
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
                with(
                    field("fulltext", FieldKind::Scalar(ScalarType::String)),
                    |o| {
                        o.index = IndexKind::Text;
                    },
                ),
                link_field("link_id", "Link", None),
                link_field("other_link_id", "Link", Some("other_link")),
                Field {
                    kind: FieldKind::Array(Box::new(link_field(
                        "array_link_id",
                        "Link",
                        Some("array_link"),
                    ))),
                    ..link_field("array_link_id", "Link", Some("array_link"))
                },
                with(link_field("hidden_id", "User", None), |o| o.private = true),
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

    #[test]
    fn parses_search_and_full_text() {
        let m = model();
        let p = parse_list_params(
            &m,
            &pairs(&[
                ("search[foo]", "a.b"),
                ("search[shmack]", "Do"),
                ("filter[n]", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(
            p.search,
            Filter::And(vec![
                Filter::cond(Path::plain("foo"), Op::Regex, json!(r"(?i)a\.b")),
                Filter::cond(Path::new("shmack", Some(0)), Op::Regex, json!("(?i)Do")),
            ])
        );
        assert_eq!(p.filter, Filter::cond(Path::plain("n"), Op::Eq, json!(1)));
        assert!(p.filtered);
        let p = parse_list_params(&m, &pairs(&[("search", "kubla khan")])).unwrap();
        assert_eq!(p.text.as_deref(), Some("kubla khan"));
        assert!(p.filtered);
        for q in [
            vec![("search[n]", "1")],
            vec![("search[nope]", "x")],
            vec![("search[password]", "x")],
            vec![("search", "")],
            vec![("search", "   ")],
            vec![("search[foo", "x")],
        ] {
            assert!(parse_list_params(&m, &pairs(&q)).is_err(), "{q:?}");
        }
        let mut no_text = model();
        no_text.fields.retain(|f| f.name != "fulltext");
        let err = parse_list_params(&no_text, &pairs(&[("search", "x")])).unwrap_err();
        assert_eq!(err.0, "model test has no full-text index");
    }

    #[test]
    fn parses_populate() {
        let m = model();
        let keys = |p: &ListParams| -> Vec<(String, String, bool, Option<Vec<String>>)> {
            p.populate
                .iter()
                .map(|x| (x.field.clone(), x.key.clone(), x.many, x.fields.clone()))
                .collect()
        };
        let p = parse_list_params(&m, &pairs(&[("populate", "link")])).unwrap();
        assert_eq!(
            keys(&p),
            vec![("link_id".into(), "link".into(), false, None)]
        );
        let p = parse_list_params(
            &m,
            &pairs(&[
                ("populate[]", "other_link"),
                ("populate[]", "array_link_id"),
            ]),
        )
        .unwrap();
        assert_eq!(
            keys(&p),
            vec![
                ("other_link_id".into(), "other_link".into(), false, None),
                ("array_link_id".into(), "array_link".into(), true, None),
            ]
        );
        let p = parse_list_params(
            &m,
            &pairs(&[("populate[link]", "name,x"), ("autopopulate", "1")]),
        )
        .unwrap();
        assert_eq!(
            keys(&p),
            vec![
                (
                    "link_id".into(),
                    "link".into(),
                    false,
                    Some(vec!["name".into(), "x".into()])
                ),
                ("other_link_id".into(), "other_link".into(), false, None),
                ("array_link_id".into(), "array_link".into(), true, None),
                ("_owner_id".into(), "_owner".into(), false, None),
                ("_updated_by_id".into(), "_updated_by".into(), false, None),
            ]
        );
        assert_eq!(p.populate[0].link, "Link");
        // The system links populate by key or field name, as JXP's `_owner`/`_updated_by`.
        let p = parse_list_params(
            &m,
            &pairs(&[("populate", "_owner"), ("populate[_updated_by_id]", "name")]),
        )
        .unwrap();
        assert_eq!(
            keys(&p),
            vec![
                ("_owner_id".into(), "_owner".into(), false, None),
                (
                    "_updated_by_id".into(),
                    "_updated_by".into(),
                    false,
                    Some(vec!["name".into()])
                ),
            ]
        );
        assert_eq!(p.populate[0].link, "User");
        for q in [
            vec![("populate", "nope")],
            vec![("populate", "foo")],
            vec![("populate", "hidden_id")],
            vec![("populate[user]", "name")],
        ] {
            assert!(parse_list_params(&m, &pairs(&q)).is_err(), "{q:?}");
        }
    }
}

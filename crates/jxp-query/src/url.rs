//! Parsing of the list query string (`filter[f]=…`, `search[f]=…`, `search=…`, `sort`,
//! `limit`, `page`, `showDeleted`, `count`, `fields`, `populate…`, `autopopulate`) into a typed
//! request. Every path is checked against the model, and every value is cast to the field's
//! type, so a bad parameter is a 400 here and never reaches SQL. This file reads the keys and
//! the sort, paging and flag parameters; `filter` the conditions, `populate` the link fields,
//! `cast` paths and values.

mod cast;
mod filter;
mod populate;

use jxp_model::Model;

use crate::ast::{Filter, Sort, SortDir, check_client_filters};
use crate::error::QueryError;
use crate::sql::fts5_query;
use filter::{operator_condition, search_condition, values_condition};
use populate::{add_populate, link_fields};

pub use cast::{cast_str, regex_pattern, resolve_path};
pub use filter::has_text_index;
pub use populate::Populate;

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

/// Names in a `populate` or `fields` value: comma- or space-separated.
fn name_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
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

/// The name inside a `key[name]` parameter, given what follows `key[`; `list` also accepts
/// `key[name][]` and says which form it was.
fn bracketed<'a>(key: &str, inner: &'a str, list: bool) -> Result<(&'a str, bool), QueryError> {
    if list && let Some(name) = inner.strip_suffix("][]") {
        return Ok((name, true));
    }
    inner
        .strip_suffix(']')
        .map(|name| (name, false))
        .ok_or_else(|| QueryError::new(format!("bad parameter \"{key}\"")))
}

/// `sort[field]=1|-1`.
fn sort_entry(model: &Model, field: &str, raw: &str) -> Result<Sort, QueryError> {
    let (path, _) = resolve_path(model, field)?;
    let dir = match raw {
        "1" | "asc" | "ascending" => SortDir::Asc,
        "-1" | "desc" | "descending" => SortDir::Desc,
        _ => {
            return Err(QueryError::new(format!(
                "sort on \"{field}\" must be 1 or -1, got \"{raw}\""
            )));
        }
    };
    Ok(Sort { path, dir })
}

/// `sort=-a,b`: fields in order, a leading `-` for descending.
fn sort_list(model: &Model, raw: &str) -> Result<Vec<Sort>, QueryError> {
    raw.split(',')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (field, dir) = match part.strip_prefix('-') {
                Some(f) => (f, SortDir::Desc),
                None => (part.strip_prefix('+').unwrap_or(part), SortDir::Asc),
            };
            let (path, _) = resolve_path(model, field)?;
            Ok(Sort { path, dir })
        })
        .collect()
}

/// `search=text`: only on a model with a full-text index, and only with a word to look for.
fn full_text(model: &Model, raw: &str) -> Result<String, QueryError> {
    if !has_text_index(model) {
        return Err(QueryError::new(format!(
            "model {} has no full-text index",
            model.slug
        )));
    }
    // A NUL byte ends a C string: FTS5 and PostgreSQL's text both refuse it.
    if raw.contains('\0') {
        return Err(QueryError::new(
            "search text must not contain a NUL character",
        ));
    }
    if fts5_query(raw).is_none() {
        return Err(QueryError::new(
            "search needs at least one word to look for",
        ));
    }
    Ok(raw.to_owned())
}

/// `fields=a,b`: the fields to return. Naming a private field here is harmless (it is never
/// returned), so it is not an error; an unknown one is.
fn field_list(model: &Model, raw: &str) -> Result<Vec<String>, QueryError> {
    let fields: Vec<String> = raw
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    for f in &fields {
        let known = model.field_at(f).is_some() || resolve_path(model, f).is_ok();
        if !known {
            return Err(QueryError::new(format!("unknown field \"{f}\"")));
        }
    }
    Ok(fields)
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
            let (field, _) = bracketed(key, inner, true)?;
            out.filtered = true;
            search = search.and(search_condition(model, field, raw)?);
            continue;
        }
        if let Some(inner) = key.strip_prefix("populate[") {
            let (name, _) = bracketed(key, inner, false)?;
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
            let (field, list) = bracketed(key, inner, true)?;
            out.filtered = true;
            let (path, scalar) = resolve_path(model, field)?;
            if !list && raw.starts_with('$') {
                filters = filters.and(operator_condition(field, &path, scalar, raw)?);
            } else {
                match plain.iter_mut().find(|(f, _)| f == field) {
                    Some((_, values)) => values.push(raw.clone()),
                    None => plain.push((field.to_owned(), vec![raw.clone()])),
                }
            }
            continue;
        }
        if let Some(inner) = key.strip_prefix("sort[") {
            let (field, _) = bracketed(key, inner, false)?;
            out.sort.push(sort_entry(model, field, raw)?);
            continue;
        }
        match key.as_str() {
            "sort" => out.sort.extend(sort_list(model, raw)?),
            "limit" => out.limit = Some(parse_positive("limit", raw)?),
            "page" => out.page = Some(parse_positive("page", raw)?),
            "showDeleted" => out.show_deleted = truthy(raw),
            "search" => {
                out.text = Some(full_text(model, raw)?);
                out.filtered = true;
            }
            "populate" => {
                for n in name_list(raw) {
                    add_populate(model, &mut out.populate, n, None)?;
                }
            }
            "autopopulate" => autopopulate = truthy(raw),
            "count" => out.count = truthy(raw),
            "fields" => out.fields = Some(field_list(model, raw)?),
            _ => {}
        }
    }
    for (field, values) in plain {
        filters = filters.and(values_condition(model, &field, &values)?);
    }
    check_client_filters(&[&filters, &search])?;
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
mod tests;

//! `$lookup`: the join spec, the local values to fetch foreign documents by, and the join
//! itself over foreign documents the caller fetched under its own permission rules.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::values::{canon, field_path, field_values, set_path};
use super::{Doc, R, too_many};
use crate::budget::{Budget, doc_size};
use crate::error::RunError;
/// `$lookup: {from, localField, foreignField, as}`: the names as the client wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub from: String,
    pub local_field: String,
    pub foreign_field: String,
    pub as_field: String,
}

pub(super) fn parse_lookup(v: &Value) -> R<Lookup> {
    let Value::Object(o) = v else {
        return Err(format!(
            "takes {{from, localField, foreignField, as}}, got {v}"
        ));
    };
    if o.contains_key("pipeline") || o.contains_key("let") {
        return Err("pipeline and let are not supported; use localField and foreignField".into());
    }
    if let Some(k) = o
        .keys()
        .find(|k| !matches!(k.as_str(), "from" | "localField" | "foreignField" | "as"))
    {
        return Err(format!("unknown option \"{k}\""));
    }
    let text = |k: &str| -> R<String> {
        match o.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(format!("needs \"{k}\" as a string")),
        }
    };
    let lookup = Lookup {
        from: text("from")?,
        local_field: text("localField")?,
        foreign_field: text("foreignField")?,
        as_field: text("as")?,
    };
    for f in [&lookup.local_field, &lookup.foreign_field, &lookup.as_field] {
        field_path(f)?;
    }
    Ok(lookup)
}

/// The values a join key reaches in one document: the elements of an array, each value of
/// an array of sub-documents, and null when the field is missing (which joins with foreign
/// documents that lack the field too, as in MongoDB).
fn join_values(doc: &Doc, path: &[String]) -> Vec<Value> {
    let found = field_values(doc, path);
    if found.is_empty() {
        return vec![Value::Null];
    }
    let mut out = Vec::new();
    for v in found {
        match v {
            Value::Array(items) => out.extend(items.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    out
}

/// The distinct values of `localField` over `docs`, to fetch only the foreign documents that
/// can join. Contains `null` when some document lacks the field.
pub fn lookup_values(spec: &Lookup, docs: &[Doc]) -> Vec<Value> {
    let path: Vec<String> = spec.local_field.split('.').map(str::to_owned).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for d in docs {
        for v in join_values(d, &path) {
            if seen.insert(canon(&v)) {
                out.push(v);
            }
        }
    }
    out
}

/// `$lookup`: sets `as` on each document to the array of `foreign` documents whose
/// `foreignField` equals its `localField`. `max_docs` bounds the joined documents in total;
/// `budget` is charged for every joined copy before it is made, so a join that multiplies
/// large documents stops at the budget instead of after building them.
pub fn apply_lookup(
    spec: &Lookup,
    docs: Vec<Doc>,
    foreign: &[Doc],
    max_docs: usize,
    budget: &mut Budget,
) -> Result<Vec<Doc>, RunError> {
    let split = |s: &str| -> Vec<String> { s.split('.').map(str::to_owned).collect() };
    let (local, remote, as_path) = (
        split(&spec.local_field),
        split(&spec.foreign_field),
        split(&spec.as_field),
    );
    let sizes: Vec<usize> = foreign.iter().map(doc_size).collect();
    let mut index: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, f) in foreign.iter().enumerate() {
        let mut seen = HashSet::new();
        for v in join_values(f, &remote) {
            let k = canon(&v);
            if seen.insert(k.clone()) {
                index.entry(k).or_default().push(i);
            }
        }
    }
    let mut joined_total = 0usize;
    let mut out = Vec::with_capacity(docs.len());
    for mut doc in docs {
        let mut hits: Vec<usize> = join_values(&doc, &local)
            .iter()
            .filter_map(|v| index.get(&canon(v)))
            .flatten()
            .copied()
            .collect();
        hits.sort_unstable();
        hits.dedup();
        joined_total += hits.len();
        if joined_total > max_docs {
            return Err(too_many("$lookup", max_docs).into());
        }
        budget.charge(hits.iter().filter_map(|i| sizes.get(*i)).sum())?;
        let joined = hits
            .iter()
            .filter_map(|i| foreign.get(*i))
            .map(|d| Value::Object(d.clone()))
            .collect();
        set_path(&mut doc, &as_path, Value::Array(joined));
        out.push(doc);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::docs;
    use super::*;
    use serde_json::json;
    #[test]
    fn lookup_values_are_distinct_and_flattened() {
        let spec = Lookup {
            from: "x".into(),
            local_field: "tags".into(),
            foreign_field: "t".into(),
            as_field: "j".into(),
        };
        assert_eq!(
            lookup_values(&spec, &docs()),
            vec![json!("red"), json!("sweet"), json!("yellow"), json!(null)]
        );
    }
}

//! How a stored document is shown: its public view (private fields removed, and
//! `private = "owner"` fields too unless the reader is an admin or the document's owner),
//! narrowed to the fields a reader asked for. Lists, single reads, populated links,
//! aggregations, write answers and events all show documents so; and since a filter or a sort
//! on a field would reveal it one probe at a time, lists refuse those on fields the reader
//! cannot see.

use jxp_model::{Document, Model, into_view, view_for};
use jxp_query::{Filter, ListParams};
use serde_json::Value;

use crate::error::CoreError;
use crate::identity::Identity;

/// Whether `who` sees the `private = "owner"` fields of `doc`: admins and its owner do (a
/// user owns their own record). Always true for a model without such fields.
pub(crate) fn sees_owner_fields(model: &Model, who: &Identity, doc: &Document) -> bool {
    owner_fields_visible(model, who, doc.get("_owner_id").and_then(Value::as_str))
}

/// [`sees_owner_fields`] of a document whose `_owner_id` is `owner`.
pub(crate) fn owner_fields_visible(model: &Model, who: &Identity, owner: Option<&str>) -> bool {
    !model.has_owner_only() || is_owner_or_admin(who, owner)
}

/// Whether `who` is an admin or the document's owner `owner`: who sees `private = "owner"`
/// fields, on a model that has them.
pub(crate) fn is_owner_or_admin(who: &Identity, owner: Option<&str>) -> bool {
    who.is_admin() || (owner.is_some() && owner == who.user_id())
}

/// The public view of `doc` as `who` may see it.
pub(crate) fn view_as(model: &Model, who: &Identity, doc: &Document) -> Document {
    view_for(model, doc, sees_owner_fields(model, who, doc))
}

/// [`view_as`] of a document the caller no longer needs, without copying it.
pub(crate) fn into_view_as(model: &Model, who: &Identity, doc: Document) -> Document {
    let full = sees_owner_fields(model, who, &doc);
    into_view(model, doc, full)
}

/// The view `who` may see, narrowed to `fields` (plus `_id` and `id`) when asked.
pub(crate) fn project(
    model: &Model,
    who: &Identity,
    doc: &Document,
    fields: Option<&[String]>,
) -> Document {
    let view = view_as(model, who, doc);
    let Some(fields) = fields else {
        return view;
    };
    let mut out = Document::new();
    for key in ["_id", "id"] {
        if let Some(v) = view.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    for f in fields {
        let top = f.split('.').next().unwrap_or(f);
        if let Some(v) = view.get(top) {
            out.insert(top.to_owned(), v.clone());
        }
    }
    out
}

/// Whether `who` may filter or sort on every field of every document: false for a reader
/// who is not an admin, on a model with `private = "owner"` fields.
pub(crate) fn may_probe_owner_fields(model: &Model, who: &Identity) -> bool {
    !model.has_owner_only() || who.is_admin()
}

/// The `private = "owner"` field `path` starts at, if any.
pub(crate) fn owner_only_at<'m>(model: &'m Model, dotted: &str) -> Option<&'m str> {
    let top = dotted.split('.').next().unwrap_or(dotted);
    model
        .field(top)
        .filter(|f| f.is_owner_only())
        .map(|f| f.name.as_str())
}

/// The 403 for a list, count or `/query` that filters or sorts on a `private = "owner"` field
/// the caller may not see on every document: answering it would tell whose value is what.
pub(crate) fn check_probes(
    model: &Model,
    who: &Identity,
    params: &ListParams,
) -> Result<(), CoreError> {
    if may_probe_owner_fields(model, who) {
        return Ok(());
    }
    let hidden = [&params.filter, &params.search]
        .into_iter()
        .find_map(|f| filter_touches(model, f))
        .or_else(|| {
            params
                .sort
                .iter()
                .find_map(|s| owner_only_at(model, &s.path.dotted()))
        });
    match hidden {
        Some(name) => Err(probe_refused(model, name)),
        None => Ok(()),
    }
}

/// The 403 for a filter (a bulk write's, a subscription's) on a `private = "owner"` field
/// the caller may not see on every document.
pub(crate) fn check_filter(
    model: &Model,
    who: &Identity,
    filter: &Filter,
) -> Result<(), CoreError> {
    match filter_touches(model, filter) {
        Some(name) if !may_probe_owner_fields(model, who) => Err(probe_refused(model, name)),
        _ => Ok(()),
    }
}

fn probe_refused(model: &Model, name: &str) -> CoreError {
    CoreError::Forbidden(format!(
        "only admins may filter or sort {} by {name}",
        model.slug
    ))
}

/// The first `private = "owner"` field a filter compares, if any.
fn filter_touches<'m>(model: &'m Model, filter: &Filter) -> Option<&'m str> {
    match filter {
        Filter::All => None,
        Filter::And(parts) | Filter::Or(parts) | Filter::Nor(parts) => {
            parts.iter().find_map(|f| filter_touches(model, f))
        }
        Filter::Not(inner) => filter_touches(model, inner),
        Filter::Cond(c) => owner_only_at(model, &c.path.dotted()),
        Filter::ElemMatch { path, .. } => owner_only_at(model, &path.dotted()),
    }
}

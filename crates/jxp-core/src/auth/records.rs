//! The auth records the server writes itself (tokens, refresh tokens, API keys, group
//! records): how one is made and how its fields are looked up.

use jxp_model::{Document, ObjectId, now_iso};
use jxp_query::{Filter, Op, Path};
use serde_json::Value;

/// `field = value` on a system-written model.
pub(crate) fn eq(field: &str, value: &str) -> Filter {
    Filter::cond(Path::plain(field), Op::Eq, Value::String(value.to_owned()))
}

/// A document written by the server itself, owned by `owner`.
pub(crate) fn system_doc(owner: &str, fields: Document) -> Document {
    let now = now_iso();
    let mut doc = Document::with_capacity(fields.len() + 7);
    doc.insert("_id".into(), Value::String(ObjectId::new().to_string()));
    doc.extend(fields);
    doc.insert("_owner_id".into(), Value::String(owner.to_owned()));
    doc.insert("_deleted".into(), Value::Bool(false));
    doc.insert("createdAt".into(), Value::String(now.clone()));
    doc.insert("updatedAt".into(), Value::String(now));
    doc.insert("__v".into(), Value::from(0));
    doc
}

/// A text field of a record, empty when missing.
pub(crate) fn str_of<'a>(doc: &'a Document, key: &str) -> &'a str {
    doc.get(key).and_then(Value::as_str).unwrap_or_default()
}

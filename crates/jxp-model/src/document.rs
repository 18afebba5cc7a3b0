//! Documents as JSON objects, the fields every document carries, and the public view that
//! strips private fields (and, from other people's documents, `private = "owner"` ones).

use serde_json::{Map, Value};

use crate::schema::{Field, FieldKind, Model};

/// A document: a JSON object with the model's fields plus the system fields.
pub type Document = Map<String, Value>;

/// Fields the server maintains on every document; clients cannot set them (except `_deleted`
/// through an undelete).
pub const SYSTEM_FIELDS: &[&str] = &[
    "_id",
    "id",
    "_owner_id",
    "_updated_by_id",
    "_deleted",
    "createdAt",
    "updatedAt",
    "__v",
];

/// Now as ISO 8601 UTC with milliseconds and `Z`, the one format dates are stored in.
pub fn now_iso() -> String {
    crate::validate::format_date(chrono::Utc::now())
}

/// The document as the API returns it: private fields (at any depth) removed, `id` set to
/// `_id`.
pub fn public_view(model: &Model, doc: &Document) -> Document {
    into_public_view(model, doc.clone())
}

/// [`public_view`] of a document the caller no longer needs, without copying it.
pub fn into_public_view(model: &Model, doc: Document) -> Document {
    into_view(model, doc, true)
}

/// The public view as a reader sees it: with `owner_fields` false (the reader is neither an
/// admin nor the document's owner), `private = "owner"` fields are removed too.
pub fn view_for(model: &Model, doc: &Document, owner_fields: bool) -> Document {
    into_view(model, doc.clone(), owner_fields)
}

/// [`view_for`] of a document the caller no longer needs, without copying it.
pub fn into_view(model: &Model, mut doc: Document, owner_fields: bool) -> Document {
    strip_private(&model.fields, &mut doc);
    if !owner_fields {
        strip_owner_only(model, &mut doc);
    }
    if let Some(id) = doc.get("_id").cloned() {
        doc.insert("id".to_owned(), id);
    }
    doc
}

/// Removes the `private = "owner"` fields, which are top-level only.
pub fn strip_owner_only(model: &Model, doc: &mut Document) {
    for field in model.fields.iter().filter(|f| f.is_owner_only()) {
        doc.remove(&field.name);
    }
}

fn strip_private(fields: &[Field], obj: &mut Map<String, Value>) {
    for field in fields {
        if field.is_private() {
            obj.remove(&field.name);
            continue;
        }
        let Some(value) = obj.get_mut(&field.name) else {
            continue;
        };
        match (&field.kind, value) {
            (FieldKind::Object(children), Value::Object(inner)) => strip_private(children, inner),
            (FieldKind::Array(elem), Value::Array(items)) => {
                if let FieldKind::Object(children) = &elem.kind {
                    for item in items {
                        if let Value::Object(inner) = item {
                            strip_private(children, inner);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

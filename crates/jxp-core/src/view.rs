//! How a stored document is shown: its public view (private fields removed), narrowed to the
//! fields a reader asked for. Lists, single reads and populated links all show documents so.

use jxp_model::{Document, Model, public_view};

/// The public view, narrowed to `fields` (plus `_id` and `id`) when asked.
pub(crate) fn project(model: &Model, doc: &Document, fields: Option<&[String]>) -> Document {
    let view = public_view(model, doc);
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

//! A document as a row, the same on both databases: the system fields that have columns of
//! their own beside the document, a document read back (with its search score), and a
//! change-log row read back as a `Change`.

use std::sync::Arc;

use serde_json::Value;

use crate::Document;
use crate::change::{Change, ChangeOp};
use crate::error::StoreError;

/// The columns of a model table filled from the document's system fields.
pub(crate) struct Columns<'a> {
    pub owner: Option<&'a str>,
    pub deleted: bool,
    pub created: Option<&'a str>,
    pub updated: Option<&'a str>,
}

impl<'a> Columns<'a> {
    pub fn of(doc: &'a Document) -> Self {
        Columns {
            owner: str_field(doc, "_owner_id"),
            deleted: doc
                .get("_deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            created: str_field(doc, "createdAt"),
            updated: str_field(doc, "updatedAt"),
        }
    }
}

pub(crate) fn str_field<'a>(doc: &'a Document, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

/// The `_id` of a document to insert; the core always sets one.
pub(crate) fn doc_id(model: &str, doc: &Document) -> Result<String, StoreError> {
    str_field(doc, "_id")
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Database(format!("insert into {model} without _id")))
}

pub(crate) fn parse_doc(text: &str) -> Result<Document, StoreError> {
    Ok(serde_json::from_str(text)?)
}

/// A found document, with its relevance as `score` when a text search ranked it.
pub(crate) fn found(text: &str, score: Option<f64>) -> Result<Document, StoreError> {
    let mut doc = parse_doc(text)?;
    if let Some(n) = score.and_then(serde_json::Number::from_f64) {
        doc.insert("score".to_owned(), Value::Number(n));
    }
    Ok(doc)
}

/// A seq as the databases store it (a signed 64-bit integer).
pub(crate) fn seq_to_db(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A seq as stored, back; a negative one (never written) reads as 0.
pub(crate) fn seq_from_db(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or_default()
}

/// A row of `jxp_changes`, as read back.
pub(crate) struct LoggedRow {
    pub seq: i64,
    pub op: String,
    pub id: String,
    pub doc: String,
    pub actor: Option<String>,
    pub silent: bool,
}

impl LoggedRow {
    /// The change the row records of `model`.
    pub fn into_change(self, model: &str) -> Result<Arc<Change>, StoreError> {
        let op = ChangeOp::parse(&self.op)
            .ok_or_else(|| StoreError::Database(format!("unknown op {} in change log", self.op)))?;
        Ok(Arc::new(Change {
            model: model.to_owned(),
            seq: seq_from_db(self.seq),
            op,
            id: self.id,
            doc: Arc::new(parse_doc(&self.doc)?),
            prev: None,
            actor: self.actor,
            silent: self.silent,
        }))
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(v: Value) -> Document {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn columns_come_from_the_system_fields() {
        let d = doc(json!({"_id": "a", "_owner_id": "u", "_deleted": true,
                           "createdAt": "c", "updatedAt": "u2"}));
        let c = Columns::of(&d);
        assert_eq!(
            (c.owner, c.deleted, c.created, c.updated),
            (Some("u"), true, Some("c"), Some("u2"))
        );
        let bare = doc(json!({"_deleted": "yes"}));
        let c = Columns::of(&bare);
        assert_eq!((c.owner, c.deleted, c.created), (None, false, None));
        assert_eq!(doc_id("m", &d), Ok("a".to_owned()));
        assert!(doc_id("m", &bare).is_err());
    }

    #[test]
    fn a_score_is_added_only_when_there_is_one() {
        assert_eq!(
            found(r#"{"a":1}"#, Some(1.5)),
            Ok(doc(json!({"a": 1, "score": 1.5})))
        );
        assert_eq!(found(r#"{"a":1}"#, None), Ok(doc(json!({"a": 1}))));
        assert!(found("not json", None).is_err());
    }

    #[test]
    fn a_logged_row_reads_back_as_its_change() {
        let row = |op: &str| LoggedRow {
            seq: 7,
            op: op.to_owned(),
            id: "a".into(),
            doc: r#"{"_id":"a"}"#.into(),
            actor: Some("u".into()),
            silent: true,
        };
        let change = row("update").into_change("m").unwrap();
        assert_eq!(
            (change.model.as_str(), change.seq, change.op, change.silent),
            ("m", 7, ChangeOp::Update, true)
        );
        assert!(row("rename").into_change("m").is_err());
        assert_eq!(seq_from_db(-1), 0);
        assert_eq!(seq_to_db(u64::MAX), i64::MAX);
    }
}

//! Bulk import: documents of one model that the core has already checked and given their
//! system fields, written in one transaction, all or none. The core feeds them in batches
//! through a channel and ends with [`ImportStep::Commit`]; a channel that closes without it
//! (the feeder found a bad line, or failed) rolls everything back.
//!
//! The change log sees an import as that many creates: the model's `seq` moves on by the
//! number of documents, and the log keeps the rows of the last ones, as many as its retention
//! (exactly what the log would hold had they been written one by one and then trimmed), so a
//! client that resumes from before the import is told to resync.

use tokio::sync::mpsc;

use crate::Document;
use crate::error::StoreError;
use crate::row::{Columns, doc_id};

/// One document to import, turned into its columns and text off the writer, so that the
/// writing connection only writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportDoc {
    pub(crate) id: String,
    /// The document's JSON text, exactly what a write stores.
    pub(crate) text: String,
    /// The text PostgreSQL builds `jsonb` from when it differs from `text`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) jsonb: Option<String>,
    pub(crate) owner: Option<String>,
    pub(crate) deleted: bool,
    pub(crate) created: Option<String>,
    pub(crate) updated: Option<String>,
}

impl ImportDoc {
    /// A document as the write path stores it (`_id` and the other system fields set).
    pub fn new(model: &str, doc: &Document) -> Result<Self, StoreError> {
        let id = doc_id(model, doc)?;
        let text = serde_json::to_string(doc)?;
        let c = Columns::of(doc);
        Ok(ImportDoc {
            id,
            text,
            jsonb: jsonb_of(doc),
            owner: c.owner.map(str::to_owned),
            deleted: c.deleted,
            created: c.created.map(str::to_owned),
            updated: c.updated.map(str::to_owned),
        })
    }

    /// The document's `_id`.
    pub fn id(&self) -> &str {
        &self.id
    }
}

#[cfg(feature = "postgres")]
fn jsonb_of(doc: &Document) -> Option<String> {
    crate::postgres::jsonb_text(doc)
}

#[cfg(not(feature = "postgres"))]
fn jsonb_of(_: &Document) -> Option<String> {
    None
}

/// What the feeder of an import sends.
#[derive(Debug)]
pub enum ImportStep {
    /// The next documents, in file order.
    Docs(Vec<ImportDoc>),
    /// Every document is sent: commit.
    Commit,
}

/// The sending end an import is fed through.
pub type ImportFeed = mpsc::Sender<ImportStep>;
/// The receiving end a store reads an import from.
pub type ImportSteps = mpsc::Receiver<ImportStep>;

/// A committed import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Documents written.
    pub count: u64,
    /// The model's `seq` after the import.
    pub last_seq: u64,
}

/// Why an import wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The document at this position (0-based, in the order fed) was refused; `error` says
    /// why (a unique value already taken, in the database or earlier in the import).
    #[error("document {at}: {error}")]
    Refused { at: u64, error: StoreError },
    /// The feed closed without `Commit`: the feeder gave up.
    #[error("the import was abandoned; nothing was written")]
    Abandoned,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The last `retention` documents of an import, whose change rows the log keeps.
pub(crate) struct Tail {
    keep: usize,
    docs: std::collections::VecDeque<(String, String)>,
}

impl Tail {
    pub fn new(retention: u64) -> Self {
        Tail {
            keep: usize::try_from(retention.max(1)).unwrap_or(usize::MAX),
            docs: std::collections::VecDeque::new(),
        }
    }

    /// Keeps `doc`'s id and text (moved, not copied: the writer is done with the document),
    /// dropping the oldest one kept past the retention.
    pub fn push(&mut self, doc: ImportDoc) {
        if self.docs.len() == self.keep {
            self.docs.pop_front();
        }
        self.docs.push_back((doc.id, doc.text));
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.docs.iter()
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn doc(v: Value) -> Document {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_document_becomes_its_columns_and_the_text_a_write_stores() {
        let d = doc(
            json!({"_id": "a1", "x": 1, "_owner_id": "u1", "_deleted": false,
            "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-02T00:00:00.000Z"}),
        );
        let i = ImportDoc::new("m", &d).unwrap();
        assert_eq!(i.id(), "a1");
        assert_eq!(i.text, serde_json::to_string(&d).unwrap());
        assert_eq!(i.owner.as_deref(), Some("u1"));
        assert!(!i.deleted);
        assert_eq!(i.created.as_deref(), Some("2026-01-01T00:00:00.000Z"));
        assert_eq!(i.updated.as_deref(), Some("2026-01-02T00:00:00.000Z"));
        assert!(ImportDoc::new("m", &doc(json!({"x": 1}))).is_err());
    }

    #[test]
    fn the_tail_keeps_the_last_documents_up_to_the_retention() {
        let mut tail = Tail::new(2);
        for n in 0..5 {
            let d = ImportDoc::new("m", &doc(json!({"_id": format!("i{n}")}))).unwrap();
            tail.push(d);
        }
        let ids: Vec<&str> = tail.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["i3", "i4"]);
        assert_eq!(tail.len(), 2);
    }
}

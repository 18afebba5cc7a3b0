//! A committed change: what the change log holds and the change stream carries.

use std::sync::Arc;

use crate::Document;

/// What a change did to its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Create,
    Update,
    /// A soft or permanent delete.
    Delete,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(ChangeOp::Create),
            "update" => Some(ChangeOp::Update),
            "delete" => Some(ChangeOp::Delete),
            _ => None,
        }
    }
}

/// One committed change of one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The model's slug.
    pub model: String,
    /// Per-model sequence number, strictly increasing in commit order.
    pub seq: u64,
    pub op: ChangeOp,
    /// The document's `_id`.
    pub id: String,
    /// The document after the write (for a delete: as it was deleted).
    pub doc: Arc<Document>,
    /// For an update, the document as it was before, when the writer knew it: what lets the
    /// realtime feed tell that an update moved a document out of a subscriber's view. Not in
    /// the change log, so a change read back from it (a replay, another process's write) has
    /// none.
    pub prev: Option<Arc<Document>>,
    /// The `_id` of the user who made the change, if any.
    pub actor: Option<String>,
    /// A `_silence` write: logged, but the realtime feed skips it.
    pub silent: bool,
}

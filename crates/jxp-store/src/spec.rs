//! What the core tells the store: table specs for migration, and write transactions.

use crate::Document;
use crate::change::ChangeOp;

/// One model's table, as its model file asks for it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableSpec {
    /// The model's slug; the table is named after it.
    pub model: String,
    /// Indexed scalar paths (dotted), unique or not. Paths through arrays are not indexed.
    pub indexes: Vec<IndexSpec>,
    /// Paths of the fields in the model's full-text index.
    pub text_fields: Vec<String>,
    /// Top-level fields with a default: existing documents that lack a newly added field get
    /// its default when the table is migrated.
    pub defaults: Vec<(String, serde_json::Value)>,
    /// All top-level field names, to tell newly added fields from old ones.
    pub fields: Vec<String>,
}

/// An index on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub path: String,
    pub unique: bool,
}

/// A field that may hold the `_id` of another document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSpec {
    pub model: String,
    pub path: String,
    /// Index of the path segment that is an array, if the path runs through one.
    pub array_at: Option<usize>,
}

/// A condition checked inside the transaction; failing it rolls the transaction back.
#[derive(Debug, Clone, PartialEq)]
pub enum Guard {
    /// No live (not soft-deleted) document refers to `model/id` through any of `by`.
    NotReferenced {
        model: String,
        id: String,
        by: Vec<RefSpec>,
    },
    /// The model has no documents at all (first-admin setup).
    Empty { model: String },
}

/// One operation of a write transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// A new document; it carries `_id` and the other system fields.
    Insert {
        model: String,
        doc: Document,
    },
    /// Replaces the stored document. With `expect_version`, only if the stored `__v` still
    /// equals it (optimistic concurrency for read-modify-write). `op` says what the change
    /// means (a soft delete is a replace recorded as a delete).
    Replace {
        model: String,
        id: String,
        doc: Document,
        expect_version: Option<i64>,
        op: ChangeOp,
    },
    /// Removes the document for good; the change carries it as it was.
    Remove {
        model: String,
        id: String,
    },
    Guard(Guard),
}

/// Operations applied atomically, with who made them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteTx {
    pub ops: Vec<WriteOp>,
    pub actor: Option<String>,
    pub silent: bool,
}

//! What the core tells the store: table specs for migration, and write transactions.

use std::sync::Arc;

use jxp_query::{Filter, GeneratedKind, SqlQuery};

use crate::Document;
use crate::change::ChangeOp;
use crate::error::StoreError;
use crate::tables::table_name;

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
    /// Paths (dotted) of the Number fields outside arrays that neither kind of index covers.
    /// PostgreSQL keeps each in a generated column too, so that a filter, sort or grouping
    /// on it reads a number from the row instead of extracting it from the document.
    pub numbers: Vec<String>,
}

/// An index on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub path: String,
    pub unique: bool,
    /// What the model says the field holds, when that is strings or numbers: PostgreSQL
    /// keeps such a field in a generated column of that kind and indexes the column.
    pub kind: Option<GeneratedKind>,
}

/// A field through which documents of `model` may refer to another document.
#[derive(Debug, Clone, PartialEq)]
pub struct RefSpec {
    pub model: String,
    /// The referring field's path, named when a delete is refused.
    pub path: String,
    /// The documents of `model` that refer, through `path`, to the document guarded (live
    /// ones only, as the caller builds it); each database renders it with its own renderer.
    pub filter: Filter,
}

impl RefSpec {
    /// `SELECT 1` from a referrer, if there is one, with the filter rendered by a database's
    /// renderer. Its text depends on the referring model and field only (the id is a bound
    /// parameter), so a database can prepare it once.
    pub(crate) fn referrer_query(&self, render: fn(&Filter, &mut SqlQuery)) -> SqlQuery {
        let mut q = SqlQuery {
            sql: format!("SELECT 1 FROM {} WHERE ", table_name(&self.model)),
            ..SqlQuery::default()
        };
        render(&self.filter, &mut q);
        q.sql.push_str(" LIMIT 1");
        q
    }

    /// The refusal to delete `model/id` while this referrer holds it.
    pub(crate) fn refusal(&self, model: &str, id: &str) -> StoreError {
        StoreError::Referenced {
            model: model.to_owned(),
            id: id.to_owned(),
            by_model: self.model.clone(),
            by_field: self.path.clone(),
        }
    }
}

/// A condition checked inside the transaction; failing it rolls the transaction back.
#[derive(Debug, Clone, PartialEq)]
pub enum Guard {
    /// No document matches the filter of any of `by`: nothing refers to `model/id`.
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
        /// The document as the caller read it before the edit, passed on to the change as
        /// its `prev` (never written).
        prev: Option<Arc<Document>>,
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

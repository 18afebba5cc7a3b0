//! SQL rendering of filters and sorts: one walk over the filter tree (`walk`) and a dialect
//! per database for what each spells its own way. Both give a filter exactly the matcher's
//! meaning (the property test holds each of them to it); they differ in how a JSON document
//! is read, where array elements come from, and how parameters are written (`?1` for SQLite,
//! `$1` for PostgreSQL).

mod group;
mod postgres;
mod sqlite;
mod walk;

use std::fmt::Write;
use std::sync::Arc;

use serde_json::Value;

pub use group::{render_pg_group, render_sqlite_group, render_sqlite_group_scan};
pub use postgres::{
    PG_FUNCTIONS, pg_doc_text, pg_generated_check, pg_generated_expr, pg_text_search,
};
pub use sqlite::fts5_query;

use crate::ast::{Filter, Sort};
use postgres::Postgres;
use sqlite::Sqlite;

/// Renders `filter` as a boolean SQL expression over a model table (columns unqualified),
/// for SQLite.
pub fn render_sqlite_filter(filter: &Filter, q: &mut SqlQuery) {
    walk::render_filter::<Sqlite>(filter, q);
}

/// Renders `filter` as a boolean SQL expression over a model table, for PostgreSQL.
pub fn render_pg_filter(filter: &Filter, q: &mut SqlQuery) {
    walk::render_filter::<Postgres>(filter, q);
}

/// Renders ` ORDER BY …` for the sort keys, always ending with `_id` so pages are stable.
pub fn render_sqlite_order(sort: &[Sort], q: &mut SqlQuery) {
    walk::render_order::<Sqlite>(sort, q);
}

/// [`render_sqlite_order`] for PostgreSQL, in the same order.
pub fn render_pg_order(sort: &[Sort], q: &mut SqlQuery) {
    walk::render_order::<Postgres>(sort, q);
}

/// The sort keys and the final `_id`, without `ORDER BY`, for a caller that orders by
/// something first (the full-text score).
pub fn render_sqlite_order_keys(sort: &[Sort], q: &mut SqlQuery) {
    walk::render_order_keys::<Sqlite>(sort, q);
}

/// [`render_sqlite_order_keys`] for PostgreSQL.
pub fn render_pg_order_keys(sort: &[Sort], q: &mut SqlQuery) {
    walk::render_order_keys::<Postgres>(sort, q);
}

/// A bound parameter, independent of any database driver.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl SqlParam {
    /// The parameter a JSON value compares as, given how `json_extract` returns values.
    pub fn from_json(v: &Value) -> SqlParam {
        match v {
            Value::Null => SqlParam::Null,
            Value::Bool(b) => SqlParam::Int(i64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => SqlParam::Int(i),
                None => SqlParam::Real(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => SqlParam::Text(s.clone()),
            other => SqlParam::Text(other.to_string()),
        }
    }

    /// The parameter as the text PostgreSQL receives (`$N::text`), NULL as `None`.
    pub fn to_pg_text(&self) -> Option<String> {
        match self {
            SqlParam::Null => None,
            SqlParam::Int(i) => Some(i.to_string()),
            SqlParam::Real(f) => Some(f.to_string()),
            SqlParam::Text(s) => Some(s.clone()),
        }
    }
}

/// SQL text with its parameters, numbered in order of appearance, and the generated columns
/// of the table it reads, which the PostgreSQL renderer compares in place of the document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlQuery {
    pub sql: String,
    pub params: Vec<SqlParam>,
    pub generated: Option<Arc<Generated>>,
}

/// What a generated column holds: a path's value when it is a string (else NULL), or its
/// value as a number when it is a number or boolean (booleans as 0/1, as the renderer's
/// `jxp_num` reads it; else NULL), or (`Integer`, beside every `Number` column) its value as
/// an `int8` when it is an integer number of at most 18 digits (else NULL), which a grouping
/// sums and classes without looking at a `numeric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratedKind {
    Text,
    Number,
    Integer,
}

/// A column PostgreSQL computes from the document on every write ([`pg_generated_expr`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedColumn {
    /// The dotted path it is computed from.
    pub path: String,
    /// Its name, a plain identifier, written quoted.
    pub column: String,
    pub kind: GeneratedKind,
    /// Whether the table holds no value of another kind at the path (a check constraint
    /// says so, [`pg_generated_check`]), so that the column, missing and null values first,
    /// orders the documents exactly as a sort on the path does.
    pub sorts: bool,
    /// Whether a declared index of the model is on it (a Number field's own column is not
    /// indexed unless the model says so).
    pub indexed: bool,
}

/// A table's generated columns. An equality, `$in` or range on one of their paths with a
/// value of their kind reads the column: its statistics are the field's own, not a guess
/// about an expression, and an index on it with `_deleted` answers a count without reading
/// a row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generated(pub Vec<GeneratedColumn>);

impl GeneratedColumn {
    /// Whether it is computed from the path `segments`.
    pub(crate) fn is_at(&self, segments: &[String]) -> bool {
        self.path.split('.').eq(segments.iter().map(String::as_str))
    }
}

impl Generated {
    /// Whether a column at `segments` has an index of its own.
    pub fn indexed_at(&self, segments: &[String]) -> bool {
        self.0.iter().any(|c| c.indexed && c.is_at(segments))
    }

    /// The first column at `segments` that `wanted` accepts.
    pub(crate) fn find(
        &self,
        segments: &[String],
        wanted: impl Fn(&GeneratedColumn) -> bool,
    ) -> Option<&str> {
        self.0
            .iter()
            .find(|c| wanted(c) && c.is_at(segments))
            .map(|c| c.column.as_str())
    }
}

impl SqlQuery {
    /// Appends a SQLite placeholder (`?N`) for `p` at the current end of the SQL text.
    pub fn bind(&mut self, p: SqlParam) {
        self.params.push(p);
        let _ = write!(self.sql, "?{}", self.params.len());
    }

    /// Appends a PostgreSQL placeholder for `p`, typed as text (`$N::text`): every value
    /// travels as text (or NULL) and the SQL casts it where it needs another type.
    pub fn bind_pg(&mut self, p: SqlParam) {
        self.params.push(p);
        let _ = write!(self.sql, "${}::text", self.params.len());
    }
}

/// The parts of a user's search text, as MongoDB's `$text` reads it: any of the words
/// matches, every `"quoted phrase"` must be present, `-word` excludes. Each dialect turns them
/// into a query of its own that cannot be a syntax error.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SearchTerms<'a> {
    pub words: Vec<&'a str>,
    pub phrases: Vec<&'a str>,
    pub excluded: Vec<&'a str>,
}

impl<'a> SearchTerms<'a> {
    pub fn parse(text: &'a str) -> Self {
        let mut terms = SearchTerms::default();
        let mut rest = text;
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix('"') {
                let (phrase, tail) = after.split_once('"').unwrap_or((after, ""));
                if !phrase.trim().is_empty() {
                    terms.phrases.push(phrase);
                }
                rest = tail;
                continue;
            }
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            let (word, tail) = rest.split_at(end);
            match word.strip_prefix('-') {
                Some(w) if !w.is_empty() => terms.excluded.push(w),
                _ => terms.words.push(word),
            }
            rest = tail;
        }
        terms
    }
}

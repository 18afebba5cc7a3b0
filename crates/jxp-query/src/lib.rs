//! The query language: a typed AST for filters, sorts and paging; its parsing from URL
//! parameters; an in-memory matcher; SQL rendering; and MongoDB update documents applied to
//! a document. No IO happens here.

mod aggregate;
mod ast;
mod budget;
mod error;
mod matcher;
mod mongo;
mod sql;
mod update;
mod url;

pub use aggregate::{
    Cell, CellRef, Doc, FieldKind, GroupField, GroupSort, GroupStream, GroupTail, Grouping,
    HashGroups, Lookup, PlainAcc, PlainGroup, PlainKey, Stage, TooManyGroups, apply_lookup,
    lookup_values, parse_pipeline, resolve_wrappers, run_pipeline, run_stage, scanned_cell,
    unescaped,
};
pub use ast::{Cond, Filter, Find, MAX_FILTER_CONDITIONS, Op, Path, Sort, SortDir};
pub use budget::{Budget, BudgetError, doc_size, value_size};
pub use error::{QueryError, RunError};
pub use matcher::matches;
pub use mongo::{cast_json, parse_mongo_filter};
pub use sql::{
    Generated, GeneratedColumn, GeneratedKind, PG_FUNCTIONS, SqlParam, SqlQuery, fts5_query,
    pg_doc_text, pg_generated_check, pg_generated_expr, pg_text_search, render_pg_filter,
    render_pg_group, render_pg_order, render_pg_order_keys, render_sqlite_filter,
    render_sqlite_group, render_sqlite_group_scan, render_sqlite_order, render_sqlite_order_keys,
};
pub use update::{Update, UpdateError, UpdateOp};
pub use url::{
    ListParams, Populate, cast_str, has_text_index, parse_list_params, regex_pattern, resolve_path,
};

//! The query language: a typed AST for filters, sorts and paging; its parsing from URL
//! parameters; an in-memory matcher; and SQL rendering. No IO happens here.

mod ast;
mod error;
mod matcher;
mod mongo;
mod sql;
mod url;

pub use ast::{Cond, Filter, Find, Op, Path, Sort, SortDir};
pub use error::QueryError;
pub use matcher::matches;
pub use mongo::{cast_json, parse_mongo_filter};
pub use sql::{SqlParam, SqlQuery, render_sqlite_filter, render_sqlite_order};
pub use url::{ListParams, cast_str, parse_list_params, regex_pattern, resolve_path};

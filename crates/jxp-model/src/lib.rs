//! Model files to a `Schema`, and the rules every document obeys: validation, coercion, ids,
//! timestamps and the public JSON shape. This crate does no IO beyond reading model files.

mod builtin;
mod cast;
mod document;
mod error;
mod ident;
mod load;
mod model_file;
mod node;
mod objectid;
pub mod sched;
mod schema;
pub mod sync;
mod validate;

pub use document::{
    Document, SYSTEM_FIELDS, into_public_view, into_view, now_iso, public_view, strip_owner_only,
    view_for,
};
pub use error::{ModelError, ModelWarning, ValidationError};
pub use ident::is_ident;
pub use load::{load_dir, load_dir_with_warnings, parse_model_json, parse_model_toml};
pub use objectid::{ObjectId, is_object_id};
pub use schema::{
    AdvancedQueries, Field, FieldKind, FieldOptions, IndexKind, Model, ModelOptions, Perms,
    ScalarType, Schema, Strict,
};
pub use validate::{format_date, parse_date};

//! The errors of this crate: a model file that cannot be used, and a document that fails
//! validation.

use std::path::PathBuf;

/// A model file that stops start-up: which file, which line (where the parser knows it), why.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model directory {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        file: PathBuf,
        line: Option<usize>,
        reason: String,
    },
}

/// Something in a model file that works but is most likely not what its author meant; the
/// server starts and logs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ModelWarning {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub reason: String,
}

/// A document that does not fit its model. `field` is the dotted path of the offending value
/// (empty for whole-document problems).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

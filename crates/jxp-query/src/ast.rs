//! The query AST. Paths are checked against the model when they are built, so the SQL renderer
//! can trust every path segment to be a plain identifier from the schema.

use serde_json::Value;

use crate::error::QueryError;

/// A field path: dotted segments, and the index of the segment that is an array, if any (then
/// a condition holds when any element satisfies it, as in MongoDB).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    pub segments: Vec<String>,
    pub array_at: Option<usize>,
}

impl Path {
    /// A path whose segments the caller has taken from the schema.
    pub fn new(dotted: &str, array_at: Option<usize>) -> Self {
        Path {
            segments: dotted.split('.').map(str::to_owned).collect(),
            array_at,
        }
    }

    /// A path with no array in it.
    pub fn plain(dotted: &str) -> Self {
        Path::new(dotted, None)
    }

    /// The array element itself, as the path of a condition inside `$elemMatch` on an array
    /// of values (`{"scores": {"$elemMatch": {"$gte": 80}}}`).
    pub fn element() -> Self {
        Path {
            segments: Vec::new(),
            array_at: None,
        }
    }

    pub fn dotted(&self) -> String {
        self.segments.join(".")
    }
}

/// A comparison operator of the filter language.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    /// The value is an array of candidates.
    In,
    Nin,
    /// The value is a boolean.
    Exists,
    /// The value is the pattern with flags folded in (`(?i)foo`).
    Regex,
    /// The value at the path is an array of exactly this many elements (a non-negative
    /// integer). Unlike the comparisons it looks at the array as a whole, not at each element.
    Size,
    /// The value at the path is an array holding an element equal to each of the value's
    /// items (an array, cast like `In`'s); an empty list matches nothing, as in MongoDB.
    All,
}

/// One condition on one path. The value is already cast to the field's type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cond {
    pub path: Path,
    pub op: Op,
    pub value: Value,
}

/// The most comparisons one filter from a client may make. It keeps every rendered statement
/// well inside the databases' limits on bound parameters (SQLite's 32,766) whatever the
/// values, since a long list of values is bound as one parameter.
pub const MAX_FILTER_CONDITIONS: usize = 1000;

/// A filter: conditions combined with boolean operators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Filter {
    /// Matches every document.
    #[default]
    All,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Nor(Vec<Filter>),
    Not(Box<Filter>),
    Cond(Cond),
    /// Some single element of the array at `path` satisfies all of `inner`, whose paths are
    /// relative to the element (`Path::element()` for the element itself). Only arrays match.
    ElemMatch {
        path: Path,
        inner: Box<Filter>,
    },
}

impl Filter {
    /// `self AND other`, flattening nested ands.
    pub fn and(self, other: Filter) -> Filter {
        match (self, other) {
            (Filter::All, f) | (f, Filter::All) => f,
            (Filter::And(mut a), Filter::And(b)) => {
                a.extend(b);
                Filter::And(a)
            }
            (Filter::And(mut a), f) | (f, Filter::And(mut a)) => {
                a.push(f);
                Filter::And(a)
            }
            (a, b) => Filter::And(vec![a, b]),
        }
    }

    /// How many comparisons the filter makes: one per condition, one per item of `$all`
    /// (each is its own search of the array). Filters from clients are held to
    /// [`MAX_FILTER_CONDITIONS`].
    pub fn condition_count(&self) -> usize {
        match self {
            Filter::All => 0,
            Filter::And(parts) | Filter::Or(parts) | Filter::Nor(parts) => {
                parts.iter().map(Filter::condition_count).sum()
            }
            Filter::Not(inner) => inner.condition_count(),
            Filter::Cond(Cond {
                op: Op::All, value, ..
            }) => value.as_array().map_or(1, |items| items.len().max(1)),
            Filter::Cond(_) => 1,
            Filter::ElemMatch { inner, .. } => 1 + inner.condition_count(),
        }
    }

    /// `Ok(self)` when it makes at most [`MAX_FILTER_CONDITIONS`] comparisons, else the 400
    /// that says so. A list of values (`$in`, `$nin`) counts once however long it is.
    pub fn within_limits(self) -> Result<Filter, QueryError> {
        check_client_filters(&[&self])?;
        Ok(self)
    }

    /// Whether a value the filter compares with holds a NUL character.
    fn has_nul(&self) -> bool {
        match self {
            Filter::All => false,
            Filter::And(parts) | Filter::Or(parts) | Filter::Nor(parts) => {
                parts.iter().any(Filter::has_nul)
            }
            Filter::Not(inner) | Filter::ElemMatch { inner, .. } => inner.has_nul(),
            Filter::Cond(c) => value_has_nul(&c.value),
        }
    }

    /// A single condition.
    pub fn cond(path: Path, op: Op, value: Value) -> Filter {
        Filter::Cond(Cond { path, op, value })
    }

    /// Documents that are not soft-deleted.
    pub fn live() -> Filter {
        Filter::cond(Path::plain("_deleted"), Op::Eq, Value::Bool(false))
    }
}

fn value_has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(value_has_nul),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains('\0') || value_has_nul(v)),
        _ => false,
    }
}

/// The 400 for filters that one statement will hold together: more than
/// [`MAX_FILTER_CONDITIONS`] comparisons in all, or a value with a NUL character, which
/// PostgreSQL's text cannot hold (so no stored string can equal it there either).
pub(crate) fn check_client_filters(filters: &[&Filter]) -> Result<(), QueryError> {
    if filters.iter().any(|f| f.has_nul()) {
        return Err(QueryError::new(
            "filter values must not contain a NUL character",
        ));
    }
    let n = filters.iter().map(|f| f.condition_count()).sum::<usize>();
    if n > MAX_FILTER_CONDITIONS {
        return Err(QueryError::new(format!(
            "a filter may make at most {MAX_FILTER_CONDITIONS} comparisons (each condition, each $all item); this one makes {n}: use $in for a list of values"
        )));
    }
    Ok(())
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub path: Path,
    pub dir: SortDir,
}

/// A list query as the store runs it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Find {
    pub filter: Filter,
    pub sort: Vec<Sort>,
    pub limit: Option<u64>,
    pub skip: u64,
    /// Words to look for in the model's full-text index, as the user typed them (the store
    /// turns them into a safe query of its own dialect). With it, only matching documents are
    /// found, ordered by relevance before `sort`, each carrying a numeric `score` (higher is
    /// more relevant).
    pub text: Option<String>,
    /// Most bytes of stored document text to read: past them the store stops reading and
    /// answers `TooLarge`, so a query over large documents is refused before all of them are
    /// in memory. `None`: no limit.
    pub max_bytes: Option<u64>,
}

//! The query AST. Paths are checked against the model when they are built, so the SQL renderer
//! can trust every path segment to be a plain identifier from the schema.

use serde_json::Value;

/// A field path: dotted segments, and the index of the segment that is an array, if any (then
/// a condition holds when any element satisfies it, as in MongoDB).
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub path: Path,
    pub op: Op,
    pub value: Value,
}

/// A filter: conditions combined with boolean operators.
#[derive(Debug, Clone, PartialEq, Default)]
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

    /// A single condition.
    pub fn cond(path: Path, op: Op, value: Value) -> Filter {
        Filter::Cond(Cond { path, op, value })
    }

    /// Documents that are not soft-deleted.
    pub fn live() -> Filter {
        Filter::cond(Path::plain("_deleted"), Op::Eq, Value::Bool(false))
    }
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
}

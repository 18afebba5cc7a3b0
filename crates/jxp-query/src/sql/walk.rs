//! The one walk over a filter tree that both SQL renderings share: combinators, negations,
//! array paths, `$elemMatch`, `$size`/`$all` and the choice of what each condition reads. What
//! a database spells its own way (JSON access, where array elements come from, casts,
//! equality and ranges under its type rules, regular expressions, sort keys) is a [`Dialect`].
//!
//! Every negation is `NOT coalesce(…, false)`: a comparison with a missing value is NULL, and
//! NOT NULL is NULL, so without it `NOT (x = 1)` would drop the documents that lack x, which
//! the matcher keeps. And/Or need nothing: with NULL read as false they already agree.

use serde_json::Value;

use super::{SqlParam, SqlQuery};
use crate::ast::{Cond, Filter, Op, Path, Sort, SortDir};

/// What a stored column holds. The writer fills the columns from the document, so their
/// types are fixed: ids and dates are text, `_deleted` is a flag (0 or 1 in SQLite, a
/// boolean in PostgreSQL).
#[derive(Clone, Copy, PartialEq)]
pub(super) enum ColumnType {
    Text,
    Flag,
}

/// The columns every model table has besides `doc`: the name a filter uses, the column, and
/// what it holds.
const COLUMNS: &[(&str, &str, ColumnType)] = &[
    ("_id", "_id", ColumnType::Text),
    ("id", "_id", ColumnType::Text),
    ("_owner_id", "_owner_id", ColumnType::Text),
    ("_deleted", "_deleted", ColumnType::Flag),
    ("createdAt", "createdAt", ColumnType::Text),
    ("updatedAt", "updatedAt", ColumnType::Text),
];

/// Where a condition reads its value.
pub(super) enum Target<'a> {
    /// A real column of the model table.
    Column(&'static str, ColumnType),
    /// A JSON path into `doc`.
    Doc(&'a [String]),
    /// The current element of an array being searched.
    Elem,
    /// A JSON path into the current element of an array being searched.
    ElemPath(&'a [String]),
}

impl Target<'_> {
    /// The column a one-segment system name is stored in, else the path into `doc`.
    pub(super) fn for_path(path: &Path) -> Target<'_> {
        if let [only] = path.segments.as_slice()
            && let Some((_, col, ty)) = COLUMNS.iter().find(|(name, _, _)| name == only)
        {
            return Target::Column(col, *ty);
        }
        Target::Doc(&path.segments)
    }

    /// The column's fixed type, for a column.
    pub(super) fn column_type(&self) -> Option<ColumnType> {
        match self {
            Target::Column(_, ty) => Some(*ty),
            _ => None,
        }
    }
}

/// How a filter value compares, which decides the guard its comparison needs.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    /// A number or a boolean (both databases compare booleans as 0 or 1).
    Number,
    /// A string that cannot be the JSON text of an object or array.
    Text,
    /// A string that starts like JSON text of an object or array: where a database reads
    /// containers as their text, only a real string may equal it.
    JsonLikeText,
    /// An object or array: equal only to an object or array with the same JSON text.
    Container,
}

/// The kind of a filter value; `None` for null, which stands for "missing or null".
pub(super) fn kind(v: &Value) -> Option<Kind> {
    match v {
        Value::Null => None,
        Value::Bool(_) | Value::Number(_) => Some(Kind::Number),
        Value::String(s) if s.starts_with(['{', '[']) => Some(Kind::JsonLikeText),
        Value::String(_) => Some(Kind::Text),
        Value::Array(_) | Value::Object(_) => Some(Kind::Container),
    }
}

/// Which elements a search over an array sees.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Elements {
    /// Those of a real array only (`$elemMatch`, `$all`).
    Array,
    /// Those of an array, or a scalar as its one element (a condition on an array path).
    Items,
}

/// A list of more values than this is bound as one JSON array parameter rather than one
/// parameter per value. With at most [`crate::MAX_FILTER_CONDITIONS`] conditions, each
/// binding at most this many values per comparison group, a filter stays far below SQLite's
/// limit of 32,766 parameters.
pub(super) const BIND_AS_SET_OVER: usize = 8;

/// Combinators with more parts than this are rendered as a balanced tree of parenthesised
/// halves: SQLite nests `a OR b OR c …` one level per term and refuses an expression deeper
/// than 1,000 levels.
const FLAT_PARTS_MAX: usize = 32;

/// What one database spells its own way. The walk below calls it for every leaf.
pub(super) trait Dialect {
    /// The literal true and false.
    const TRUE: &'static str;
    const FALSE: &'static str;
    /// What closes `NOT coalesce(` so that NULL reads as false.
    const OR_FALSE: &'static str;
    /// Whether `$elemMatch` must check for an array itself, because the element source of
    /// [`Elements::Array`] yields a scalar as one row.
    const ELEM_MATCH_CHECKS_ARRAY: bool;
    /// Whether an equality is parenthesised even when it is a single comparison.
    const EQUALITY_ALWAYS_WRAPPED: bool;

    /// Appends a placeholder for `p`.
    fn bind(q: &mut SqlQuery, p: SqlParam);
    /// The value at `t` as the database compares it.
    fn value(q: &mut SqlQuery, t: &Target<'_>);
    /// The JSON type name of the value at `t`; NULL when it is missing.
    fn json_type(q: &mut SqlQuery, t: &Target<'_>);
    /// The `FROM` item giving the elements of the array at `segments` of `doc`, as rows the
    /// element targets read.
    fn elements(q: &mut SqlQuery, segments: &[String], which: Elements);
    /// `(the value at segments is an array of n elements)`.
    fn array_size(q: &mut SqlQuery, segments: &[String], n: i64);
    /// `(t is missing or JSON null)`, or with `null` false its opposite, by the JSON type.
    fn missing_or_null(q: &mut SqlQuery, t: &Target<'_>, null: bool);
    /// `(t is missing or null)`, or with `null` false its opposite.
    fn is_null(q: &mut SqlQuery, t: &Target<'_>, null: bool);
    /// The comparison group (at most three) an equality with a value of `kind` goes to, for
    /// a target of `column` type; `None` when no such value can be equal.
    fn equality_group(kind: Kind, column: Option<ColumnType>) -> Option<usize>;
    /// `(t equals one of values)`, all of one group.
    fn equality(q: &mut SqlQuery, t: &Target<'_>, group: usize, values: &[&Value]);
    /// An ordered comparison (`sym` is ` > ` and the like); numbers compare with numbers and
    /// strings with strings, anything else never matches, as in the matcher.
    fn range(q: &mut SqlQuery, t: &Target<'_>, sym: &str, value: &Value);
    /// A regular expression match, on strings only.
    fn regex(q: &mut SqlQuery, t: &Target<'_>, pattern: &str);
    /// `(SELECT … )` yielding `values` (more than a few, all of one equality group) as the
    /// separate placeholders of [`bind_list`] would give them, each followed by `cast`, from
    /// one bound JSON array.
    fn value_set(q: &mut SqlQuery, values: &[&Value], cast: &str);
    /// One sort key and its trailing `, `.
    fn order_key(q: &mut SqlQuery, t: &Target<'_>, dir: SortDir);
}

/// What the paths of a filter are relative to: the row's document, or (inside `$elemMatch`)
/// the current element of the array.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Doc,
    Elem,
}

/// Renders `filter` as a boolean SQL expression over a model table (columns unqualified).
pub(super) fn render_filter<D: Dialect>(filter: &Filter, q: &mut SqlQuery) {
    render_in_scope::<D>(filter, q, Scope::Doc);
}

fn render_in_scope<D: Dialect>(filter: &Filter, q: &mut SqlQuery, scope: Scope) {
    match filter {
        Filter::All => q.sql.push_str(D::TRUE),
        Filter::And(parts) => join::<D>(q, parts, " AND ", D::TRUE, scope),
        Filter::Or(parts) => join::<D>(q, parts, " OR ", D::FALSE, scope),
        Filter::Nor(parts) => {
            q.sql.push_str("NOT coalesce(");
            join::<D>(q, parts, " OR ", D::FALSE, scope);
            q.sql.push_str(D::OR_FALSE);
        }
        Filter::Not(inner) => {
            q.sql.push_str("NOT coalesce(");
            render_in_scope::<D>(inner, q, scope);
            q.sql.push_str(D::OR_FALSE);
        }
        Filter::Cond(cond) => match scope {
            Scope::Doc => render_cond::<D>(cond, q),
            Scope::Elem => render_elem_cond::<D>(cond, q),
        },
        // The parser allows no array inside `$elemMatch`, so a nested one never matches
        // (the matcher agrees).
        Filter::ElemMatch { .. } if scope == Scope::Elem => q.sql.push_str(D::FALSE),
        Filter::ElemMatch { path, inner } => {
            if D::ELEM_MATCH_CHECKS_ARRAY {
                q.sql.push('(');
                is_array::<D>(q, &path.segments);
                q.sql.push_str(" AND ");
            }
            exists::<D>(q, &path.segments, Elements::Array, |q| {
                render_in_scope::<D>(inner, q, Scope::Elem);
            });
            if D::ELEM_MATCH_CHECKS_ARRAY {
                q.sql.push(')');
            }
        }
    }
}

fn join<D: Dialect>(q: &mut SqlQuery, parts: &[Filter], sep: &str, empty: &str, scope: Scope) {
    if parts.is_empty() {
        q.sql.push_str(empty);
        return;
    }
    q.sql.push('(');
    if parts.len() > FLAT_PARTS_MAX {
        let (left, right) = parts.split_at(parts.len() / 2);
        join::<D>(q, left, sep, empty, scope);
        q.sql.push_str(sep);
        join::<D>(q, right, sep, empty, scope);
    } else {
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                q.sql.push_str(sep);
            }
            render_in_scope::<D>(part, q, scope);
        }
    }
    q.sql.push(')');
}

/// `<the value at segments of doc is an array>`; both databases name the type `'array'`.
pub(super) fn is_array<D: Dialect>(q: &mut SqlQuery, segments: &[String]) {
    D::json_type(q, &Target::Doc(segments));
    q.sql.push_str(" = 'array'");
}

/// `(t IS NULL)`, or with `null` false `(t IS NOT NULL)`, on the value as SQL sees it.
pub(super) fn is_sql_null<D: Dialect>(q: &mut SqlQuery, t: &Target<'_>, null: bool) {
    q.sql.push('(');
    D::value(q, t);
    q.sql
        .push_str(if null { " IS NULL)" } else { " IS NOT NULL)" });
}

/// `EXISTS (SELECT 1 FROM <elements> WHERE <cond>)`.
fn exists<D: Dialect>(
    q: &mut SqlQuery,
    segments: &[String],
    which: Elements,
    cond: impl FnOnce(&mut SqlQuery),
) {
    q.sql.push_str("EXISTS (SELECT 1 FROM ");
    D::elements(q, segments, which);
    q.sql.push_str(" WHERE ");
    cond(q);
    q.sql.push(')');
}

/// A condition inside `$elemMatch`, on the current element (an empty path) or a field of it.
/// A system name there is a field of the element, not a column.
fn render_elem_cond<D: Dialect>(cond: &Cond, q: &mut SqlQuery) {
    if matches!(cond.op, Op::Size | Op::All) {
        // Never built by the parser inside `$elemMatch`; false, as the matcher has it.
        q.sql.push_str(D::FALSE);
        return;
    }
    let target = if cond.path.segments.is_empty() {
        Target::Elem
    } else {
        Target::ElemPath(&cond.path.segments)
    };
    render_comparison::<D>(q, &cond.op, &cond.value, &target);
}

/// `$size` and `$all`, on the array at the full path as a whole; only a real array
/// qualifies.
fn render_whole_array<D: Dialect>(cond: &Cond, q: &mut SqlQuery) {
    let segments = &cond.path.segments;
    match cond.op {
        Op::Size => match cond.value.as_u64().and_then(|n| i64::try_from(n).ok()) {
            Some(n) => D::array_size(q, segments, n),
            None => q.sql.push_str(D::FALSE),
        },
        Op::All => {
            let items = cond.value.as_array().map(Vec::as_slice).unwrap_or_default();
            if items.is_empty() {
                q.sql.push_str(D::FALSE);
                return;
            }
            q.sql.push('(');
            is_array::<D>(q, segments);
            for item in items {
                q.sql.push_str(" AND ");
                exists::<D>(q, segments, Elements::Array, |q| {
                    render_comparison::<D>(q, &Op::Eq, item, &Target::Elem);
                });
            }
            q.sql.push(')');
        }
        _ => q.sql.push_str(D::FALSE),
    }
}

fn render_cond<D: Dialect>(cond: &Cond, q: &mut SqlQuery) {
    if matches!(cond.op, Op::Size | Op::All) {
        render_whole_array::<D>(cond, q);
        return;
    }
    let Some(at) = cond.path.array_at else {
        render_comparison::<D>(q, &cond.op, &cond.value, &Target::for_path(&cond.path));
        return;
    };
    let (array_part, rest) = cond
        .path
        .segments
        .split_at((at + 1).min(cond.path.segments.len()));
    // `$ne` and `$nin` on an array hold when no element equals, as in MongoDB.
    let (negate, op) = match cond.op {
        Op::Ne => (true, Op::Eq),
        Op::Nin => (true, Op::In),
        ref op => (false, op.clone()),
    };
    if matches!(op, Op::Exists) && rest.is_empty() {
        // A stored null does not exist either.
        let exists = cond.value.as_bool().unwrap_or(true);
        D::missing_or_null(q, &Target::Doc(array_part), !exists);
        return;
    }
    if negate {
        q.sql.push_str("NOT ");
    }
    let target = if rest.is_empty() {
        Target::Elem
    } else {
        Target::ElemPath(rest)
    };
    exists::<D>(q, array_part, Elements::Items, |q| {
        render_comparison::<D>(q, &op, &cond.value, &target);
    });
}

fn render_comparison<D: Dialect>(q: &mut SqlQuery, op: &Op, value: &Value, t: &Target<'_>) {
    let list = || value.as_array().map(Vec::as_slice).unwrap_or_default();
    match op {
        Op::Eq => render_in::<D>(q, t, std::slice::from_ref(value)),
        Op::In => render_in::<D>(q, t, list()),
        Op::Ne if value.is_null() => D::is_null(q, t, false),
        // The negations are exactly "not equal" / "not in", missing values included; they
        // cannot use an index either way.
        Op::Ne | Op::Nin => {
            q.sql.push_str("NOT coalesce(");
            let items = if matches!(op, Op::Ne) {
                std::slice::from_ref(value)
            } else {
                list()
            };
            render_in::<D>(q, t, items);
            q.sql.push_str(D::OR_FALSE);
        }
        Op::Gt => D::range(q, t, " > ", value),
        Op::Gte => D::range(q, t, " >= ", value),
        Op::Lt => D::range(q, t, " < ", value),
        Op::Lte => D::range(q, t, " <= ", value),
        Op::Exists => D::is_null(q, t, !value.as_bool().unwrap_or(true)),
        Op::Regex => match value {
            Value::String(pattern) => D::regex(q, t, pattern),
            _ => q.sql.push_str(D::FALSE),
        },
        // Whole-array operators are rendered before any element target is chosen.
        Op::Size | Op::All => q.sql.push_str(D::FALSE),
    }
}

/// "Equals one of `items`"; a null item stands for a missing or null value. The other items
/// are grouped by the comparison the dialect gives their kind, so that the values of one
/// group share one `IN` an index can serve.
fn render_in<D: Dialect>(q: &mut SqlQuery, t: &Target<'_>, items: &[Value]) {
    let mut groups: [Vec<&Value>; 3] = Default::default();
    let mut has_null = false;
    for item in items {
        match kind(item) {
            None => has_null = true,
            Some(k) => {
                if let Some(group) =
                    D::equality_group(k, t.column_type()).and_then(|g| groups.get_mut(g))
                {
                    group.push(item);
                }
            }
        }
    }
    let parts = groups.iter().filter(|g| !g.is_empty()).count() + usize::from(has_null);
    if parts == 0 {
        q.sql.push_str(D::FALSE);
        return;
    }
    let wrap = parts > 1 || D::EQUALITY_ALWAYS_WRAPPED;
    if wrap {
        q.sql.push('(');
    }
    if has_null {
        D::is_null(q, t, true);
    }
    let mut first = !has_null;
    for (group, values) in groups.iter().enumerate().filter(|(_, g)| !g.is_empty()) {
        if !first {
            q.sql.push_str(" OR ");
        }
        first = false;
        D::equality(q, t, group, values);
    }
    if wrap {
        q.sql.push(')');
    }
}

/// ` = <value>` for one value, ` IN (<values>)` for a few, each placeholder followed by
/// `cast`; more than [`BIND_AS_SET_OVER`] travel as one parameter (` IN <set>`), so that a
/// large `$in` never meets the database's limit on the number of parameters.
pub(super) fn bind_list<D: Dialect>(q: &mut SqlQuery, values: &[&Value], cast: &str) {
    if values.len() > BIND_AS_SET_OVER {
        q.sql.push_str(" IN ");
        D::value_set(q, values, cast);
        return;
    }
    if let [one] = values {
        q.sql.push_str(" = ");
        D::bind(q, SqlParam::from_json(one));
        q.sql.push_str(cast);
        return;
    }
    q.sql.push_str(" IN (");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            q.sql.push(',');
        }
        D::bind(q, SqlParam::from_json(v));
        q.sql.push_str(cast);
    }
    q.sql.push(')');
}

/// ` ORDER BY ` and the sort keys.
pub(super) fn render_order<D: Dialect>(sort: &[Sort], q: &mut SqlQuery) {
    q.sql.push_str(" ORDER BY ");
    render_order_keys::<D>(sort, q);
}

/// The sort keys and the final `_id`, so pages are stable.
pub(super) fn render_order_keys<D: Dialect>(sort: &[Sort], q: &mut SqlQuery) {
    for s in sort {
        D::order_key(q, &Target::for_path(&s.path), s.dir);
    }
    q.sql.push_str("_id ASC");
}

//! SQLite rendering of filters and sorts. Values are always bound
//! parameters; paths become literal JSON paths only when every segment is a plain identifier
//! (as the schema guarantees), and are bound as parameters otherwise.
//!
//! The rendering has the matcher's meaning exactly (a property test holds the two together),
//! which takes some care because SQLite compares across types where the matcher does not:
//! `json_extract` hands back an object or array as its JSON *text*, any text sorts above any
//! number, and a comparison with NULL is NULL rather than false. Hence the type guards below
//! and the `coalesce` under every `NOT`. Guards are added beside the comparison, never around
//! the compared expression, so the expression indexes on `json_extract(doc,'$.path')` still
//! serve `=`, `IN` and ranges.

use std::fmt::Write;

use jxp_model::is_ident;
use serde_json::Value;

use super::{SearchTerms, SqlParam, SqlQuery};
use crate::ast::{Cond, Filter, Op, Path, Sort, SortDir};

/// What a stored column holds. The writer fills the columns from the document, so their
/// types are fixed: ids and dates are text, `_deleted` is 0 or 1.
#[derive(Clone, Copy, PartialEq)]
enum ColumnType {
    Text,
    Int,
}

/// The columns every model table has besides `doc`.
const COLUMNS: &[(&str, &str, ColumnType)] = &[
    ("_id", "_id", ColumnType::Text),
    ("id", "_id", ColumnType::Text),
    ("_owner_id", "_owner_id", ColumnType::Text),
    ("_deleted", "_deleted", ColumnType::Int),
    ("createdAt", "createdAt", ColumnType::Text),
    ("updatedAt", "updatedAt", ColumnType::Text),
];

/// Appends a JSON path argument (`'$.a.b'`), bound when a segment is not a plain identifier.
fn push_json_path(q: &mut SqlQuery, segments: &[String]) {
    if segments.iter().all(|s| is_ident(s)) {
        let _ = write!(q.sql, "'$.{}'", segments.join("."));
    } else {
        let quoted: Vec<String> = segments
            .iter()
            .map(|s| format!("\"{}\"", s.replace('"', "")))
            .collect();
        q.bind(SqlParam::Text(format!("$.{}", quoted.join("."))));
    }
}

/// The current element of `json_each`, as a JSON document when it is an object and NULL
/// otherwise: `json_extract` on a bare string element would fail as malformed JSON, and the
/// matcher finds no field below a non-object anyway.
const ELEM_OBJECT: &str = "CASE WHEN type = 'object' THEN value END";

/// Where a condition reads its value.
enum Target<'a> {
    /// A real column of the model table.
    Column(&'static str, ColumnType),
    /// A JSON path into `doc`.
    Doc(&'a [String]),
    /// The current element of a `json_each` over an array.
    Elem,
    /// A JSON path into the current element of a `json_each`.
    ElemPath(&'a [String]),
}

impl Target<'_> {
    fn for_path(path: &Path) -> Target<'_> {
        if let [only] = path.segments.as_slice()
            && let Some((_, col, ty)) = COLUMNS.iter().find(|(name, _, _)| name == only)
        {
            return Target::Column(col, *ty);
        }
        Target::Doc(&path.segments)
    }

    /// The value, as SQLite compares it.
    fn value(&self, q: &mut SqlQuery) {
        match self {
            Target::Column(col, _) => q.sql.push_str(col),
            Target::Doc(segments) => {
                q.sql.push_str("json_extract(doc,");
                push_json_path(q, segments);
                q.sql.push(')');
            }
            Target::Elem => q.sql.push_str("value"),
            Target::ElemPath(segments) => {
                let _ = write!(q.sql, "json_extract({ELEM_OBJECT},");
                push_json_path(q, segments);
                q.sql.push(')');
            }
        }
    }

    /// The JSON type name of the value (`'text'`, `'object'`, …); NULL when it is missing.
    fn json_type(&self, q: &mut SqlQuery) {
        match self {
            Target::Column(col, _) => {
                let _ = write!(q.sql, "typeof({col})");
            }
            Target::Doc(segments) => {
                q.sql.push_str("json_type(doc,");
                push_json_path(q, segments);
                q.sql.push(')');
            }
            Target::Elem => q.sql.push_str("type"),
            Target::ElemPath(segments) => {
                let _ = write!(q.sql, "json_type({ELEM_OBJECT},");
                push_json_path(q, segments);
                q.sql.push(')');
            }
        }
    }

    /// The column's fixed type, for a column.
    fn column_type(&self) -> Option<ColumnType> {
        match self {
            Target::Column(_, ty) => Some(*ty),
            _ => None,
        }
    }
}

/// How a filter value compares, which decides the guard its comparison needs.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A number or a boolean (which SQLite's JSON functions give as 0 or 1).
    Number,
    /// A string that cannot be the JSON text of an object or array.
    Text,
    /// A string that starts like JSON text of an object or array: only a real string may
    /// equal it.
    JsonLikeText,
    /// An object or array: equal only to an object or array with the same JSON text.
    Container,
}

fn kind(v: &Value) -> Option<Kind> {
    match v {
        Value::Null => None,
        Value::Bool(_) | Value::Number(_) => Some(Kind::Number),
        Value::String(s) if s.starts_with(['{', '[']) => Some(Kind::JsonLikeText),
        Value::String(_) => Some(Kind::Text),
        Value::Array(_) | Value::Object(_) => Some(Kind::Container),
    }
}

/// Renders `filter` as a boolean SQL expression over a model table.
pub fn render_sqlite_filter(filter: &Filter, q: &mut SqlQuery) {
    render_filter(filter, q, Scope::Doc);
}

/// What the paths of a filter are relative to: the row's document, or (inside `$elemMatch`)
/// the current element of a `json_each` over the array.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Doc,
    Elem,
}

fn render_filter(filter: &Filter, q: &mut SqlQuery, scope: Scope) {
    match filter {
        Filter::All => q.sql.push('1'),
        Filter::And(parts) => join(q, parts, " AND ", "1", scope),
        Filter::Or(parts) => join(q, parts, " OR ", "0", scope),
        // A comparison with a missing value is NULL, and NOT NULL is NULL: without the
        // coalesce, `NOT (x = 1)` would drop the documents that lack x, which the matcher
        // keeps. And/Or need nothing: with NULL read as false they already agree.
        Filter::Nor(parts) => {
            q.sql.push_str("NOT coalesce(");
            join(q, parts, " OR ", "0", scope);
            q.sql.push_str(",0)");
        }
        Filter::Not(inner) => {
            q.sql.push_str("NOT coalesce(");
            render_filter(inner, q, scope);
            q.sql.push_str(",0)");
        }
        Filter::Cond(cond) => match scope {
            Scope::Doc => render_cond(cond, q),
            Scope::Elem => render_elem_cond(cond, q),
        },
        // The parser allows no array inside `$elemMatch`, so a nested one never matches
        // (the matcher agrees).
        Filter::ElemMatch { .. } if scope == Scope::Elem => q.sql.push('0'),
        Filter::ElemMatch { path, inner } => {
            // `json_each` over a scalar yields the scalar itself as one row, so the type
            // guard keeps the MongoDB meaning: only an array has elements to match.
            q.sql.push_str("(json_type(doc,");
            push_json_path(q, &path.segments);
            q.sql
                .push_str(") = 'array' AND EXISTS (SELECT 1 FROM json_each(doc,");
            push_json_path(q, &path.segments);
            q.sql.push_str(") WHERE ");
            render_filter(inner, q, Scope::Elem);
            q.sql.push_str("))");
        }
    }
}

fn join(q: &mut SqlQuery, parts: &[Filter], sep: &str, empty: &str, scope: Scope) {
    if parts.is_empty() {
        q.sql.push_str(empty);
        return;
    }
    q.sql.push('(');
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            q.sql.push_str(sep);
        }
        render_filter(part, q, scope);
    }
    q.sql.push(')');
}

/// A condition inside `$elemMatch`, on the current element (an empty path) or a field of it.
fn render_elem_cond(cond: &Cond, q: &mut SqlQuery) {
    if matches!(cond.op, Op::Size | Op::All) {
        // Never built by the parser inside `$elemMatch`; false, as the matcher has it.
        q.sql.push('0');
        return;
    }
    let target = if cond.path.segments.is_empty() {
        Target::Elem
    } else {
        Target::ElemPath(&cond.path.segments)
    };
    render_comparison(q, &cond.op, &cond.value, &target);
}

/// `$size` and `$all`, on the array at the full path as a whole. Both require a real array:
/// `json_array_length` says 0 for a scalar and `json_each` yields a scalar as one row.
fn render_whole_array(cond: &Cond, q: &mut SqlQuery) {
    let segments = &cond.path.segments;
    match cond.op {
        Op::Size => {
            let Some(n) = cond.value.as_u64().and_then(|n| i64::try_from(n).ok()) else {
                q.sql.push('0');
                return;
            };
            q.sql.push_str("(json_type(doc,");
            push_json_path(q, segments);
            q.sql.push_str(") = 'array' AND json_array_length(doc,");
            push_json_path(q, segments);
            q.sql.push_str(") = ");
            q.bind(SqlParam::Int(n));
            q.sql.push(')');
        }
        Op::All => {
            let items = cond.value.as_array().map(Vec::as_slice).unwrap_or_default();
            if items.is_empty() {
                q.sql.push('0');
                return;
            }
            q.sql.push_str("(json_type(doc,");
            push_json_path(q, segments);
            q.sql.push_str(") = 'array'");
            for item in items {
                q.sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(doc,");
                push_json_path(q, segments);
                q.sql.push_str(") WHERE ");
                render_comparison(q, &Op::Eq, item, &Target::Elem);
                q.sql.push(')');
            }
            q.sql.push(')');
        }
        _ => q.sql.push('0'),
    }
}

fn render_cond(cond: &Cond, q: &mut SqlQuery) {
    if matches!(cond.op, Op::Size | Op::All) {
        render_whole_array(cond, q);
        return;
    }
    let Some(at) = cond.path.array_at else {
        render_comparison(q, &cond.op, &cond.value, &Target::for_path(&cond.path));
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
        // json_type says 'null' (not NULL) for a stored null, which does not exist either.
        let exists = cond.value.as_bool().unwrap_or(true);
        q.sql.push_str("(coalesce(json_type(doc,");
        push_json_path(q, array_part);
        q.sql.push_str(if exists {
            "),'null') != 'null')"
        } else {
            "),'null') = 'null')"
        });
        return;
    }
    q.sql.push_str(if negate {
        "NOT EXISTS (SELECT 1 FROM json_each(doc,"
    } else {
        "EXISTS (SELECT 1 FROM json_each(doc,"
    });
    push_json_path(q, array_part);
    q.sql.push_str(") WHERE ");
    let target = if rest.is_empty() {
        Target::Elem
    } else {
        Target::ElemPath(rest)
    };
    render_comparison(q, &op, &cond.value, &target);
    q.sql.push(')');
}

fn render_comparison(q: &mut SqlQuery, op: &Op, value: &Value, t: &Target<'_>) {
    match op {
        Op::Eq => render_in(q, t, std::slice::from_ref(value)),
        Op::In => render_in(
            q,
            t,
            value.as_array().map(Vec::as_slice).unwrap_or_default(),
        ),
        Op::Ne if value.is_null() => is_null(q, t, false),
        // The negations are exactly "not equal" / "not in", missing values included; they
        // cannot use an index either way.
        Op::Ne | Op::Nin => {
            q.sql.push_str("NOT coalesce(");
            if matches!(op, Op::Ne) {
                render_in(q, t, std::slice::from_ref(value));
            } else {
                render_in(
                    q,
                    t,
                    value.as_array().map(Vec::as_slice).unwrap_or_default(),
                );
            }
            q.sql.push_str(",0)");
        }
        Op::Gt => render_range(q, t, " > ", value),
        Op::Gte => render_range(q, t, " >= ", value),
        Op::Lt => render_range(q, t, " < ", value),
        Op::Lte => render_range(q, t, " <= ", value),
        Op::Exists => is_null(q, t, !value.as_bool().unwrap_or(true)),
        Op::Regex => render_regex(q, t, value),
        // Whole-array operators are rendered before any element target is chosen.
        Op::Size | Op::All => q.sql.push('0'),
    }
}

fn is_null(q: &mut SqlQuery, t: &Target<'_>, null: bool) {
    q.sql.push('(');
    t.value(q);
    q.sql
        .push_str(if null { " IS NULL)" } else { " IS NOT NULL)" });
}

/// "Equals one of `items`"; a null item stands for a missing or null value.
fn render_in(q: &mut SqlQuery, t: &Target<'_>, items: &[Value]) {
    let col = t.column_type();
    // Items grouped by the guard their comparison needs: numbers and plain text need none
    // (neither can equal an object's JSON text, and a number never equals text when no
    // column affinity is in play), so they share one `IN` that an index can serve.
    let mut plain = Vec::new();
    let mut json_like = Vec::new();
    let mut containers = Vec::new();
    let mut has_null = false;
    for item in items {
        match (kind(item), col) {
            (None, _) => has_null = true,
            // A column holds one type only (ids and dates as text, `_deleted` as 0/1), so a
            // value of another kind cannot equal it; comparing anyway would let the column's
            // affinity convert the value ('1' = 1). Columns hold no objects either.
            (Some(Kind::Text | Kind::JsonLikeText), Some(ColumnType::Text))
            | (Some(Kind::Number), Some(ColumnType::Int))
            | (Some(Kind::Text | Kind::Number), None) => plain.push(item),
            (Some(Kind::JsonLikeText), None) => json_like.push(item),
            (Some(Kind::Container), None) => containers.push(item),
            (Some(_), Some(_)) => {}
        }
    }
    let groups = [
        (plain, None),
        (json_like, Some("= 'text'")),
        (containers, Some("IN ('object','array')")),
    ];
    let parts = groups.iter().filter(|(g, _)| !g.is_empty()).count() + usize::from(has_null);
    if parts == 0 {
        q.sql.push('0');
        return;
    }
    if parts > 1 {
        q.sql.push('(');
    }
    let mut first = true;
    if has_null {
        is_null(q, t, true);
        first = false;
    }
    for (values, type_is) in groups.iter().filter(|(g, _)| !g.is_empty()) {
        if !first {
            q.sql.push_str(" OR ");
        }
        first = false;
        q.sql.push('(');
        t.value(q);
        if let [one] = values.as_slice() {
            q.sql.push_str(" = ");
            q.bind(SqlParam::from_json(one));
        } else {
            q.sql.push_str(" IN (");
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    q.sql.push(',');
                }
                q.bind(SqlParam::from_json(v));
            }
            q.sql.push(')');
        }
        if let Some(type_is) = type_is {
            q.sql.push_str(" AND ");
            t.json_type(q);
            q.sql.push(' ');
            q.sql.push_str(type_is);
        }
        q.sql.push(')');
    }
    if parts > 1 {
        q.sql.push(')');
    }
}

/// What an ordered comparison must also check about the stored value.
enum RangeGuard {
    None,
    /// The value is a number (or a boolean, which SQLite's JSON gives as 0/1).
    Number,
    /// The value is a JSON string, not an object's or array's text.
    Text,
}

/// An ordered comparison. Numbers compare with numbers and strings with strings; anything
/// else never matches, as in the matcher.
fn render_range(q: &mut SqlQuery, t: &Target<'_>, sym: &str, value: &Value) {
    let guard = match (t.column_type(), kind(value)) {
        (Some(ColumnType::Text), Some(Kind::Text | Kind::JsonLikeText))
        | (Some(ColumnType::Int), Some(Kind::Number)) => RangeGuard::None,
        // Text sorts above every number, so only `>`/`>=` need to keep text out.
        (None, Some(Kind::Number)) if sym.contains('>') => RangeGuard::Number,
        (None, Some(Kind::Number)) => RangeGuard::None,
        // Numbers sort below text and objects come back as text: keep only real strings.
        (None, Some(Kind::Text | Kind::JsonLikeText)) => RangeGuard::Text,
        // Null, objects and arrays are not ordered; a column of another type never matches.
        _ => {
            q.sql.push('0');
            return;
        }
    };
    q.sql.push('(');
    t.value(q);
    q.sql.push_str(sym);
    q.bind(SqlParam::from_json(value));
    match guard {
        RangeGuard::Number => {
            q.sql.push_str(" AND typeof(");
            t.value(q);
            q.sql.push_str(") IN ('integer','real')");
        }
        RangeGuard::Text => {
            q.sql.push_str(" AND ");
            t.json_type(q);
            q.sql.push_str(" = 'text'");
        }
        RangeGuard::None => {}
    }
    q.sql.push(')');
}

/// `REGEXP` (the store's function) on strings only: an object's JSON text must not match.
fn render_regex(q: &mut SqlQuery, t: &Target<'_>, value: &Value) {
    let Value::String(pattern) = value else {
        q.sql.push('0');
        return;
    };
    match t.column_type() {
        Some(ColumnType::Int) => q.sql.push('0'),
        Some(ColumnType::Text) => {
            q.sql.push('(');
            t.value(q);
            q.sql.push_str(" REGEXP ");
            q.bind(SqlParam::Text(pattern.clone()));
            q.sql.push(')');
        }
        None => {
            q.sql.push('(');
            t.json_type(q);
            q.sql.push_str(" = 'text' AND ");
            t.value(q);
            q.sql.push_str(" REGEXP ");
            q.bind(SqlParam::Text(pattern.clone()));
            q.sql.push(')');
        }
    }
}

/// Renders `ORDER BY …` for the sort keys, always ending with `_id` so pages are stable.
pub fn render_sqlite_order(sort: &[Sort], q: &mut SqlQuery) {
    q.sql.push_str(" ORDER BY ");
    render_sqlite_order_keys(sort, q);
}

/// The sort keys and the final `_id`, without `ORDER BY`, for a caller that orders by
/// something first (the full-text score).
pub fn render_sqlite_order_keys(sort: &[Sort], q: &mut SqlQuery) {
    for s in sort {
        Target::for_path(&s.path).value(q);
        q.sql.push_str(match s.dir {
            SortDir::Asc => " ASC, ",
            SortDir::Desc => " DESC, ",
        });
    }
    q.sql.push_str("_id ASC");
}

/// Turns a user's search text into an FTS5 query that cannot be a syntax error: every word
/// and every `"quoted phrase"` becomes an FTS5 string, so operators, parentheses, `*`, `:` or
/// `NEAR` in the text are just words. The meaning follows MongoDB's `$text`: any of the words
/// matches, a quoted phrase must be present, `-word` excludes. `None` when nothing is left to
/// look for.
pub fn fts5_query(text: &str) -> Option<String> {
    let terms = SearchTerms::parse(text);
    let quote = |list: &[&str]| -> Vec<String> { list.iter().map(|w| fts5_string(w)).collect() };
    let (words, phrases, excluded) = (
        quote(&terms.words),
        quote(&terms.phrases),
        quote(&terms.excluded),
    );
    let positive = match (words.is_empty(), phrases.is_empty()) {
        (true, true) => return None,
        (false, true) => format!("({})", words.join(" OR ")),
        (true, false) => format!("({})", phrases.join(" AND ")),
        // Phrases decide which documents match; the words only add to the score, which bm25
        // takes from every phrase of the query wherever it sits in the expression.
        (false, false) => {
            let required = phrases.join(" AND ");
            format!(
                "(({required}) OR (({required}) AND ({})))",
                words.join(" OR ")
            )
        }
    };
    if excluded.is_empty() {
        Some(positive)
    } else {
        Some(format!("{positive} NOT ({})", excluded.join(" OR ")))
    }
}

/// An FTS5 string literal: double quotes, inner quotes doubled.
fn fts5_string(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(f: &Filter) -> SqlQuery {
        let mut q = SqlQuery::default();
        render_sqlite_filter(f, &mut q);
        q
    }

    #[test]
    fn renders_conditions_with_bound_values() {
        let cases: Vec<(Filter, &str, Vec<SqlParam>)> = vec![
            (Filter::All, "1", vec![]),
            (
                Filter::cond(Path::plain("foo"), Op::Eq, json!("x")),
                "(json_extract(doc,'$.foo') = ?1)",
                vec![SqlParam::Text("x".into())],
            ),
            (
                Filter::cond(Path::plain("_deleted"), Op::Eq, json!(false)),
                "(_deleted = ?1)",
                vec![SqlParam::Int(0)],
            ),
            (
                Filter::cond(Path::plain("address.city"), Op::Ne, json!("A")),
                "NOT coalesce((json_extract(doc,'$.address.city') = ?1),0)",
                vec![SqlParam::Text("A".into())],
            ),
            (
                Filter::cond(Path::plain("n"), Op::In, json!([1, 2.5])),
                "(json_extract(doc,'$.n') IN (?1,?2))",
                vec![SqlParam::Int(1), SqlParam::Real(2.5)],
            ),
            (
                Filter::cond(Path::plain("n"), Op::In, json!([])),
                "0",
                vec![],
            ),
            (
                Filter::cond(Path::plain("n"), Op::In, json!([null, 3])),
                "((json_extract(doc,'$.n') IS NULL) OR (json_extract(doc,'$.n') = ?1))",
                vec![SqlParam::Int(3)],
            ),
            (
                Filter::cond(Path::plain("n"), Op::Gt, json!(3)),
                "(json_extract(doc,'$.n') > ?1 AND typeof(json_extract(doc,'$.n')) IN ('integer','real'))",
                vec![SqlParam::Int(3)],
            ),
            (
                Filter::cond(Path::plain("n"), Op::Lt, json!(3)),
                "(json_extract(doc,'$.n') < ?1)",
                vec![SqlParam::Int(3)],
            ),
            (
                Filter::cond(Path::plain("createdAt"), Op::Gte, json!("2020")),
                "(createdAt >= ?1)",
                vec![SqlParam::Text("2020".into())],
            ),
            (
                Filter::cond(Path::plain("createdAt"), Op::Gte, json!(5)),
                "0",
                vec![],
            ),
            (
                Filter::cond(Path::new("shmack", Some(0)), Op::Eq, json!("do")),
                "EXISTS (SELECT 1 FROM json_each(doc,'$.shmack') WHERE (value = ?1))",
                vec![SqlParam::Text("do".into())],
            ),
            (
                Filter::cond(
                    Path::new("composite_array.abar", Some(0)),
                    Op::Gte,
                    json!(3),
                ),
                "EXISTS (SELECT 1 FROM json_each(doc,'$.composite_array') WHERE (json_extract(CASE WHEN type = 'object' THEN value END,'$.abar') >= ?1 AND typeof(json_extract(CASE WHEN type = 'object' THEN value END,'$.abar')) IN ('integer','real')))",
                vec![SqlParam::Int(3)],
            ),
            (
                Filter::cond(Path::plain("foo"), Op::Eq, json!(null)),
                "(json_extract(doc,'$.foo') IS NULL)",
                vec![],
            ),
            (
                Filter::cond(Path::plain("foo"), Op::Regex, json!("(?i)x")),
                "(json_type(doc,'$.foo') = 'text' AND json_extract(doc,'$.foo') REGEXP ?1)",
                vec![SqlParam::Text("(?i)x".into())],
            ),
            (
                Filter::cond(Path::new("shmack", Some(0)), Op::Exists, json!(true)),
                "(coalesce(json_type(doc,'$.shmack'),'null') != 'null')",
                vec![],
            ),
        ];
        for (filter, sql, params) in cases {
            let q = render(&filter);
            assert_eq!(q.sql, sql);
            assert_eq!(q.params, params);
        }
    }

    #[test]
    fn renders_array_operators() {
        let tags = || Path::new("tags", Some(0));
        let ca = || Path::new("composite_array", Some(0));
        let cases: Vec<(Filter, &str, Vec<SqlParam>)> = vec![
            (
                Filter::cond(tags(), Op::Size, json!(2)),
                "(json_type(doc,'$.tags') = 'array' AND json_array_length(doc,'$.tags') = ?1)",
                vec![SqlParam::Int(2)],
            ),
            // Not a valid size (the parser never builds one): nothing matches.
            (Filter::cond(tags(), Op::Size, json!(-1)), "0", vec![]),
            (
                Filter::cond(tags(), Op::All, json!(["a", 3])),
                "(json_type(doc,'$.tags') = 'array' \
                 AND EXISTS (SELECT 1 FROM json_each(doc,'$.tags') WHERE (value = ?1)) \
                 AND EXISTS (SELECT 1 FROM json_each(doc,'$.tags') WHERE (value = ?2)))",
                vec![SqlParam::Text("a".into()), SqlParam::Int(3)],
            ),
            (Filter::cond(tags(), Op::All, json!([])), "0", vec![]),
            (
                Filter::ElemMatch {
                    path: Path::new("scores", Some(0)),
                    inner: Box::new(Filter::And(vec![
                        Filter::cond(Path::element(), Op::Gte, json!(80)),
                        Filter::cond(Path::element(), Op::Lt, json!(85)),
                    ])),
                },
                "(json_type(doc,'$.scores') = 'array' AND EXISTS (SELECT 1 FROM json_each(doc,'$.scores') \
                 WHERE ((value >= ?1 AND typeof(value) IN ('integer','real')) AND (value < ?2))))",
                vec![SqlParam::Int(80), SqlParam::Int(85)],
            ),
            (
                Filter::ElemMatch {
                    path: ca(),
                    inner: Box::new(Filter::And(vec![
                        Filter::cond(Path::plain("afoo"), Op::Eq, json!("x")),
                        Filter::Not(Box::new(Filter::cond(
                            Path::plain("abar"),
                            Op::Lt,
                            json!(3),
                        ))),
                    ])),
                },
                "(json_type(doc,'$.composite_array') = 'array' AND EXISTS (SELECT 1 FROM json_each(doc,'$.composite_array') \
                 WHERE ((json_extract(CASE WHEN type = 'object' THEN value END,'$.afoo') = ?1) \
                 AND NOT coalesce((json_extract(CASE WHEN type = 'object' THEN value END,'$.abar') < ?2),0))))",
                vec![SqlParam::Text("x".into()), SqlParam::Int(3)],
            ),
            // A system name inside $elemMatch is a field of the element, not a column.
            (
                Filter::ElemMatch {
                    path: ca(),
                    inner: Box::new(Filter::cond(Path::plain("_id"), Op::Eq, json!("a"))),
                },
                "(json_type(doc,'$.composite_array') = 'array' AND EXISTS (SELECT 1 FROM json_each(doc,'$.composite_array') \
                 WHERE (json_extract(CASE WHEN type = 'object' THEN value END,'$._id') = ?1)))",
                vec![SqlParam::Text("a".into())],
            ),
        ];
        for (filter, sql, params) in cases {
            let q = render(&filter);
            assert_eq!(q.sql, sql);
            assert_eq!(q.params, params);
        }
        // Unsafe array segments are bound here too.
        let f = Filter::ElemMatch {
            path: Path::new("a') OR 1=1 --", Some(0)),
            inner: Box::new(Filter::cond(Path::plain("x"), Op::Eq, json!(1))),
        };
        let q = render(&f);
        assert!(!q.sql.contains("OR 1=1"), "{}", q.sql);
        let f = Filter::cond(Path::new("a') OR 1=1 --", Some(0)), Op::Size, json!(1));
        assert!(!render(&f).sql.contains("OR 1=1"));
    }

    #[test]
    fn unsafe_segments_are_bound_not_spliced() {
        let f = Filter::cond(Path::plain("a') OR 1=1 --"), Op::Eq, json!(1));
        let q = render(&f);
        assert!(!q.sql.contains("OR 1=1"), "{}", q.sql);
        assert_eq!(q.params.len(), 2);
        let f = Filter::cond(Path::new("a') OR 1=1 --.x", Some(0)), Op::Eq, json!(1));
        let q = render(&f);
        assert!(!q.sql.contains("OR 1=1"), "{}", q.sql);
    }

    #[test]
    fn combinators_and_order() {
        let f = Filter::Or(vec![
            Filter::cond(Path::plain("a"), Op::Eq, json!(1)),
            Filter::Not(Box::new(Filter::cond(Path::plain("b"), Op::Lt, json!(2)))),
        ]);
        let mut q = render(&f);
        assert_eq!(
            q.sql,
            "((json_extract(doc,'$.a') = ?1) OR NOT coalesce((json_extract(doc,'$.b') < ?2),0))"
        );
        render_sqlite_order(
            &[Sort {
                path: Path::plain("createdAt"),
                dir: SortDir::Desc,
            }],
            &mut q,
        );
        assert!(q.sql.ends_with(" ORDER BY createdAt DESC, _id ASC"));
    }

    #[test]
    fn fts5_queries_quote_every_word() {
        let cases = [
            ("kubla", Some(r#"("kubla")"#)),
            ("  Kubla   khan ", Some(r#"("Kubla" OR "khan")"#)),
            (
                r#"a OR b* NEAR(x) "c:d"#,
                Some(r#"(("c:d") OR (("c:d") AND ("a" OR "OR" OR "b*" OR "NEAR(x)")))"#),
            ),
            (
                r#"say "hello world" -bye"#,
                Some(r#"(("hello world") OR (("hello world") AND ("say"))) NOT ("bye")"#),
            ),
            (r#"x"y"#, Some(r#"(("y") OR (("y") AND ("x")))"#)),
            ("", None),
            ("   ", None),
            ("-only", None),
            (r#""""#, None),
            ("-", Some(r#"("-")"#)),
        ];
        for (text, want) in cases {
            assert_eq!(fts5_query(text).as_deref(), want, "{text:?}");
        }
    }
}

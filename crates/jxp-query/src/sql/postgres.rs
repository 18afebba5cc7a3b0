//! PostgreSQL rendering of filters and sorts, with the matcher's meaning (the property test
//! runs it against a real server when one is configured).
//!
//! The document is a `json` column (its exact text: key order is kept, so objects compare by
//! their JSON text as the matcher and SQLite have it). Values are read through small SQL
//! functions the store creates (`PG_FUNCTIONS`): `jxp_num` gives a number or boolean as
//! `numeric` (booleans as 0/1, as the matcher orders them) and NULL for anything else, so a
//! number never meets text; strings are compared as text under the `"C"` collation (byte
//! order, as the matcher's `str::cmp`), each guarded by `json_typeof(...) = 'string'`.
//! Equality and ranges on strings keep the `(doc->'a'->>'b') COLLATE "C"` shape of the
//! store's expression indexes so those indexes serve them. Every parameter is bound as text
//! (`$N::text`) and cast in SQL where it needs another type.

use std::fmt::Write;

use jxp_model::is_ident;
use serde_json::Value;

use super::{SearchTerms, SqlParam, SqlQuery};
use crate::ast::{Cond, Filter, Op, Path, Sort, SortDir};

/// The helper functions the rendering relies on, created by the store in its schema (and by
/// the property test). All are plain SQL and immutable, so the planner inlines the scalar ones.
pub const PG_FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION jxp_num(j json) RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE json_typeof(j) WHEN 'number' THEN (j #>> '{}')::numeric
   WHEN 'boolean' THEN CASE WHEN (j #>> '{}') = 'true' THEN 1 ELSE 0 END END $$;
CREATE OR REPLACE FUNCTION jxp_rank(j json) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN json_typeof(j) IN ('number', 'boolean') THEN 1
   WHEN json_typeof(j) IN ('string', 'object', 'array') THEN 2 ELSE 0 END $$;
CREATE OR REPLACE FUNCTION jxp_text(j json) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN json_typeof(j) = 'string' THEN j #>> '{}'
   WHEN json_typeof(j) IN ('object', 'array') THEN j::text END $$;
CREATE OR REPLACE FUNCTION jxp_elems(j json) RETURNS SETOF json LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT e FROM json_array_elements(CASE WHEN json_typeof(j) = 'array' THEN j END) AS e $$;
CREATE OR REPLACE FUNCTION jxp_items(j json) RETURNS SETOF json LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT e FROM json_array_elements(CASE WHEN json_typeof(j) = 'array' THEN j END) AS e
   UNION ALL SELECT j WHERE json_typeof(j) <> 'array' $$;
"#;

/// `(doc->'a'->>'b')`: the text of the value at a dotted path of plain identifiers, in the
/// exact shape the renderer uses, for the store's expression indexes and text columns.
pub fn pg_doc_text(dotted: &str) -> Option<String> {
    let segments: Vec<String> = dotted.split('.').map(str::to_owned).collect();
    if !segments.iter().all(|s| is_ident(s)) {
        return None;
    }
    let mut q = SqlQuery::default();
    Target::Doc(&segments).text(&mut q);
    Some(q.sql)
}

/// Appends `->'a'->'b'` (the last hop `->>` when `last_text`); a segment that is not a plain
/// identifier is bound, never spliced.
fn push_hops(q: &mut SqlQuery, segments: &[String], last_text: bool) {
    for (i, s) in segments.iter().enumerate() {
        let op = if last_text && i + 1 == segments.len() {
            "->>"
        } else {
            "->"
        };
        q.sql.push_str(op);
        if is_ident(s) {
            let _ = write!(q.sql, "'{s}'");
        } else {
            q.bind_pg(SqlParam::Text(s.clone()));
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum ColumnType {
    Text,
    Bool,
}

/// The columns every model table has besides `doc`; the text ones are `COLLATE "C"`.
const COLUMNS: &[(&str, &str, ColumnType)] = &[
    ("_id", "_id", ColumnType::Text),
    ("id", "_id", ColumnType::Text),
    ("_owner_id", "_owner_id", ColumnType::Text),
    ("_deleted", "_deleted", ColumnType::Bool),
    ("createdAt", "createdAt", ColumnType::Text),
    ("updatedAt", "updatedAt", ColumnType::Text),
];

/// The current array element inside `EXISTS (SELECT 1 FROM jxp_items(..) AS jx(v) …)`.
const ELEM: &str = "jx.v";
/// The current element when it is an object, else NULL: the matcher finds no field below a
/// non-object (and `->` on an array would index it).
const ELEM_OBJECT: &str = "(CASE WHEN json_typeof(jx.v) = 'object' THEN jx.v END)";

enum Target<'a> {
    Column(&'static str, ColumnType),
    Doc(&'a [String]),
    Elem,
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

    /// The value as `json` (a column renders as itself).
    fn json(&self, q: &mut SqlQuery) {
        match self {
            Target::Column(col, _) => q.sql.push_str(col),
            Target::Doc(segments) => {
                q.sql.push_str("(doc");
                push_hops(q, segments, false);
                q.sql.push(')');
            }
            Target::Elem => q.sql.push_str(ELEM),
            Target::ElemPath(segments) => {
                q.sql.push('(');
                q.sql.push_str(ELEM_OBJECT);
                push_hops(q, segments, false);
                q.sql.push(')');
            }
        }
    }

    /// The value as text (a string's contents); only meaningful beside a type guard.
    fn text(&self, q: &mut SqlQuery) {
        match self {
            Target::Column(col, _) => q.sql.push_str(col),
            Target::Doc([]) => q.sql.push_str("(doc #>> '{}')"),
            Target::Doc(segments) => {
                q.sql.push_str("(doc");
                push_hops(q, segments, true);
                q.sql.push(')');
            }
            Target::Elem => {
                let _ = write!(q.sql, "({ELEM} #>> '{{}}')");
            }
            Target::ElemPath(segments) => {
                q.sql.push('(');
                q.sql.push_str(ELEM_OBJECT);
                push_hops(q, segments, true);
                q.sql.push(')');
            }
        }
    }

    /// `json_typeof(value)`: NULL when missing.
    fn typ(&self, q: &mut SqlQuery) {
        q.sql.push_str("json_typeof(");
        self.json(q);
        q.sql.push(')');
    }

    /// The value as `numeric` when it is a number or boolean, else NULL.
    fn num(&self, q: &mut SqlQuery) {
        match self {
            Target::Column(col, ColumnType::Bool) => {
                let _ = write!(q.sql, "({col}::int)");
            }
            Target::Column(..) => q.sql.push_str("NULL::numeric"),
            _ => {
                q.sql.push_str("jxp_num(");
                self.json(q);
                q.sql.push(')');
            }
        }
    }

    fn column_type(&self) -> Option<ColumnType> {
        match self {
            Target::Column(_, ty) => Some(*ty),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Number,
    Text,
    Container,
}

fn kind(v: &Value) -> Option<Kind> {
    match v {
        Value::Null => None,
        Value::Bool(_) | Value::Number(_) => Some(Kind::Number),
        Value::String(_) => Some(Kind::Text),
        Value::Array(_) | Value::Object(_) => Some(Kind::Container),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Doc,
    Elem,
}

/// Renders `filter` as a boolean SQL expression over a model table (columns unqualified).
pub fn render_pg_filter(filter: &Filter, q: &mut SqlQuery) {
    render_filter(filter, q, Scope::Doc);
}

fn render_filter(filter: &Filter, q: &mut SqlQuery, scope: Scope) {
    match filter {
        Filter::All => q.sql.push_str("TRUE"),
        Filter::And(parts) => join(q, parts, " AND ", "TRUE", scope),
        Filter::Or(parts) => join(q, parts, " OR ", "FALSE", scope),
        // NULL (a comparison with a missing value) reads as false, and must stay false under
        // a negation.
        Filter::Nor(parts) => {
            q.sql.push_str("NOT coalesce(");
            join(q, parts, " OR ", "FALSE", scope);
            q.sql.push_str(", FALSE)");
        }
        Filter::Not(inner) => {
            q.sql.push_str("NOT coalesce(");
            render_filter(inner, q, scope);
            q.sql.push_str(", FALSE)");
        }
        Filter::Cond(cond) => match scope {
            Scope::Doc => render_cond(cond, q),
            Scope::Elem => render_elem_cond(cond, q),
        },
        Filter::ElemMatch { .. } if scope == Scope::Elem => q.sql.push_str("FALSE"),
        Filter::ElemMatch { path, inner } => {
            q.sql.push_str("EXISTS (SELECT 1 FROM jxp_elems(");
            Target::Doc(&path.segments).json(q);
            q.sql.push_str(") AS jx(v) WHERE ");
            render_filter(inner, q, Scope::Elem);
            q.sql.push(')');
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

fn render_elem_cond(cond: &Cond, q: &mut SqlQuery) {
    if matches!(cond.op, Op::Size | Op::All) {
        q.sql.push_str("FALSE");
        return;
    }
    let target = if cond.path.segments.is_empty() {
        Target::Elem
    } else {
        Target::ElemPath(&cond.path.segments)
    };
    render_comparison(q, &cond.op, &cond.value, &target);
}

/// `$size` and `$all` on the array at the full path; only a real array qualifies.
fn render_whole_array(cond: &Cond, q: &mut SqlQuery) {
    let array = Target::Doc(&cond.path.segments);
    match cond.op {
        Op::Size => {
            let Some(n) = cond.value.as_u64().and_then(|n| i64::try_from(n).ok()) else {
                q.sql.push_str("FALSE");
                return;
            };
            q.sql.push_str("(SELECT count(*) FROM jxp_elems(");
            array.json(q);
            q.sql.push_str(")) = ");
            q.bind_pg(SqlParam::Int(n));
            q.sql.push_str("::bigint AND ");
            array.typ(q);
            q.sql.push_str(" = 'array'");
        }
        Op::All => {
            let items = cond.value.as_array().map(Vec::as_slice).unwrap_or_default();
            if items.is_empty() {
                q.sql.push_str("FALSE");
                return;
            }
            q.sql.push('(');
            array.typ(q);
            q.sql.push_str(" = 'array'");
            for item in items {
                q.sql.push_str(" AND EXISTS (SELECT 1 FROM jxp_elems(");
                array.json(q);
                q.sql.push_str(") AS jx(v) WHERE ");
                render_comparison(q, &Op::Eq, item, &Target::Elem);
                q.sql.push(')');
            }
            q.sql.push(')');
        }
        _ => q.sql.push_str("FALSE"),
    }
}

fn render_cond(cond: &Cond, q: &mut SqlQuery) {
    if matches!(cond.op, Op::Size | Op::All) {
        q.sql.push('(');
        render_whole_array(cond, q);
        q.sql.push(')');
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
    let (negate, op) = match cond.op {
        Op::Ne => (true, Op::Eq),
        Op::Nin => (true, Op::In),
        ref op => (false, op.clone()),
    };
    let array = Target::Doc(array_part);
    if matches!(op, Op::Exists) && rest.is_empty() {
        let exists = cond.value.as_bool().unwrap_or(true);
        q.sql.push_str("(coalesce(");
        array.typ(q);
        q.sql.push_str(if exists {
            ", 'null') <> 'null')"
        } else {
            ", 'null') = 'null')"
        });
        return;
    }
    // The elements of an array, or a scalar as its one element, as the matcher has it.
    q.sql.push_str(if negate {
        "NOT EXISTS (SELECT 1 FROM jxp_items("
    } else {
        "EXISTS (SELECT 1 FROM jxp_items("
    });
    array.json(q);
    q.sql.push_str(") AS jx(v) WHERE ");
    let target = if rest.is_empty() {
        Target::Elem
    } else {
        Target::ElemPath(rest)
    };
    render_comparison(q, &op, &cond.value, &target);
    q.sql.push(')');
}

fn render_comparison(q: &mut SqlQuery, op: &Op, value: &Value, t: &Target<'_>) {
    let list = || value.as_array().map(Vec::as_slice).unwrap_or_default();
    match op {
        Op::Eq => render_in(q, t, std::slice::from_ref(value)),
        Op::In => render_in(q, t, list()),
        Op::Ne if value.is_null() => is_null(q, t, false),
        Op::Ne => {
            q.sql.push_str("NOT coalesce(");
            render_in(q, t, std::slice::from_ref(value));
            q.sql.push_str(", FALSE)");
        }
        Op::Nin => {
            q.sql.push_str("NOT coalesce(");
            render_in(q, t, list());
            q.sql.push_str(", FALSE)");
        }
        Op::Gt => render_range(q, t, " > ", value),
        Op::Gte => render_range(q, t, " >= ", value),
        Op::Lt => render_range(q, t, " < ", value),
        Op::Lte => render_range(q, t, " <= ", value),
        Op::Exists => is_null(q, t, !value.as_bool().unwrap_or(true)),
        Op::Regex => render_regex(q, t, value),
        Op::Size | Op::All => q.sql.push_str("FALSE"),
    }
}

/// Missing or JSON null (`null`), or present and not null.
fn is_null(q: &mut SqlQuery, t: &Target<'_>, null: bool) {
    q.sql.push('(');
    if t.column_type().is_some() {
        t.json(q);
        q.sql
            .push_str(if null { " IS NULL)" } else { " IS NOT NULL)" });
        return;
    }
    q.sql.push_str("coalesce(");
    t.typ(q);
    q.sql.push_str(if null {
        ", 'null') = 'null')"
    } else {
        ", 'null') <> 'null')"
    });
}

fn bind_list(q: &mut SqlQuery, values: &[&Value], cast: &str) {
    if let [one] = values {
        q.sql.push_str(" = ");
        q.bind_pg(SqlParam::from_json(one));
        q.sql.push_str(cast);
        return;
    }
    q.sql.push_str(" IN (");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            q.sql.push(',');
        }
        q.bind_pg(SqlParam::from_json(v));
        q.sql.push_str(cast);
    }
    q.sql.push(')');
}

/// "Equals one of `items`"; a null item stands for a missing or null value.
fn render_in(q: &mut SqlQuery, t: &Target<'_>, items: &[Value]) {
    let col = t.column_type();
    let mut numbers = Vec::new();
    let mut texts = Vec::new();
    let mut containers = Vec::new();
    let mut has_null = false;
    for item in items {
        match (kind(item), col) {
            (None, _) => has_null = true,
            (Some(Kind::Number), None | Some(ColumnType::Bool)) => numbers.push(item),
            (Some(Kind::Text), None | Some(ColumnType::Text)) => texts.push(item),
            (Some(Kind::Container), None) => containers.push(item),
            _ => {}
        }
    }
    let parts = [
        !numbers.is_empty(),
        !texts.is_empty(),
        !containers.is_empty(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
        + usize::from(has_null);
    if parts == 0 {
        q.sql.push_str("FALSE");
        return;
    }
    q.sql.push('(');
    let sep = |q: &mut SqlQuery, first: &mut bool| {
        if !*first {
            q.sql.push_str(" OR ");
        }
        *first = false;
    };
    let mut first = true;
    if has_null {
        sep(q, &mut first);
        is_null(q, t, true);
    }
    if !numbers.is_empty() {
        sep(q, &mut first);
        q.sql.push('(');
        t.num(q);
        bind_list(q, &numbers, "::numeric");
        q.sql.push(')');
    }
    if !texts.is_empty() {
        sep(q, &mut first);
        q.sql.push('(');
        if col.is_some() {
            t.text(q);
            bind_list(q, &texts, "");
        } else {
            t.text(q);
            q.sql.push_str(" COLLATE \"C\"");
            bind_list(q, &texts, "");
            q.sql.push_str(" AND ");
            t.typ(q);
            q.sql.push_str(" = 'string'");
        }
        q.sql.push(')');
    }
    if !containers.is_empty() {
        sep(q, &mut first);
        q.sql.push('(');
        t.typ(q);
        q.sql.push_str(" IN ('object','array') AND ");
        t.json(q);
        q.sql.push_str("::text");
        bind_list(q, &containers, "");
        q.sql.push(')');
    }
    q.sql.push(')');
}

/// An ordered comparison: numbers with numbers, strings with strings (byte order), nothing
/// else.
fn render_range(q: &mut SqlQuery, t: &Target<'_>, sym: &str, value: &Value) {
    let col = t.column_type();
    match (kind(value), col) {
        (Some(Kind::Number), None | Some(ColumnType::Bool)) => {
            q.sql.push('(');
            t.num(q);
            q.sql.push_str(sym);
            q.bind_pg(SqlParam::from_json(value));
            q.sql.push_str("::numeric)");
        }
        (Some(Kind::Text), Some(ColumnType::Text)) => {
            q.sql.push('(');
            t.text(q);
            q.sql.push_str(sym);
            q.bind_pg(SqlParam::from_json(value));
            q.sql.push(')');
        }
        (Some(Kind::Text), None) => {
            q.sql.push('(');
            t.text(q);
            q.sql.push_str(" COLLATE \"C\"");
            q.sql.push_str(sym);
            q.bind_pg(SqlParam::from_json(value));
            q.sql.push_str(" AND ");
            t.typ(q);
            q.sql.push_str(" = 'string')");
        }
        _ => q.sql.push_str("FALSE"),
    }
}

/// PostgreSQL's `~` on strings only. A pattern the `regex` crate refuses (or that exceeds its
/// size limit) matches nothing, as in the matcher.
fn render_regex(q: &mut SqlQuery, t: &Target<'_>, value: &Value) {
    let Value::String(pattern) = value else {
        q.sql.push_str("FALSE");
        return;
    };
    if regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .is_err()
    {
        q.sql.push_str("FALSE");
        return;
    }
    let pattern = pg_pattern(pattern);
    match t.column_type() {
        Some(ColumnType::Bool) => q.sql.push_str("FALSE"),
        // The database's own collation decides case folding (`"C"` folds ASCII only).
        Some(ColumnType::Text) => {
            q.sql.push('(');
            t.text(q);
            q.sql.push_str(" COLLATE \"default\" ~ ");
            q.bind_pg(SqlParam::Text(pattern));
            q.sql.push(')');
        }
        None => {
            q.sql.push('(');
            t.typ(q);
            q.sql.push_str(" = 'string' AND ");
            t.text(q);
            q.sql.push_str(" ~ ");
            q.bind_pg(SqlParam::Text(pattern));
            q.sql.push(')');
        }
    }
}

/// A `regex`-crate pattern with its leading flags (`(?ims)`, as the query parser folds them
/// in) rewritten for PostgreSQL, which differs around newlines: Rust's `.` does not match a
/// newline unless `s`, but its `[^a]` does, and no PostgreSQL option says exactly that; so
/// each `.` outside brackets becomes `[^\n]` (unless `s`), and the options are PostgreSQL's
/// `w` with `m` (`^`/`$` also at line breaks) or none of the newline ones without it. `i` and
/// `x` mean the same in both.
fn pg_pattern(pattern: &str) -> String {
    let (flags, body) = match pattern.strip_prefix("(?").and_then(|r| r.split_once(')')) {
        Some((flags, body))
            if !flags.is_empty() && flags.chars().all(|c| matches!(c, 'i' | 'm' | 's' | 'x')) =>
        {
            (flags, body)
        }
        _ => ("", pattern),
    };
    let mut options = String::new();
    if flags.contains('m') {
        options.push('w');
    }
    for f in ['i', 'x'] {
        if flags.contains(f) {
            options.push(f);
        }
    }
    let body = if flags.contains('s') {
        body.to_owned()
    } else {
        dots_without_newline(body)
    };
    if options.is_empty() {
        body
    } else {
        format!("(?{options}){body}")
    }
}

/// Replaces every `.` outside a bracket expression (and not escaped) with `[^\n]`.
fn dots_without_newline(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    let mut in_brackets = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '[' if !in_brackets => {
                in_brackets = true;
                out.push(c);
                // A `]` first (after an optional `^`) is a member, not the end.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if in_brackets => {
                in_brackets = false;
                out.push(c);
            }
            '.' if !in_brackets => out.push_str("[^\\n]"),
            _ => out.push(c),
        }
    }
    out
}

/// Renders ` ORDER BY …` for the sort keys, always ending with `_id` so pages are stable.
pub fn render_pg_order(sort: &[Sort], q: &mut SqlQuery) {
    q.sql.push_str(" ORDER BY ");
    render_pg_order_keys(sort, q);
}

/// The sort keys and the final `_id`, without `ORDER BY`. Values order as SQLite orders what
/// `json_extract` gives: missing and null first, then numbers (booleans as 0/1), then strings
/// and the JSON text of objects and arrays, byte-wise.
pub fn render_pg_order_keys(sort: &[Sort], q: &mut SqlQuery) {
    for s in sort {
        let dir = match s.dir {
            SortDir::Asc => " ASC NULLS FIRST, ",
            SortDir::Desc => " DESC NULLS LAST, ",
        };
        let t = Target::for_path(&s.path);
        if t.column_type().is_some() {
            t.json(q);
            q.sql.push_str(dir);
            continue;
        }
        for f in ["jxp_rank(", "jxp_num(", "jxp_text("] {
            q.sql.push_str(f);
            t.json(q);
            q.sql.push(')');
            if f == "jxp_text(" {
                q.sql.push_str(" COLLATE \"C\"");
            }
            q.sql.push_str(dir);
        }
    }
    q.sql.push_str("_id ASC");
}

/// Turns a user's search text into a `tsquery` expression over bound parameters (text search
/// configuration `simple`: lower-cased words, no stemming), or `None` when nothing is left to
/// look for. Each word and phrase goes through `phraseto_tsquery`, so no input is a syntax
/// error. Any word matches, every phrase must be present, `-word` excludes. The expression
/// uses numbered parameters, so it can appear twice in one statement (match and rank).
pub fn pg_text_search(text: &str, q: &mut SqlQuery) -> Option<String> {
    let terms = SearchTerms::parse(text);
    if terms.words.is_empty() && terms.phrases.is_empty() {
        return None;
    }
    let mut part = |list: &[&str], sep: &str| -> String {
        let mut out = Vec::new();
        for item in list {
            let mut p = SqlQuery {
                sql: String::new(),
                params: std::mem::take(&mut q.params),
            };
            p.bind_pg(SqlParam::Text((*item).to_owned()));
            q.params = p.params;
            out.push(format!("phraseto_tsquery('simple', {})", p.sql));
        }
        format!("({})", out.join(sep))
    };
    let words = part(&terms.words, " || ");
    let phrases = part(&terms.phrases, " && ");
    let excluded = part(&terms.excluded, " || ");
    let positive = match (terms.words.is_empty(), terms.phrases.is_empty()) {
        (false, true) => words,
        (true, _) => phrases,
        (false, false) => format!("({phrases} && ({phrases} || {words}))"),
    };
    Some(if terms.excluded.is_empty() {
        positive
    } else {
        format!("({positive} && !!{excluded})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(f: &Filter) -> SqlQuery {
        let mut q = SqlQuery::default();
        render_pg_filter(f, &mut q);
        q
    }

    #[test]
    fn renders_index_shaped_comparisons_with_bound_values() {
        let q = render(&Filter::cond(Path::plain("a.b"), Op::Eq, json!("x")));
        assert_eq!(
            q.sql,
            "(((doc->'a'->>'b') COLLATE \"C\" = $1::text AND json_typeof((doc->'a'->'b')) = 'string'))"
        );
        assert_eq!(pg_doc_text("a.b").as_deref(), Some("(doc->'a'->>'b')"));
        let q = render(&Filter::cond(Path::plain("_deleted"), Op::Eq, json!(false)));
        assert_eq!(q.sql, "(((_deleted::int) = $1::text::numeric))");
        assert_eq!(q.params, vec![SqlParam::Int(0)]);
        let q = render(&Filter::cond(Path::plain("n"), Op::Gt, json!(2.5)));
        assert_eq!(q.sql, "(jxp_num((doc->'n')) > $1::text::numeric)");
    }

    #[test]
    fn unsafe_segments_are_bound_not_spliced() {
        let f = Filter::cond(Path::plain("a') OR 1=1 --"), Op::Eq, json!(1));
        let q = render(&f);
        assert!(!q.sql.contains("OR 1=1"), "{}", q.sql);
        let f = Filter::cond(Path::new("a') OR 1=1 --.x", Some(0)), Op::Size, json!(1));
        assert!(!render(&f).sql.contains("OR 1=1"));
        assert_eq!(pg_doc_text("a'b"), None);
    }

    #[test]
    fn regex_flags_become_embedded_options() {
        assert_eq!(pg_pattern("a.b"), r"a[^\n]b");
        assert_eq!(pg_pattern("(?i)foo"), "(?i)foo");
        assert_eq!(pg_pattern("(?ms)^.$"), "(?w)^.$");
        assert_eq!(pg_pattern("(?m)^x."), r"(?w)^x[^\n]");
        assert_eq!(pg_pattern("(?s)a.b"), "a.b");
        assert_eq!(pg_pattern("(?:a)b"), "(?:a)b");
        assert_eq!(pg_pattern(r"\.[.\]][].]."), r"\.[.\]][].][^\n]");
    }

    #[test]
    fn text_search_binds_every_word() {
        let mut q = SqlQuery::default();
        let expr = pg_text_search(r#"say "hello world" -bye"#, &mut q).unwrap_or_default();
        assert_eq!(
            expr,
            "(((phraseto_tsquery('simple', $2::text)) && ((phraseto_tsquery('simple', $2::text)) || (phraseto_tsquery('simple', $1::text)))) && !!(phraseto_tsquery('simple', $3::text)))"
        );
        assert_eq!(
            q.params,
            vec![
                SqlParam::Text("say".into()),
                SqlParam::Text("hello world".into()),
                SqlParam::Text("bye".into())
            ]
        );
        assert_eq!(pg_text_search("  -x ", &mut SqlQuery::default()), None);
    }
}

//! PostgreSQL's spelling of the filter walk ([`super::walk`]), and its sorts and full-text
//! queries, with the matcher's meaning (the property test runs it against a real server when
//! one is configured).
//!
//! The document is a `jsonb` column, `doc`, which its operators read without parsing text;
//! `jsonb` sorts object keys, so the text the document was written with is kept beside it in
//! `body`, and objects, which the matcher and SQLite compare by that text (key order
//! included), are compared and sorted by it. Values are read through small SQL functions the
//! store creates (`PG_FUNCTIONS`): `jxp_num` gives a number or boolean as `numeric` (booleans
//! as 0/1, as the matcher orders them) and NULL for anything else, so a number never meets
//! text; strings are compared as text under the `"C"` collation (byte order, as the
//! matcher's `str::cmp`), each guarded by `jsonb_typeof(...) = 'string'`.
//! Equality and ranges on strings keep the `(doc->'a'->>'b') COLLATE "C"` shape of the
//! store's expression indexes so those indexes serve them. Every parameter is bound as text
//! (`$N::text`) and cast in SQL where it needs another type.

use std::fmt::Write;

use jxp_model::is_ident;
use serde_json::Value;

use super::walk::{self, ColumnType, Dialect, Elements, Kind, Target, bind_list, kind};
use super::{GeneratedKind, SearchTerms, SqlParam, SqlQuery};
use crate::ast::SortDir;

/// The helper functions the rendering relies on, created by the store in its schema (and by
/// the property test). All are plain SQL and immutable, so the planner inlines the scalar ones.
/// A number is taken from `jsonb` with the `jsonb` → `numeric` cast, which copies the stored
/// `numeric` (value and scale alike), rather than printed as text and parsed again: a filter
/// on a field without an index, which reads every row, ran in about 60% of the time.
pub const PG_FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION jxp_num(j jsonb) RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE jsonb_typeof(j) WHEN 'number' THEN j::numeric
   WHEN 'boolean' THEN CASE WHEN j = 'true'::jsonb THEN 1 ELSE 0 END END $$;
CREATE OR REPLACE FUNCTION jxp_elems(j jsonb) RETURNS SETOF jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT e FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j) = 'array' THEN j END) AS e $$;
DO $$ BEGIN
  CREATE TYPE jxp_sort_key AS (rank integer, num numeric, txt text COLLATE "C");
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE OR REPLACE FUNCTION jxp_key(j jsonb, body text, path text[]) RETURNS jxp_sort_key
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE jsonb_typeof(j)
    WHEN 'number' THEN ROW(1, j::numeric, NULL)::jxp_sort_key
    WHEN 'boolean' THEN ROW(1, CASE WHEN j = 'true'::jsonb THEN 1 ELSE 0 END, NULL)::jxp_sort_key
    WHEN 'string' THEN ROW(2, NULL, j #>> '{}')::jxp_sort_key
    WHEN 'object' THEN ROW(2, NULL, (body::json #> path)::text)::jxp_sort_key
    WHEN 'array' THEN ROW(2, NULL, (body::json #> path)::text)::jxp_sort_key
    ELSE ROW(0, NULL, NULL)::jxp_sort_key END $$;
CREATE OR REPLACE FUNCTION jxp_items(j jsonb) RETURNS SETOF jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT e FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j) = 'array' THEN j END) AS e
   UNION ALL SELECT j WHERE jsonb_typeof(j) <> 'array' $$;
"#;

/// The segments of a dotted path, if each is a plain identifier (and so may be written into
/// SQL).
fn plain_segments(dotted: &str) -> Option<Vec<String>> {
    let segments: Vec<String> = dotted.split('.').map(str::to_owned).collect();
    segments.iter().all(|s| is_ident(s)).then_some(segments)
}

/// `(doc->'a'->>'b')`: the text of the value at a dotted path of plain identifiers, in the
/// exact shape the renderer uses, for the store's expression indexes and text columns.
pub fn pg_doc_text(dotted: &str) -> Option<String> {
    let segments = plain_segments(dotted)?;
    let mut q = SqlQuery::default();
    text(&mut q, &Target::Doc(&segments));
    Some(q.sql)
}

/// What a generated column of `kind` computes from the document at a dotted path of plain
/// identifiers: exactly the value the renderer compares for that path (a string's text under
/// its type guard; a number as `jxp_num` reads it), written out so that the column depends on
/// none of the store's functions.
pub fn pg_generated_expr(dotted: &str, kind: GeneratedKind) -> Option<String> {
    let segments = plain_segments(dotted)?;
    let t = Target::Doc(&segments);
    let mut q = SqlQuery::default();
    match kind {
        GeneratedKind::Text => {
            q.sql.push_str("CASE WHEN ");
            typ(&mut q, &t);
            q.sql.push_str(" = 'string' THEN ");
            text(&mut q, &t);
            q.sql.push_str(" END");
            Some(q.sql)
        }
        GeneratedKind::Number => {
            json(&mut q, &t);
            let j = q.sql;
            // As `jxp_num` reads it: the `numeric` cast copies the stored number rather than
            // printing and parsing it (every write computes this, about 0.1 µs less a row).
            Some(format!(
                "CASE jsonb_typeof({j}) WHEN 'number' THEN ({j})::numeric \
                 WHEN 'boolean' THEN CASE WHEN {j} = 'true'::jsonb THEN 1 ELSE 0 END END"
            ))
        }
        GeneratedKind::Integer => {
            json(&mut q, &t);
            let j = q.sql;
            // Nested, as the order a condition's parts are evaluated in is PostgreSQL's to
            // choose: a cast to `numeric` of what is not a number would fail the write.
            // `jsonb` keeps the scale a number was written with (the store writes a whole
            // float with its `.0`), so a scale of 0 is an integer as the document holds it.
            Some(format!(
                "CASE WHEN jsonb_typeof({j}) = 'number' THEN \
                 CASE WHEN scale(({j})::numeric) = 0 AND abs(({j})::numeric) < 1e18 \
                 THEN ({j})::numeric::int8 END END"
            ))
        }
    }
}

/// The check that the document holds nothing but `kind` (or null, or nothing) at a dotted
/// path of plain identifiers (numbers: no booleans either, which validation casts to 0 and
/// 1): where it holds, the generated column of that kind orders the documents as `jxp_key`
/// does (missing and null first, then the values), so a sort on the path can read the
/// column, and an index on it; and a grouping reads the value and its type from the column.
/// (An `Integer` column is checked by the `Number` column beside it; the store gives it no
/// constraint of its own.)
pub fn pg_generated_check(dotted: &str, kind: GeneratedKind) -> Option<String> {
    let segments = plain_segments(dotted)?;
    let mut q = SqlQuery::default();
    typ(&mut q, &Target::Doc(&segments));
    q.sql.push_str(match kind {
        GeneratedKind::Text => " IN ('string', 'null')",
        GeneratedKind::Number | GeneratedKind::Integer => " IN ('number', 'null')",
    });
    Some(q.sql)
}

/// The quoted generated column that holds the document's value at `t` as `kind`, if the
/// table has one.
fn generated(q: &SqlQuery, t: &Target<'_>, kind: GeneratedKind) -> Option<String> {
    let Target::Doc(segments) = t else {
        return None;
    };
    let column = q.generated.as_deref()?.find(segments, |c| c.kind == kind)?;
    Some(format!("\"{column}\""))
}

/// The value as `numeric` ([`num`]), read from the generated column that holds it if any.
fn num_or_generated(q: &mut SqlQuery, t: &Target<'_>) {
    match generated(q, t, GeneratedKind::Number) {
        Some(column) => q.sql.push_str(&column),
        None => num(q, t),
    }
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

/// `(source->'a'->'b')`, or with `last_text` `(source->'a'->>'b')`.
fn read_path(q: &mut SqlQuery, source: &str, segments: &[String], last_text: bool) {
    q.sql.push('(');
    q.sql.push_str(source);
    push_hops(q, segments, last_text);
    q.sql.push(')');
}

/// The current array element inside `EXISTS (SELECT 1 FROM jxp_items(..) AS jx(v) …)`.
const ELEM: &str = "jx.v";
/// The current element when it is an object, else NULL: the matcher finds no field below a
/// non-object (and `->` on an array would index it).
const ELEM_OBJECT: &str = "(CASE WHEN jsonb_typeof(jx.v) = 'object' THEN jx.v END)";

/// The value as `jsonb` (a column renders as itself; the text ones are `COLLATE "C"`).
fn json(q: &mut SqlQuery, t: &Target<'_>) {
    match t {
        Target::Column(col, _) => q.sql.push_str(col),
        Target::Doc(segments) => read_path(q, "doc", segments, false),
        Target::Elem => q.sql.push_str(ELEM),
        Target::ElemPath(segments) => read_path(q, ELEM_OBJECT, segments, false),
    }
}

/// The value as text (a string's contents); only meaningful beside a type guard.
fn text(q: &mut SqlQuery, t: &Target<'_>) {
    match t {
        Target::Column(col, _) => q.sql.push_str(col),
        Target::Doc([]) => q.sql.push_str("(doc #>> '{}')"),
        Target::Doc(segments) => read_path(q, "doc", segments, true),
        Target::Elem => {
            let _ = write!(q.sql, "({ELEM} #>> '{{}}')");
        }
        Target::ElemPath(segments) => read_path(q, ELEM_OBJECT, segments, true),
    }
}

/// `jsonb_typeof(value)`: NULL when missing.
fn typ(q: &mut SqlQuery, t: &Target<'_>) {
    q.sql.push_str("jsonb_typeof(");
    json(q, t);
    q.sql.push(')');
}

/// The value as `numeric` when it is a number or boolean, else NULL. `jxp_num` is plain
/// SQL, inlined by the planner: each `->` on `jsonb` is a lookup in the stored binary form,
/// not a parse, so repeating it for the type and the text costs little.
fn num(q: &mut SqlQuery, t: &Target<'_>) {
    match t {
        Target::Column(col, ColumnType::Flag) => {
            let _ = write!(q.sql, "({col}::int)");
        }
        Target::Column(..) => q.sql.push_str("NULL::numeric"),
        _ => {
            q.sql.push_str("jxp_num(");
            json(q, t);
            q.sql.push(')');
        }
    }
}

/// `ARRAY['a', 'b']`: a document path as `text[]`, for `#>` on the document's text; a
/// segment that is not a plain identifier is bound, never spliced.
fn path_array(q: &mut SqlQuery, segments: &[String]) {
    q.sql.push_str("ARRAY[");
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            q.sql.push_str(", ");
        }
        if is_ident(s) {
            let _ = write!(q.sql, "'{s}'");
        } else {
            q.bind_pg(SqlParam::Text(s.clone()));
        }
    }
    q.sql.push_str("]::text[]");
}

/// Opens `(jsonb_typeof(t) <type_is> AND `, for a comparison that holds for one JSON type.
fn type_guard(q: &mut SqlQuery, t: &Target<'_>, type_is: &str) {
    q.sql.push('(');
    typ(q, t);
    q.sql.push(' ');
    q.sql.push_str(type_is);
    q.sql.push_str(" AND ");
}

/// `(t <cmp>)` on a string: under the `"C"` collation and guarded as a JSON string for a
/// document value, in the shape of the store's expression indexes; as is for a text column,
/// generated ones included (a generated column is NULL where the value is not a string).
fn string_cmp(q: &mut SqlQuery, t: &Target<'_>, cmp: impl FnOnce(&mut SqlQuery)) {
    q.sql.push('(');
    if let Some(column) = generated(q, t, GeneratedKind::Text) {
        q.sql.push_str(&column);
        cmp(q);
        q.sql.push(')');
        return;
    }
    text(q, t);
    let column = t.column_type().is_some();
    if !column {
        q.sql.push_str(" COLLATE \"C\"");
    }
    cmp(q);
    if !column {
        q.sql.push_str(" AND ");
        typ(q, t);
        q.sql.push_str(" = 'string'");
    }
    q.sql.push(')');
}

/// The equality groups: numbers (booleans as 0/1), strings, objects and arrays.
const NUMBERS: usize = 0;
const STRINGS: usize = 1;
const CONTAINERS: usize = 2;

/// The PostgreSQL dialect: `json` hops (`->`, `->>`), the `jxp_*` functions of
/// [`PG_FUNCTIONS`] for numbers and elements, `$N::text` placeholders cast where needed, and
/// `~` for regular expressions.
pub(super) struct Postgres;

impl Dialect for Postgres {
    const TRUE: &'static str = "TRUE";
    const FALSE: &'static str = "FALSE";
    const OR_FALSE: &'static str = ", FALSE)";
    // `jxp_elems` yields nothing for a non-array.
    const ELEM_MATCH_CHECKS_ARRAY: bool = false;
    const EQUALITY_ALWAYS_WRAPPED: bool = true;

    fn bind(q: &mut SqlQuery, p: SqlParam) {
        q.bind_pg(p);
    }

    /// The value as `json`; only a column or a missing value is SQL NULL.
    fn value(q: &mut SqlQuery, t: &Target<'_>) {
        json(q, t);
    }

    fn json_type(q: &mut SqlQuery, t: &Target<'_>) {
        typ(q, t);
    }

    /// The elements of an array, or with [`Elements::Items`] a scalar as its one element,
    /// as the matcher has it.
    fn elements(q: &mut SqlQuery, segments: &[String], which: Elements) {
        q.sql.push_str(match which {
            Elements::Array => "jxp_elems(",
            Elements::Items => "jxp_items(",
        });
        json(q, &Target::Doc(segments));
        q.sql.push_str(") AS jx(v)");
    }

    fn array_size(q: &mut SqlQuery, segments: &[String], n: i64) {
        q.sql.push_str("((SELECT count(*) FROM jxp_elems(");
        json(q, &Target::Doc(segments));
        q.sql.push_str(")) = ");
        q.bind_pg(SqlParam::Int(n));
        q.sql.push_str("::bigint AND ");
        walk::is_array::<Self>(q, segments);
        q.sql.push(')');
    }

    fn missing_or_null(q: &mut SqlQuery, t: &Target<'_>, null: bool) {
        q.sql.push_str("(coalesce(");
        typ(q, t);
        q.sql.push_str(if null {
            ", 'null') = 'null')"
        } else {
            ", 'null') <> 'null')"
        });
    }

    /// Missing or JSON null (`null`), or present and not null.
    fn is_null(q: &mut SqlQuery, t: &Target<'_>, null: bool) {
        if t.column_type().is_none() {
            Self::missing_or_null(q, t, null);
            return;
        }
        walk::is_sql_null::<Self>(q, t, null);
    }

    /// Objects and arrays compare by their JSON text.
    fn equality_group(kind: Kind, column: Option<ColumnType>) -> Option<usize> {
        match (kind, column) {
            (Kind::Number, None | Some(ColumnType::Flag)) => Some(NUMBERS),
            (Kind::Text | Kind::JsonLikeText, None | Some(ColumnType::Text)) => Some(STRINGS),
            (Kind::Container, None) => Some(CONTAINERS),
            _ => None,
        }
    }

    fn equality(q: &mut SqlQuery, t: &Target<'_>, group: usize, values: &[&Value]) {
        match group {
            // A flag compared with booleans only is compared as the `boolean` it is, so the
            // planner reads the column's statistics (`_deleted::int = 0::numeric` is an
            // expression it knows nothing about, guessed to keep 0.5% of the rows, which
            // turns a grouping of every document into a sort spilled to disk).
            NUMBERS
                if matches!(t, Target::Column(_, ColumnType::Flag))
                    && values.iter().all(|v| v.is_boolean()) =>
            {
                q.sql.push('(');
                json(q, t);
                bind_list::<Self>(q, values, "::boolean");
                q.sql.push(')');
            }
            NUMBERS => {
                q.sql.push('(');
                num_or_generated(q, t);
                bind_list::<Self>(q, values, "::numeric");
                q.sql.push(')');
            }
            STRINGS => string_cmp(q, t, |q| bind_list::<Self>(q, values, "")),
            _ => {
                // `jsonb` equality ignores key order, which the matcher (and SQLite) do
                // not: a document value is also compared as the text it was written with,
                // read from `body` only for the rows `jsonb` equality lets through. An
                // array element has no text of its own: its objects compare as `jsonb`.
                type_guard(q, t, "IN ('object','array')");
                json(q, t);
                bind_list::<Self>(q, values, "::jsonb");
                if let Target::Doc(segments) = t {
                    q.sql.push_str(" AND (body::json #> ");
                    path_array(q, segments);
                    q.sql.push_str(")::text");
                    bind_list::<Self>(q, values, "");
                }
                q.sql.push(')');
            }
        }
    }

    /// Numbers with numbers, strings with strings (byte order), nothing else.
    fn range(q: &mut SqlQuery, t: &Target<'_>, sym: &str, value: &Value) {
        match (kind(value), t.column_type()) {
            (Some(Kind::Number), None | Some(ColumnType::Flag)) => {
                q.sql.push('(');
                num_or_generated(q, t);
                q.sql.push_str(sym);
                q.bind_pg(SqlParam::from_json(value));
                q.sql.push_str("::numeric)");
            }
            (Some(Kind::Text | Kind::JsonLikeText), None | Some(ColumnType::Text)) => {
                string_cmp(q, t, |q| {
                    q.sql.push_str(sym);
                    q.bind_pg(SqlParam::from_json(value));
                });
            }
            _ => q.sql.push_str("FALSE"),
        }
    }

    /// PostgreSQL's `~` on strings only. A pattern the `regex` crate refuses (or that
    /// exceeds its size limit) matches nothing, as in the matcher.
    fn regex(q: &mut SqlQuery, t: &Target<'_>, pattern: &str) {
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
            Some(ColumnType::Flag) => {
                q.sql.push_str("FALSE");
                return;
            }
            // The database's own collation decides case folding (`"C"` folds ASCII only).
            Some(ColumnType::Text) => {
                q.sql.push('(');
                text(q, t);
                q.sql.push_str(" COLLATE \"default\"");
            }
            None => {
                type_guard(q, t, "= 'string'");
                text(q, t);
            }
        }
        q.sql.push_str(" ~ ");
        q.bind_pg(SqlParam::Text(pattern));
        q.sql.push(')');
    }

    /// Each value as the text its own `$N::text` placeholder would carry, in one JSON array
    /// of strings, so the cast after it reads exactly what it would have.
    fn value_set(q: &mut SqlQuery, values: &[&Value], cast: &str) {
        let set: Vec<Value> = values
            .iter()
            .map(|v| {
                SqlParam::from_json(v)
                    .to_pg_text()
                    .map_or(Value::Null, Value::String)
            })
            .collect();
        let _ = write!(q.sql, "(SELECT jxs.v{cast} FROM jsonb_array_elements_text(");
        q.bind_pg(SqlParam::Text(Value::Array(set).to_string()));
        q.sql.push_str("::jsonb) AS jxs(v))");
    }

    /// Values order as SQLite orders what `json_extract` gives: missing and null first, then
    /// numbers (booleans as 0/1), then strings and the JSON text of objects and arrays,
    /// byte-wise. A path's key is one `jxp_key` row (rank, number, text); an object's or
    /// array's text is read from `body`, as written (`jsonb`'s own text sorts the keys).
    fn order_key(q: &mut SqlQuery, t: &Target<'_>, dir: SortDir) {
        let sorted = match t {
            Target::Doc(segments) => q
                .generated
                .as_deref()
                .and_then(|g| g.find(segments, |c| c.sorts))
                .map(|c| format!("\"{c}\"")),
            _ => None,
        };
        if let Some(column) = sorted {
            q.sql.push_str(&column);
            q.sql.push_str(match dir {
                SortDir::Asc => " ASC NULLS FIRST, ",
                SortDir::Desc => " DESC NULLS LAST, ",
            });
            return;
        }
        if t.column_type().is_some() {
            json(q, t);
            q.sql.push_str(match dir {
                SortDir::Asc => " ASC NULLS FIRST, ",
                SortDir::Desc => " DESC NULLS LAST, ",
            });
            return;
        }
        q.sql.push_str("jxp_key(");
        json(q, t);
        q.sql.push_str(", body, ");
        match t {
            Target::Doc(segments) => path_array(q, segments),
            _ => q.sql.push_str("NULL"),
        }
        q.sql.push_str(match dir {
            SortDir::Asc => ") ASC, ",
            SortDir::Desc => ") DESC, ",
        });
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
                generated: None,
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
    use crate::ast::{Filter, Op, Path, Sort};
    use crate::sql::{render_pg_filter, render_pg_order};
    use serde_json::json;

    fn render(f: &Filter) -> SqlQuery {
        let mut q = SqlQuery::default();
        render_pg_filter(f, &mut q);
        q
    }

    #[test]
    fn a_path_sorts_by_one_key_read_once_and_a_column_by_itself() {
        let sort = [
            crate::ast::Sort {
                path: Path::plain("n"),
                dir: SortDir::Desc,
            },
            crate::ast::Sort {
                path: Path::plain("a.b"),
                dir: SortDir::Asc,
            },
            crate::ast::Sort {
                path: Path::plain("createdAt"),
                dir: SortDir::Desc,
            },
        ];
        let mut q = SqlQuery::default();
        crate::sql::render_pg_order(&sort, &mut q);
        assert_eq!(
            q.sql,
            " ORDER BY jxp_key((doc->'n'), body, ARRAY['n']::text[]) DESC, \
             jxp_key((doc->'a'->'b'), body, ARRAY['a', 'b']::text[]) ASC, \
             createdAt DESC NULLS LAST, _id ASC"
        );
        assert!(q.params.is_empty());
    }

    #[test]
    fn renders_index_shaped_comparisons_with_bound_values() {
        let q = render(&Filter::cond(Path::plain("a.b"), Op::Eq, json!("x")));
        assert_eq!(
            q.sql,
            "(((doc->'a'->>'b') COLLATE \"C\" = $1::text AND jsonb_typeof((doc->'a'->'b')) = 'string'))"
        );
        assert_eq!(pg_doc_text("a.b").as_deref(), Some("(doc->'a'->>'b')"));
        let q = render(&Filter::cond(Path::plain("_deleted"), Op::Eq, json!(false)));
        assert_eq!(q.sql, "((_deleted = $1::text::boolean))");
        assert_eq!(q.params, vec![SqlParam::Int(0)]);
        assert_eq!(SqlParam::Int(0).to_pg_text().as_deref(), Some("0"));
        // A number (or a mix) still compares the flag as 0 or 1.
        let q = render(&Filter::cond(
            Path::plain("_deleted"),
            Op::In,
            json!([true, 0]),
        ));
        assert_eq!(
            q.sql,
            "(((_deleted::int) IN ($1::text::numeric,$2::text::numeric)))"
        );
        assert_eq!(q.params, vec![SqlParam::Int(1), SqlParam::Int(0)]);
        let q = render(&Filter::cond(Path::plain("n"), Op::Gt, json!(2.5)));
        assert_eq!(q.sql, "(jxp_num((doc->'n')) > $1::text::numeric)");
        let q = render(&Filter::cond(Path::plain("o"), Op::Eq, json!({"a": 1})));
        assert_eq!(
            q.sql,
            "((jsonb_typeof((doc->'o')) IN ('object','array') AND (doc->'o') = $1::text::jsonb \
             AND (body::json #> ARRAY['o']::text[])::text = $2::text))"
        );
    }

    #[test]
    fn a_generated_column_of_the_value_s_kind_is_compared_in_place_of_the_document() {
        use crate::sql::{Generated, GeneratedColumn, GeneratedKind};
        let generated = Some(std::sync::Arc::new(Generated(vec![
            GeneratedColumn {
                path: "a.b".into(),
                column: "gt_a__b".into(),
                kind: GeneratedKind::Text,
                sorts: false,
                indexed: false,
            },
            GeneratedColumn {
                path: "n".into(),
                column: "gn_n".into(),
                kind: GeneratedKind::Number,
                sorts: true,
                indexed: false,
            },
        ])));
        let render = |f: &Filter| {
            let mut q = SqlQuery {
                generated: generated.clone(),
                ..SqlQuery::default()
            };
            render_pg_filter(f, &mut q);
            q.sql
        };
        let a = Path::plain("a.b");
        let n = Path::plain("n");
        assert_eq!(
            render(&Filter::cond(a.clone(), Op::In, json!(["x", "y"]))),
            "((\"gt_a__b\" IN ($1::text,$2::text)))"
        );
        assert_eq!(
            render(&Filter::cond(a.clone(), Op::Gte, json!("m"))),
            "(\"gt_a__b\" >= $1::text)"
        );
        assert_eq!(
            render(&Filter::cond(n.clone(), Op::Lt, json!(3))),
            "(\"gn_n\" < $1::text::numeric)"
        );
        assert_eq!(
            render(&Filter::cond(n.clone(), Op::Eq, json!(true))),
            "((\"gn_n\" = $1::text::numeric))"
        );
        // A value of another kind, or another path, reads the document as before.
        assert_eq!(
            render(&Filter::cond(a, Op::Eq, json!(1))),
            "((jxp_num((doc->'a'->'b')) = $1::text::numeric))"
        );
        assert!(render(&Filter::cond(n, Op::Eq, json!("x"))).contains("COLLATE"));
        assert!(render(&Filter::cond(Path::plain("a"), Op::Eq, json!("x"))).contains("doc"));
        assert_eq!(
            pg_generated_expr("a.b", GeneratedKind::Text).as_deref(),
            Some("CASE WHEN jsonb_typeof((doc->'a'->'b')) = 'string' THEN (doc->'a'->>'b') END")
        );
        assert_eq!(pg_generated_expr("a'", GeneratedKind::Number), None);
        assert_eq!(
            pg_generated_expr("a", GeneratedKind::Integer).as_deref(),
            Some(
                "CASE WHEN jsonb_typeof((doc->'a')) = 'number' THEN \
                 CASE WHEN scale(((doc->'a'))::numeric) = 0 AND abs(((doc->'a'))::numeric) < 1e18 \
                 THEN ((doc->'a'))::numeric::int8 END END"
            )
        );
        // A column that sorts orders a sort on its path, missing and null values first; one
        // whose table may hold other kinds there does not.
        let mut q = SqlQuery {
            generated: generated.clone(),
            ..SqlQuery::default()
        };
        let sort = |p: &str, dir| Sort {
            path: Path::plain(p),
            dir,
        };
        render_pg_order(
            &[sort("n", SortDir::Desc), sort("a.b", SortDir::Asc)],
            &mut q,
        );
        assert_eq!(
            q.sql,
            " ORDER BY \"gn_n\" DESC NULLS LAST, \
             jxp_key((doc->'a'->'b'), body, ARRAY['a', 'b']::text[]) ASC, _id ASC"
        );
        assert_eq!(
            pg_generated_check("a.b", GeneratedKind::Text).as_deref(),
            Some("jsonb_typeof((doc->'a'->'b')) IN ('string', 'null')")
        );
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

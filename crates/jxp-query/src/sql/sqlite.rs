//! SQLite's spelling of the filter walk ([`super::walk`]), and its sorts and full-text
//! queries. Values are always bound parameters; paths become literal JSON paths only when
//! every segment is a plain identifier (as the schema guarantees), and are bound as
//! parameters otherwise.
//!
//! The rendering has the matcher's meaning exactly (a property test holds the two together),
//! which takes some care because SQLite compares across types where the matcher does not:
//! `json_extract` hands back an object or array as its JSON *text*, any text sorts above any
//! number, and a comparison with NULL is NULL rather than false. Hence the type guards below.
//! Guards are added beside the comparison, never around the compared expression, so the
//! expression indexes on `json_extract(doc,'$.path')` still serve `=`, `IN` and ranges.

use std::fmt::Write;

use jxp_model::is_ident;
use serde_json::Value;

use super::walk::{self, ColumnType, Dialect, Elements, Kind, Target, bind_list, kind};
use super::{GeneratedKind, SearchTerms, SqlParam, SqlQuery};
use crate::ast::SortDir;

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

/// `func(source,'$.path')`: a JSON function on a path of `doc` or of the current element.
fn json_call(q: &mut SqlQuery, func: &str, source: &str, segments: &[String]) {
    let _ = write!(q.sql, "{func}({source},");
    push_json_path(q, segments);
    q.sql.push(')');
}

/// The value, as SQLite compares it. A path the table keeps in a generated column (the store
/// makes one per Number field no index covers) reads the column: it is stored as exactly what
/// `json_extract` answers, of whatever type, and declared without a type, so no affinity
/// converts it, and every comparison, guard and sort means what it did on the document.
fn value(q: &mut SqlQuery, t: &Target<'_>) {
    match t {
        Target::Column(col, _) => q.sql.push_str(col),
        Target::Doc(segments) => match generated_column(q, segments) {
            Some(column) => {
                let _ = write!(q.sql, "\"{column}\"");
            }
            None => json_call(q, "json_extract", "doc", segments),
        },
        Target::Elem => q.sql.push_str("value"),
        Target::ElemPath(segments) => json_call(q, "json_extract", ELEM_OBJECT, segments),
    }
}

/// The table's generated column that holds `json_extract(doc, path)` for `segments`, if any.
fn generated_column(q: &SqlQuery, segments: &[String]) -> Option<String> {
    q.generated
        .as_deref()?
        .find(segments, |c| c.kind == GeneratedKind::Number)
        .map(str::to_owned)
}

/// The equality groups: numbers and plain text need no guard (neither can equal an
/// object's JSON text, and a number never equals text when no column affinity is in play),
/// so they share one `IN` that an index can serve; text that looks like JSON must be a real
/// string; an object or array must be one.
const GROUP_GUARDS: [Option<&str>; 3] = [None, Some("= 'text'"), Some("IN ('object','array')")];

/// What an ordered comparison must also check about the stored value.
enum RangeGuard {
    None,
    /// The value is a number (or a boolean, which SQLite's JSON gives as 0/1).
    Number,
    /// The value is a JSON string, not an object's or array's text.
    Text,
}

/// The SQLite dialect: `json_extract`/`json_type` over JSON paths, `json_each` for elements,
/// `?N` placeholders, 1 and 0 for true and false, and the store's `REGEXP` function.
pub(super) struct Sqlite;

impl Dialect for Sqlite {
    const TRUE: &'static str = "1";
    const FALSE: &'static str = "0";
    const OR_FALSE: &'static str = ",0)";
    // `json_each` over a scalar yields the scalar itself as one row, so the type guard keeps
    // the MongoDB meaning: only an array has elements to match.
    const ELEM_MATCH_CHECKS_ARRAY: bool = true;
    const EQUALITY_ALWAYS_WRAPPED: bool = false;

    fn bind(q: &mut SqlQuery, p: SqlParam) {
        q.bind(p);
    }

    fn value(q: &mut SqlQuery, t: &Target<'_>) {
        value(q, t);
    }

    /// `'text'`, `'object'`, `'integer'`, …, as `json_type` and `typeof` name them.
    fn json_type(q: &mut SqlQuery, t: &Target<'_>) {
        match t {
            Target::Column(col, _) => {
                let _ = write!(q.sql, "typeof({col})");
            }
            Target::Doc(segments) => json_call(q, "json_type", "doc", segments),
            Target::Elem => q.sql.push_str("type"),
            Target::ElemPath(segments) => json_call(q, "json_type", ELEM_OBJECT, segments),
        }
    }

    fn elements(q: &mut SqlQuery, segments: &[String], _which: Elements) {
        json_call(q, "json_each", "doc", segments);
    }

    /// `json_array_length` says 0 for a scalar, hence the type check.
    fn array_size(q: &mut SqlQuery, segments: &[String], n: i64) {
        q.sql.push('(');
        walk::is_array::<Self>(q, segments);
        q.sql.push_str(" AND ");
        json_call(q, "json_array_length", "doc", segments);
        q.sql.push_str(" = ");
        q.bind(SqlParam::Int(n));
        q.sql.push(')');
    }

    /// `json_type` says 'null' (not NULL) for a stored null.
    fn missing_or_null(q: &mut SqlQuery, t: &Target<'_>, null: bool) {
        q.sql.push_str("(coalesce(");
        Self::json_type(q, t);
        q.sql.push_str(if null {
            ",'null') = 'null')"
        } else {
            ",'null') != 'null')"
        });
    }

    /// `json_extract` gives SQL NULL for a stored null as for a missing value.
    fn is_null(q: &mut SqlQuery, t: &Target<'_>, null: bool) {
        walk::is_sql_null::<Self>(q, t, null);
    }

    /// A column holds one type only (ids and dates as text, `_deleted` as 0/1), so a value of
    /// another kind cannot equal it; comparing anyway would let the column's affinity convert
    /// the value ('1' = 1). Columns hold no objects either.
    fn equality_group(kind: Kind, column: Option<ColumnType>) -> Option<usize> {
        match (kind, column) {
            (Kind::Text | Kind::JsonLikeText, Some(ColumnType::Text))
            | (Kind::Number, Some(ColumnType::Flag))
            | (Kind::Text | Kind::Number, None) => Some(0),
            (Kind::JsonLikeText, None) => Some(1),
            (Kind::Container, None) => Some(2),
            (_, Some(_)) => None,
        }
    }

    fn equality(q: &mut SqlQuery, t: &Target<'_>, group: usize, values: &[&Value]) {
        q.sql.push('(');
        value(q, t);
        bind_list::<Self>(q, values, "");
        if let Some(type_is) = GROUP_GUARDS.get(group).copied().flatten() {
            q.sql.push_str(" AND ");
            Self::json_type(q, t);
            q.sql.push(' ');
            q.sql.push_str(type_is);
        }
        q.sql.push(')');
    }

    fn range(q: &mut SqlQuery, t: &Target<'_>, sym: &str, v: &Value) {
        let guard = match (t.column_type(), kind(v)) {
            (Some(ColumnType::Text), Some(Kind::Text | Kind::JsonLikeText))
            | (Some(ColumnType::Flag), Some(Kind::Number)) => RangeGuard::None,
            // Text sorts above every number, so only `>`/`>=` need to keep text out.
            (None, Some(Kind::Number)) if sym.contains('>') => RangeGuard::Number,
            (None, Some(Kind::Number)) => RangeGuard::None,
            // Numbers sort below text and objects come back as text: keep only real strings.
            (None, Some(Kind::Text | Kind::JsonLikeText)) => RangeGuard::Text,
            // Null, objects and arrays are not ordered; a column of another type never
            // matches.
            _ => {
                q.sql.push('0');
                return;
            }
        };
        q.sql.push('(');
        value(q, t);
        q.sql.push_str(sym);
        q.bind(SqlParam::from_json(v));
        match guard {
            RangeGuard::Number => {
                q.sql.push_str(" AND typeof(");
                value(q, t);
                q.sql.push_str(") IN ('integer','real')");
            }
            RangeGuard::Text => {
                q.sql.push_str(" AND ");
                Self::json_type(q, t);
                q.sql.push_str(" = 'text'");
            }
            RangeGuard::None => {}
        }
        q.sql.push(')');
    }

    /// `REGEXP` (the store's function) on strings only: an object's JSON text must not match.
    fn regex(q: &mut SqlQuery, t: &Target<'_>, pattern: &str) {
        match t.column_type() {
            Some(ColumnType::Flag) => {
                q.sql.push('0');
                return;
            }
            Some(ColumnType::Text) => q.sql.push('('),
            None => {
                q.sql.push('(');
                Self::json_type(q, t);
                q.sql.push_str(" = 'text' AND ");
            }
        }
        value(q, t);
        q.sql.push_str(" REGEXP ");
        q.bind(SqlParam::Text(pattern.to_owned()));
        q.sql.push(')');
    }

    /// The elements of a JSON array come out of `json_each` as the SQL values the separate
    /// placeholders would bind: integers, reals and text (booleans are already 0/1).
    fn value_set(q: &mut SqlQuery, values: &[&Value], _cast: &str) {
        let set: Vec<Value> = values
            .iter()
            .map(|v| match SqlParam::from_json(v) {
                SqlParam::Null => Value::Null,
                SqlParam::Int(i) => Value::from(i),
                SqlParam::Real(f) => {
                    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                }
                SqlParam::Text(s) => Value::String(s),
            })
            .collect();
        q.sql.push_str("(SELECT value FROM json_each(");
        q.bind(SqlParam::Text(Value::Array(set).to_string()));
        q.sql.push_str("))");
    }

    fn order_key(q: &mut SqlQuery, t: &Target<'_>, dir: SortDir) {
        value(q, t);
        q.sql.push_str(match dir {
            SortDir::Asc => " ASC, ",
            SortDir::Desc => " DESC, ",
        });
    }
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
    use crate::ast::{Filter, Op, Path, Sort};
    use crate::sql::{render_sqlite_filter, render_sqlite_order};
    use serde_json::json;

    fn render(f: &Filter) -> SqlQuery {
        let mut q = SqlQuery::default();
        render_sqlite_filter(f, &mut q);
        q
    }

    #[test]
    fn a_path_kept_in_a_generated_column_reads_the_column() {
        use crate::sql::{Generated, GeneratedColumn};
        let generated = std::sync::Arc::new(Generated(vec![GeneratedColumn {
            path: "a.n".into(),
            column: "gn_a__n".into(),
            kind: GeneratedKind::Number,
            sorts: false,
            indexed: false,
        }]));
        let n = Path::new("a.n", None);
        let mut q = SqlQuery {
            generated: Some(generated),
            ..SqlQuery::default()
        };
        render_sqlite_filter(&Filter::cond(n.clone(), Op::Gt, json!(3)), &mut q);
        render_sqlite_order(
            &[Sort {
                path: n,
                dir: crate::ast::SortDir::Desc,
            }],
            &mut q,
        );
        assert_eq!(
            q.sql,
            "(\"gn_a__n\" > ?1 AND typeof(\"gn_a__n\") IN ('integer','real')) \
             ORDER BY \"gn_a__n\" DESC, _id ASC"
        );
        // Another path still reads the document; every use of `json_extract` on this one
        // reads the column instead, in the same shape.
        let mut other = SqlQuery {
            generated: q.generated.clone(),
            ..SqlQuery::default()
        };
        render_sqlite_filter(
            &Filter::cond(Path::plain("n"), Op::Eq, json!(1)),
            &mut other,
        );
        render_sqlite_filter(
            &Filter::cond(Path::new("a.n", None), Op::Exists, json!(false)),
            &mut other,
        );
        assert_eq!(
            other.sql,
            "(json_extract(doc,'$.n') = ?1)(\"gn_a__n\" IS NULL)"
        );
        let mut plain = SqlQuery::default();
        render_sqlite_filter(
            &Filter::cond(Path::new("a.n", None), Op::Exists, json!(false)),
            &mut plain,
        );
        assert_eq!(plain.sql, "(json_extract(doc,'$.a.n') IS NULL)");
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
    fn long_lists_are_bound_as_one_parameter() {
        let values: Vec<i64> = (0..9).collect();
        let q = render(&Filter::cond(Path::plain("n"), Op::In, json!(values)));
        assert_eq!(
            q.sql,
            "(json_extract(doc,'$.n') IN (SELECT value FROM json_each(?1)))"
        );
        assert_eq!(q.params, vec![SqlParam::Text("[0,1,2,3,4,5,6,7,8]".into())]);
        let wide = Filter::Or(
            (0..100)
                .map(|i| Filter::cond(Path::plain("n"), Op::Eq, json!(i)))
                .collect(),
        );
        let q = render(&wide);
        // Nested halves: no more than 32 terms side by side.
        assert!(q.sql.starts_with("(((("), "{}", q.sql);
        assert_eq!(q.params.len(), 100);
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

//! SQL rendering of filters and sorts for the SQLite store. Values are always bound
//! parameters; paths become literal JSON paths only when every segment is a plain identifier
//! (as the schema guarantees), and are bound as parameters otherwise.

use std::fmt::Write;

use serde_json::Value;

use crate::ast::{Cond, Filter, Op, Path, Sort, SortDir};

/// A bound parameter, independent of any database driver.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl SqlParam {
    /// The parameter a JSON value compares as, given how `json_extract` returns values.
    pub fn from_json(v: &Value) -> SqlParam {
        match v {
            Value::Null => SqlParam::Null,
            Value::Bool(b) => SqlParam::Int(i64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => SqlParam::Int(i),
                None => SqlParam::Real(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => SqlParam::Text(s.clone()),
            other => SqlParam::Text(other.to_string()),
        }
    }
}

/// SQL text with its parameters, numbered `?1`, `?2`, … in order of appearance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlQuery {
    pub sql: String,
    pub params: Vec<SqlParam>,
}

impl SqlQuery {
    fn bind(&mut self, p: SqlParam) {
        self.params.push(p);
        let _ = write!(self.sql, "?{}", self.params.len());
    }
}

/// The columns every model table has besides `doc`.
const COLUMNS: &[(&str, &str)] = &[
    ("_id", "_id"),
    ("id", "_id"),
    ("_owner_id", "_owner_id"),
    ("_deleted", "_deleted"),
    ("createdAt", "createdAt"),
    ("updatedAt", "updatedAt"),
];

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Appends the SQLite expression for a JSON path below `base` (`doc` or `value`).
fn push_json_extract(q: &mut SqlQuery, base: &str, segments: &[String]) {
    if segments.iter().all(|s| is_ident(s)) {
        let _ = write!(q.sql, "json_extract({base},'$.{}')", segments.join("."));
    } else {
        let _ = write!(q.sql, "json_extract({base},");
        let quoted: Vec<String> = segments
            .iter()
            .map(|s| format!("\"{}\"", s.replace('"', "")))
            .collect();
        q.bind(SqlParam::Text(format!("$.{}", quoted.join("."))));
        q.sql.push(')');
    }
}

/// Appends the expression for a path with no array in it.
fn push_scalar_expr(q: &mut SqlQuery, path: &Path) {
    if let [only] = path.segments.as_slice()
        && let Some((_, col)) = COLUMNS.iter().find(|(name, _)| name == only)
    {
        q.sql.push_str(col);
        return;
    }
    push_json_extract(q, "doc", &path.segments);
}

/// Renders `filter` as a boolean SQL expression over a model table.
pub fn render_sqlite_filter(filter: &Filter, q: &mut SqlQuery) {
    match filter {
        Filter::All => q.sql.push('1'),
        Filter::And(parts) => join(q, parts, " AND ", "1"),
        Filter::Or(parts) => join(q, parts, " OR ", "0"),
        Filter::Nor(parts) => {
            q.sql.push_str("NOT ");
            join(q, parts, " OR ", "0");
        }
        Filter::Not(inner) => {
            q.sql.push_str("NOT (");
            render_sqlite_filter(inner, q);
            q.sql.push(')');
        }
        Filter::Cond(cond) => render_cond(cond, q),
    }
}

fn join(q: &mut SqlQuery, parts: &[Filter], sep: &str, empty: &str) {
    if parts.is_empty() {
        q.sql.push_str(empty);
        return;
    }
    q.sql.push('(');
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            q.sql.push_str(sep);
        }
        render_sqlite_filter(part, q);
    }
    q.sql.push(')');
}

fn render_cond(cond: &Cond, q: &mut SqlQuery) {
    let Some(at) = cond.path.array_at else {
        render_comparison(q, &cond.op, &cond.value, |q| {
            push_scalar_expr(q, &cond.path)
        });
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
        let exists = cond.value.as_bool().unwrap_or(true);
        q.sql.push_str("json_type(doc,'$.");
        q.sql.push_str(&array_part.join("."));
        q.sql.push_str(if exists {
            "') IS NOT NULL"
        } else {
            "') IS NULL"
        });
        return;
    }
    q.sql.push_str(if negate {
        "NOT EXISTS (SELECT 1 FROM json_each(doc,'$."
    } else {
        "EXISTS (SELECT 1 FROM json_each(doc,'$."
    });
    q.sql.push_str(&array_part.join("."));
    q.sql.push_str("') WHERE ");
    render_comparison(q, &op, &cond.value, |q| {
        if rest.is_empty() {
            q.sql.push_str("value");
        } else {
            push_json_extract(q, "value", rest);
        }
    });
    q.sql.push(')');
}

fn render_comparison(q: &mut SqlQuery, op: &Op, value: &Value, expr: impl Fn(&mut SqlQuery)) {
    let simple = |q: &mut SqlQuery, sym: &str| {
        q.sql.push('(');
        expr(q);
        q.sql.push_str(sym);
        q.bind(SqlParam::from_json(value));
        q.sql.push(')');
    };
    match op {
        Op::Eq if value.is_null() => {
            q.sql.push('(');
            expr(q);
            q.sql.push_str(" IS NULL)");
        }
        Op::Ne if value.is_null() => {
            q.sql.push('(');
            expr(q);
            q.sql.push_str(" IS NOT NULL)");
        }
        Op::Eq => simple(q, " = "),
        Op::Gt => simple(q, " > "),
        Op::Gte => simple(q, " >= "),
        Op::Lt => simple(q, " < "),
        Op::Lte => simple(q, " <= "),
        Op::Regex => simple(q, " REGEXP "),
        Op::Ne => {
            q.sql.push('(');
            expr(q);
            q.sql.push_str(" IS NULL OR ");
            expr(q);
            q.sql.push_str(" != ");
            q.bind(SqlParam::from_json(value));
            q.sql.push(')');
        }
        Op::In | Op::Nin => {
            let items: &[Value] = value.as_array().map(Vec::as_slice).unwrap_or_default();
            let not = matches!(op, Op::Nin);
            if items.is_empty() {
                q.sql.push_str(if not { "1" } else { "0" });
                return;
            }
            q.sql.push('(');
            if not {
                expr(q);
                q.sql.push_str(" IS NULL OR ");
            }
            expr(q);
            q.sql.push_str(if not { " NOT IN (" } else { " IN (" });
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    q.sql.push(',');
                }
                q.bind(SqlParam::from_json(item));
            }
            q.sql.push_str("))");
        }
        Op::Exists => {
            let exists = value.as_bool().unwrap_or(true);
            q.sql.push('(');
            expr(q);
            q.sql
                .push_str(if exists { " IS NOT NULL)" } else { " IS NULL)" });
        }
    }
}

/// Renders `ORDER BY …` for the sort keys, always ending with `_id` so pages are stable.
pub fn render_sqlite_order(sort: &[Sort], q: &mut SqlQuery) {
    q.sql.push_str(" ORDER BY ");
    for s in sort {
        push_scalar_expr(q, &s.path);
        q.sql.push_str(match s.dir {
            SortDir::Asc => " ASC, ",
            SortDir::Desc => " DESC, ",
        });
    }
    q.sql.push_str("_id ASC");
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
                "(json_extract(doc,'$.address.city') IS NULL OR json_extract(doc,'$.address.city') != ?1)",
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
                "EXISTS (SELECT 1 FROM json_each(doc,'$.composite_array') WHERE (json_extract(value,'$.abar') >= ?1))",
                vec![SqlParam::Int(3)],
            ),
            (
                Filter::cond(Path::plain("foo"), Op::Eq, json!(null)),
                "(json_extract(doc,'$.foo') IS NULL)",
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
    fn unsafe_segments_are_bound_not_spliced() {
        let f = Filter::cond(Path::plain("a') OR 1=1 --"), Op::Eq, json!(1));
        let q = render(&f);
        assert!(!q.sql.contains("OR 1=1"), "{}", q.sql);
        assert_eq!(q.params.len(), 2);
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
            "((json_extract(doc,'$.a') = ?1) OR NOT ((json_extract(doc,'$.b') < ?2)))"
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
}

//! The one SQL statement a [`Grouping`] runs on each database: the model's rows that match
//! its filter, grouped, each group's accumulators in the parts `Grouping::decode` needs.
//!
//! Columns, in order: the number of the group's rows holding a value not of its field's
//! declared kind (decoding refuses a row where it is not 0); per key field its JSON type and
//! value; per accumulator: a count: the row count; `$sum`: the integer total (as a high and a
//! low 32-bit half on SQLite, whose integer `SUM` fails on overflow) and the float total;
//! `$avg`: the float total of all numbers and how many there were; `$min`/`$max`: the extreme
//! integer and the extreme float. Rows come in order of each group's first `_id`, the order
//! the in-memory `$group` meets its groups in. Paths are literal only because every segment
//! is a plain identifier, which the caller checks.

use std::fmt::Write;

use super::walk;
use super::{SqlQuery, postgres::Postgres, sqlite::Sqlite};
use crate::aggregate::{FieldKind, GroupField, Grouping, PlainAcc, PlainKey};

/// How one database spells the reads a grouping needs.
trait GroupDialect {
    /// The JSON type of the field, NULL when missing.
    fn typ(f: &GroupField) -> String;
    /// The field's value, as the key column.
    fn key(f: &GroupField) -> String;
    /// A condition: the field holds a value not of its declared kind.
    fn bad(f: &GroupField) -> String;
    /// A condition: the field holds an integer (for `$sum`, `$min` and `$max`).
    fn is_int(f: &GroupField) -> String;
    /// A condition: the field holds a non-integer number.
    fn is_float(f: &GroupField) -> String;
    /// The field as an integer, as a float.
    fn int(f: &GroupField) -> String;
    fn float(f: &GroupField) -> String;
    /// The `$sum` columns: integer high half, low half, float total.
    fn sum(f: &GroupField) -> String;
    /// Every aggregate answered as the dialect's column type.
    fn out(expr: String) -> String;
    /// The `_id` to order groups by.
    const FIRST_ID: &'static str;
}

impl GroupDialect for Sqlite {
    fn typ(f: &GroupField) -> String {
        format!("json_type(doc,'$.{}')", f.path.dotted())
    }
    fn key(f: &GroupField) -> String {
        format!("json_extract(doc,'$.{}')", f.path.dotted())
    }
    fn bad(f: &GroupField) -> String {
        let t = Self::typ(f);
        match f.kind {
            FieldKind::Text => format!("{t} NOT IN ('text','null')"),
            FieldKind::Bool => format!("{t} NOT IN ('true','false','null')"),
            // A whole float in the integers' range would group, sum and compare as its
            // integer in memory; SQL keeps the two apart, so such data is not pushed down.
            FieldKind::Number => format!(
                "{t} NOT IN ('integer','real','null') OR ({t} = 'real' AND {v} = ROUND({v}) AND ABS({v}) < 9.3e18)",
                v = Self::key(f)
            ),
        }
    }
    fn is_int(f: &GroupField) -> String {
        format!("{} = 'integer'", Self::typ(f))
    }
    fn is_float(f: &GroupField) -> String {
        format!("{} = 'real'", Self::typ(f))
    }
    fn int(f: &GroupField) -> String {
        Self::key(f)
    }
    fn float(f: &GroupField) -> String {
        format!("CAST({} AS REAL)", Self::key(f))
    }
    fn sum(f: &GroupField) -> String {
        let (int, v) = (Self::is_int(f), Self::key(f));
        format!(
            "SUM(CASE WHEN {int} THEN {v} >> 32 END), SUM(CASE WHEN {int} THEN {v} & 4294967295 END), SUM(CASE WHEN {} THEN {v} END)",
            Self::is_float(f)
        )
    }
    fn out(expr: String) -> String {
        expr
    }
    const FIRST_ID: &'static str = "MIN(_id)";
}

impl Postgres {
    fn path(f: &GroupField) -> String {
        f.path.segments.join(",")
    }
    fn text(f: &GroupField) -> String {
        format!("(doc #>> '{{{}}}')", Self::path(f))
    }
}

impl GroupDialect for Postgres {
    fn typ(f: &GroupField) -> String {
        format!("jsonb_typeof(doc #> '{{{}}}')", Self::path(f))
    }
    fn key(f: &GroupField) -> String {
        format!("{} COLLATE \"C\"", Self::text(f))
    }
    fn bad(f: &GroupField) -> String {
        let t = Self::typ(f);
        match f.kind {
            FieldKind::Text => format!("{t} NOT IN ('string','null')"),
            FieldKind::Bool => format!("{t} NOT IN ('boolean','null')"),
            // Integers of more than 18 digits may not fit the in-memory i64; whole floats
            // would count as integers in memory: neither is pushed down. (The store writes a
            // whole float into `jsonb` with its `.0`, so its text here is a float's.)
            FieldKind::Number => format!(
                "{t} NOT IN ('number','null') OR (CASE WHEN {t} = 'number' THEN {s} ~ '^-?[0-9]{{19,}}$' OR ({s} !~ '^-?[0-9]+$' AND {s}::float8 = ROUND({s}::float8) AND ABS({s}::float8) < 9.3e18) END)",
                s = Self::text(f)
            ),
        }
    }
    fn is_int(f: &GroupField) -> String {
        format!(
            "(CASE WHEN {} = 'number' THEN {} ~ '^-?[0-9]{{1,18}}$' END)",
            Self::typ(f),
            Self::text(f)
        )
    }
    fn is_float(f: &GroupField) -> String {
        format!(
            "(CASE WHEN {} = 'number' THEN {} !~ '^-?[0-9]+$' END)",
            Self::typ(f),
            Self::text(f)
        )
    }
    fn int(f: &GroupField) -> String {
        format!("{}::int8", Self::text(f))
    }
    fn float(f: &GroupField) -> String {
        format!("{}::float8", Self::text(f))
    }
    fn sum(f: &GroupField) -> String {
        format!(
            "NULL, SUM(CASE WHEN {} THEN {}::numeric END)::text, SUM(CASE WHEN {} THEN {} END)::text",
            Self::is_int(f),
            Self::text(f),
            Self::is_float(f),
            Self::float(f)
        )
    }
    fn out(expr: String) -> String {
        format!("({expr})::text")
    }
    const FIRST_ID: &'static str = "MIN(_id COLLATE \"C\")";
}

/// The statement a grouping runs on SQLite, over the model table `table`.
pub fn render_sqlite_group(table: &str, g: &Grouping) -> SqlQuery {
    render::<Sqlite>(table, g, walk::render_filter::<Sqlite>)
}

/// The statement a grouping runs on PostgreSQL; every column comes back as text.
pub fn render_pg_group(table: &str, g: &Grouping) -> SqlQuery {
    render::<Postgres>(table, g, walk::render_filter::<Postgres>)
}

fn render<D: GroupDialect>(
    table: &str,
    g: &Grouping,
    filter: fn(&crate::ast::Filter, &mut SqlQuery),
) -> SqlQuery {
    let bad: Vec<String> = g
        .fields()
        .iter()
        .map(|f| format!("({})", D::bad(f)))
        .collect();
    let bad = if bad.is_empty() {
        "1 = 0".to_owned()
    } else {
        bad.join(" OR ")
    };
    let mut cols = vec![D::out(format!("SUM(CASE WHEN {bad} THEN 1 ELSE 0 END)"))];
    let keys: Vec<&GroupField> = match &g.key {
        PlainKey::Null => Vec::new(),
        PlainKey::Field(f) => vec![f],
        PlainKey::Object(fields) => fields.iter().map(|(_, f)| f).collect(),
    };
    let mut group_by = Vec::new();
    for f in &keys {
        // A lone key groups missing with null, as the in-memory `$group` does; inside an
        // object key a missing field is left out, so the two stay apart.
        let typ = match g.key {
            PlainKey::Field(_) => format!("COALESCE({}, 'null')", D::typ(f)),
            _ => D::typ(f),
        };
        cols.push(typ);
        cols.push(D::out(D::key(f)));
        group_by.push((cols.len() - 1).to_string());
        group_by.push(cols.len().to_string());
    }
    for (_, acc) in &g.accs {
        match acc {
            PlainAcc::Count(_) => cols.push(D::out("COUNT(*)".to_owned())),
            PlainAcc::Sum(f) => cols.push(D::sum(f)),
            PlainAcc::Avg(f) => {
                let num = format!("({} OR {})", D::is_int(f), D::is_float(f));
                cols.push(D::out(format!(
                    "SUM(CASE WHEN {num} THEN {} END)",
                    D::float(f)
                )));
                cols.push(D::out(format!("COUNT(CASE WHEN {num} THEN 1 END)")));
            }
            PlainAcc::Min(f) | PlainAcc::Max(f) => {
                let agg = if matches!(acc, PlainAcc::Min(_)) {
                    "MIN"
                } else {
                    "MAX"
                };
                cols.push(D::out(format!(
                    "{agg}(CASE WHEN {} THEN {} END)",
                    D::is_int(f),
                    D::int(f)
                )));
                cols.push(D::out(format!(
                    "{agg}(CASE WHEN {} THEN {} END)",
                    D::is_float(f),
                    D::float(f)
                )));
            }
        }
    }
    let mut q = SqlQuery::default();
    let _ = write!(q.sql, "SELECT {} FROM {table} WHERE (", cols.join(", "));
    filter(&g.filter, &mut q);
    q.sql.push(')');
    if !group_by.is_empty() {
        let _ = write!(q.sql, " GROUP BY {}", group_by.join(", "));
    }
    // Without keys SQL answers one row even for no rows; `$group` answers no group.
    let _ = write!(q.sql, " HAVING COUNT(*) > 0 ORDER BY {}", D::FIRST_ID);
    q
}

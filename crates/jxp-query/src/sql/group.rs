//! The one SQL statement a [`Grouping`] runs on each database: the model's rows that match
//! its filter, grouped, each group's accumulators in the parts `Grouping::decode` needs.
//!
//! The statement reads each field the grouping uses once per row, in an inner query that
//! the outer one groups: the JSON type and the value of every field become plain columns
//! (`t0`, `v0`, …), so a field used by the key, a type check and three accumulators is still
//! looked up in the document once, and the database's sorter or hash table holds those small
//! columns rather than whole documents. The inner query is kept apart from the outer one on
//! purpose (`LIMIT -1` on SQLite, `OFFSET 0` on PostgreSQL), as both databases would otherwise
//! fold it in and read the document again for every use. On PostgreSQL the documents' subquery
//! takes each field out of the `jsonb` document once (`j0`, …) and the extracted rows read
//! only those small values; a number is read as `numeric` straight from `jsonb` and classed
//! by its scale (a regular expression on its text costs several times more a row). A field
//! read from a generated column has no class column: with nothing fenced, PostgreSQL folds
//! the inner queries into the outer one and would compute a class again at every use, so
//! the few conditions on the `numeric` are written out where they are used, and the type
//! checks a column's constraint makes redundant are left out (a grouping of a million rows
//! by a text column, summing a number column: 850 to 660 ms on one core). Where the table
//! has the `int8` column beside a number column (`gi_`), those conditions test it for NULL
//! instead, and `$sum` adds it: no `numeric` is looked at for an integer (that grouping: 300
//! to 190 ms over two cores).
//!
//! Columns, in order: the number of the group's rows holding a value not of its field's
//! declared kind (decoding refuses a row where it is not 0); per key field its JSON type and
//! value; per accumulator: a count: the row count; `$sum`: the integer total (as a high and a
//! low 32-bit half on SQLite, whose integer `SUM` fails on overflow) and the float total;
//! `$avg`: the float total of all numbers and how many there were; `$min`/`$max`: the extreme
//! integer and the extreme float. Rows come in order of each group's first `_id`, the order
//! the in-memory `$group` meets its groups in. Paths are literal only because every segment
//! is a plain identifier, which the caller checks.
//!
//! The grouping's tail adds to the same statement: its sort before that order (each key as
//! the in-memory `$sort` compares it: null and missing first, numbers as numbers, text by
//! code point), `LIMIT`/`OFFSET` for its window, whose first column then counts the odd
//! values of every group (a window function, computed before the window is cut), and for a
//! `$count` an outer query answering only that column's total and the number of groups.
//!
//! Also here: the scan SQLite feeds a grouping counted in the server (`HashGroups`) from,
//! the same reads of each field without the grouping.

use std::fmt::Write;
use std::sync::Arc;

use super::walk;
use super::{Generated, GeneratedKind, SqlQuery, postgres::Postgres, sqlite::Sqlite};
use crate::aggregate::{FieldKind, GroupField, GroupSort, Grouping, PlainAcc, PlainKey};

/// A field as the outer query reads it: the inner query's columns holding its JSON type, its
/// value and (on PostgreSQL, for numbers) its class and its `numeric`, its declared kind,
/// whether it is read from a generated column, and the column holding it as an `int8` where
/// it is an integer of at most 18 digits, when a generated one does.
struct Col {
    t: String,
    v: String,
    c: String,
    x: String,
    kind: FieldKind,
    generated: bool,
    k: Option<String>,
}

/// The generated columns a field is read from: the one holding its value and, for a number,
/// the `int8` one beside it ([`GeneratedKind::Integer`]) if the table has it.
struct Source {
    value: String,
    integer: Option<String>,
}

/// How one database spells the reads a grouping needs.
trait GroupDialect {
    /// The documents' subquery's columns besides `g_id`, if any: the document (`d`).
    const DOC: Option<&'static str>;
    /// The documents' subquery's columns for the field numbered `i`, if the dialect takes
    /// each field out of the document there (as `j<i>`, and its `int8` column as `n<i>`);
    /// `source` is the table's generated columns that hold it, if they may be read in its
    /// place ([`Extracted::generated`]).
    fn fragment(i: usize, f: &GroupField, source: Option<&Source>) -> Option<String>;
    /// What keeps the documents' subquery, and the extracted rows' subquery, from being
    /// folded into the query around it.
    const KEEP_DOCS: &'static str;
    const KEEP_ROWS: &'static str;
    /// The extracted rows' columns for the field numbered `i`: its JSON type (NULL when
    /// missing) as `t<i>`, its value as `v<i>`, and any more the dialect reads; from the
    /// generated columns `source` when there are any.
    fn extract(i: usize, f: &GroupField, source: Option<&Source>) -> Vec<String>;
    /// The field's value, as the key column.
    fn key(c: &Col) -> String;
    /// A condition: the field holds a value not of its declared kind.
    fn bad(c: &Col) -> String;
    /// A condition: the field holds an integer (for `$sum`, `$min` and `$max`).
    fn is_int(c: &Col) -> String;
    /// A condition: the field holds a non-integer number.
    fn is_float(c: &Col) -> String;
    /// The field as an integer, as a float.
    fn int(c: &Col) -> String;
    fn float(c: &Col) -> String;
    /// The `$sum` columns: integer high half, low half, float total.
    fn sum(c: &Col) -> String;
    /// Every aggregate answered as the dialect's column type.
    fn out(expr: String) -> String;
    /// A key field's value in a group, as the in-memory `$sort` orders it (with null first).
    fn order(c: &Col) -> String;
    /// The `_id` to order groups by.
    const FIRST_ID: &'static str;
}

impl GroupDialect for Sqlite {
    // Binary JSON is read in place: each field is looked up in the document itself.
    const DOC: Option<&'static str> = Some("doc AS d");
    fn fragment(_: usize, _: &GroupField, _: Option<&Source>) -> Option<String> {
        None
    }
    // Renaming the column costs nothing when folded in; the extracted rows must not be.
    const KEEP_DOCS: &'static str = "";
    const KEEP_ROWS: &'static str = " LIMIT -1";
    fn extract(i: usize, f: &GroupField, _: Option<&Source>) -> Vec<String> {
        let p = f.path.dotted();
        vec![
            format!("json_type(d,'$.{p}') AS t{i}"),
            format!("json_extract(d,'$.{p}') AS v{i}"),
        ]
    }
    fn key(c: &Col) -> String {
        c.v.clone()
    }
    fn bad(c: &Col) -> String {
        let (t, v) = (&c.t, &c.v);
        match c.kind {
            FieldKind::Text => format!("{t} NOT IN ('text','null')"),
            FieldKind::Bool => format!("{t} NOT IN ('true','false','null')"),
            // A whole float in the integers' range would group, sum and compare as its
            // integer in memory; SQL keeps the two apart, so such data is not pushed down.
            FieldKind::Number => format!(
                "{t} NOT IN ('integer','real','null') OR ({t} = 'real' AND {v} = ROUND({v}) AND ABS({v}) < 9.3e18)"
            ),
        }
    }
    fn is_int(c: &Col) -> String {
        format!("{} = 'integer'", c.t)
    }
    fn is_float(c: &Col) -> String {
        format!("{} = 'real'", c.t)
    }
    fn int(c: &Col) -> String {
        c.v.clone()
    }
    fn float(c: &Col) -> String {
        format!("CAST({} AS REAL)", c.v)
    }
    fn sum(c: &Col) -> String {
        let (int, v) = (Self::is_int(c), &c.v);
        format!(
            "SUM(CASE WHEN {int} THEN {v} >> 32 END), SUM(CASE WHEN {int} THEN {v} & 4294967295 END), SUM(CASE WHEN {} THEN {v} END)",
            Self::is_float(c)
        )
    }
    fn out(expr: String) -> String {
        expr
    }
    fn order(c: &Col) -> String {
        // Numbers compare as numbers, text byte by byte (code points), false before true.
        format!("MIN({})", c.v)
    }
    const FIRST_ID: &'static str = "MIN(g_id)";
}

/// The type a generated column's non-NULL value has: a number column holds numbers, a text
/// column strings.
fn generated_type(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Number => "number",
        FieldKind::Text | FieldKind::Bool => "string",
    }
}

impl GroupDialect for Postgres {
    // Each field is taken out of the `jsonb` document once, as the small value it holds, and
    // only that is read again.
    const DOC: Option<&'static str> = None;
    fn fragment(i: usize, f: &GroupField, source: Option<&Source>) -> Option<String> {
        Some(match source {
            Some(Source {
                value,
                integer: Some(integer),
            }) => format!("\"{value}\" AS j{i}, \"{integer}\" AS n{i}"),
            Some(Source { value, .. }) => format!("\"{value}\" AS j{i}"),
            None => format!("doc #> '{{{}}}' AS j{i}", f.path.segments.join(",")),
        })
    }
    const KEEP_DOCS: &'static str = " OFFSET 0";
    const KEEP_ROWS: &'static str = " OFFSET 0";
    fn extract(i: usize, f: &GroupField, source: Option<&Source>) -> Vec<String> {
        if let Some(source) = source {
            // The column holds the value (text, or `numeric`), NULL where the document holds
            // null or nothing, which the type then reads as missing: the same to a lone key
            // (which groups the two together) and to every accumulator.
            let (kind, number) = (generated_type(f.kind), f.kind == FieldKind::Number);
            let mut cols = vec![
                format!("CASE WHEN j{i} IS NOT NULL THEN '{kind}' END AS t{i}"),
                format!("j{i}::text AS v{i}"),
            ];
            if number {
                // No class column: the outer query is folded into this one, so every use
                // of a class would compute it again. The conditions on `x` are written out
                // where they are used instead (`number_class`).
                cols.push(format!("j{i} AS x{i}"));
                if source.integer.is_some() {
                    cols.push(format!("n{i} AS k{i}"));
                }
            }
            return cols;
        }
        let (t, v) = (format!("jsonb_typeof(j{i})"), format!("(j{i} #>> '{{}}')"));
        let mut cols = vec![format!("{t} AS t{i}"), format!("{v} AS v{i}")];
        // A number as `numeric` (read from `jsonb` without going through text) and its class:
        // `i` an integer of at most 18 digits, `b` a longer one, `f` not an integer. `jsonb`
        // keeps the scale a number was written with and prints a scale of 0 as digits only,
        // so the scale tells exactly what the number's text would.
        if f.kind == FieldKind::Number {
            let x = format!("j{i}::numeric");
            cols.push(format!("CASE WHEN {t} = 'number' THEN {x} END AS x{i}"));
            cols.push(format!(
                "CASE WHEN {t} = 'number' THEN CASE WHEN scale({x}) > 0 THEN 'f' WHEN abs({x}) < 1e18 THEN 'i' ELSE 'b' END END AS c{i}"
            ));
        }
        cols
    }
    fn key(c: &Col) -> String {
        format!("{} COLLATE \"C\"", c.v)
    }
    fn bad(c: &Col) -> String {
        let (t, x, k) = (&c.t, &c.x, &c.c);
        if let (Some(int8), FieldKind::Number) = (&c.k, c.kind) {
            // The `int8` column is NULL for a number only when it is not an integer of at
            // most 18 digits: most rows are told good by that test alone.
            return format!(
                "{int8} IS NULL AND {x} IS NOT NULL AND (scale({x}) = 0 OR ({x}::float8 = ROUND({x}::float8) AND ABS({x}::float8) < 9.3e18))"
            );
        }
        if c.generated {
            // A column holds its kind or NULL, so only a number's class can be bad: too
            // long an integer, or a whole float (see below).
            return match c.kind {
                FieldKind::Number => format!(
                    "(({x} <= -1e18 OR {x} >= 1e18) AND scale({x}) = 0) OR (scale({x}) > 0 AND {x}::float8 = ROUND({x}::float8) AND ABS({x}::float8) < 9.3e18)"
                ),
                FieldKind::Text | FieldKind::Bool => "FALSE".to_owned(),
            };
        }
        match c.kind {
            FieldKind::Text => format!("{t} NOT IN ('string','null')"),
            FieldKind::Bool => format!("{t} NOT IN ('boolean','null')"),
            // Integers of more than 18 digits may not fit the in-memory i64; whole floats
            // would count as integers in memory: neither is pushed down. (The store writes a
            // whole float into `jsonb` with its `.0`, so its text here is a float's.)
            // `numeric` becomes `float8` through its text, so this is the float's value.
            FieldKind::Number => format!(
                "{t} NOT IN ('number','null') OR {k} = 'b' OR ({k} = 'f' AND {x}::float8 = ROUND({x}::float8) AND ABS({x}::float8) < 9.3e18)"
            ),
        }
    }
    fn is_int(c: &Col) -> String {
        if let Some(k) = &c.k {
            return format!("({k} IS NOT NULL)");
        }
        if c.generated {
            let x = &c.x;
            return format!("(scale({x}) = 0 AND {x} > -1e18 AND {x} < 1e18)");
        }
        format!("({} = 'i')", c.c)
    }
    fn is_float(c: &Col) -> String {
        // Beside an `int8` column, a number it does not hold is a longer integer (which the
        // data check refuses, and with it the whole answer) or a float.
        if let Some(k) = &c.k {
            return format!("({k} IS NULL AND {} IS NOT NULL)", c.x);
        }
        if c.generated {
            return format!("(scale({}) > 0)", c.x);
        }
        format!("({} = 'f')", c.c)
    }
    fn int(c: &Col) -> String {
        match &c.k {
            Some(k) => k.clone(),
            None => format!("{}::int8", c.x),
        }
    }
    fn float(c: &Col) -> String {
        format!("{}::float8", c.x)
    }
    fn sum(c: &Col) -> String {
        // The `int8` column's `SUM` is exact and cheaper than any `numeric` one, and NULL
        // wherever the row holds no such integer.
        if let Some(k) = &c.k {
            return format!(
                "NULL, SUM({k})::text, (SUM({}) FILTER (WHERE {k} IS NULL))::text",
                Self::float(c)
            );
        }
        // A column's `numeric` is summed as it is: casting it to `int8` first costs more
        // than the `numeric` sum saves (an integer's sum prints the same either way). Its
        // integers are told by their scale alone: one of 18 digits or more makes its row's
        // data check fail, which refuses the whole answer, and a `numeric` sum cannot fail
        // on it, so the range test `is_int` adds (two comparisons a row) changes no answer
        // given. `$min` and `$max` keep it: they cast to `int8`, which a long one would break.
        if c.generated {
            return format!(
                "NULL, SUM(CASE WHEN scale({x}) = 0 THEN {x} END)::text, SUM(CASE WHEN {} THEN {} END)::text",
                Self::is_float(c),
                Self::float(c),
                x = c.x
            );
        }
        // Integers of at most 18 digits fit `int8`, whose `SUM` is exact (a `numeric`) and
        // much cheaper than a `numeric` one.
        format!(
            "NULL, SUM(CASE WHEN {} THEN {} END)::text, SUM(CASE WHEN {} THEN {} END)::text",
            Self::is_int(c),
            Self::int(c),
            Self::is_float(c),
            Self::float(c)
        )
    }
    fn out(expr: String) -> String {
        format!("({expr})::text")
    }
    fn order(c: &Col) -> String {
        match c.kind {
            // `x` is NULL for a value not a number (which the data check refuses).
            FieldKind::Number => format!("MIN({})", c.x),
            // `false` sorts before `true` as text too.
            FieldKind::Text | FieldKind::Bool => format!("MIN({} COLLATE \"C\")", c.v),
        }
    }
    const FIRST_ID: &'static str = "MIN(g_id COLLATE \"C\")";
}

/// The statement a grouping runs on SQLite, over the model table `table`.
pub fn render_sqlite_group(table: &str, g: &Grouping) -> SqlQuery {
    render::<Sqlite>(table, g, walk::render_filter::<Sqlite>, None)
}

/// The statement a grouping runs on PostgreSQL, its `$match` reading the table's `generated`
/// columns; every column comes back as text.
pub fn render_pg_group(table: &str, g: &Grouping, generated: Option<Arc<Generated>>) -> SqlQuery {
    render::<Postgres>(table, g, walk::render_filter::<Postgres>, generated)
}

/// The inner queries' columns for each distinct field the grouping reads (by path), and the
/// columns each use of a field reads.
struct Extracted {
    /// The documents' subquery's: `j0`, … where the dialect has them.
    fragments: Vec<String>,
    /// The extracted rows': `t0`, `v0`, …
    select: Vec<String>,
    paths: Vec<String>,
    /// Whether each of `paths` is read from a generated column, and whether from an `int8`
    /// one too.
    from_column: Vec<(bool, bool)>,
    /// The table's generated columns, when they may be read in place of the document: a
    /// column that sorts holds the field's value wherever the document holds one of the
    /// field's kind, and the table holds no other kind there (its check constraint), so
    /// only null and missing look alike, which an object key would tell apart.
    generated: Option<Arc<Generated>>,
    /// Whether some field is taken out of the document.
    from_document: bool,
}

impl Extracted {
    /// The generated columns to read `f` from, if any.
    fn generated(&self, f: &GroupField) -> Option<Source> {
        let generated = self.generated.as_deref()?;
        let value = generated.find(&f.path.segments, |c| {
            c.sorts
                && matches!(
                    (c.kind, f.kind),
                    (GeneratedKind::Text, FieldKind::Text)
                        | (GeneratedKind::Number, FieldKind::Number)
                )
        })?;
        let integer = (f.kind == FieldKind::Number)
            .then(|| generated.find(&f.path.segments, |c| c.kind == GeneratedKind::Integer))
            .flatten();
        Some(Source {
            value: value.to_owned(),
            integer: integer.map(str::to_owned),
        })
    }

    fn col<D: GroupDialect>(&mut self, f: &GroupField) -> Col {
        let dotted = f.path.dotted();
        let i = match self.paths.iter().position(|p| *p == dotted) {
            Some(i) => i,
            None => {
                let i = self.paths.len();
                let source = self.generated(f);
                self.from_document |= source.is_none();
                self.fragments.extend(D::fragment(i, f, source.as_ref()));
                self.select.extend(D::extract(i, f, source.as_ref()));
                self.paths.push(dotted);
                self.from_column.push((
                    source.is_some(),
                    source.is_some_and(|s| s.integer.is_some()),
                ));
                i
            }
        };
        let (generated, integer) = self.from_column.get(i).copied().unwrap_or_default();
        Col {
            t: format!("t{i}"),
            v: format!("v{i}"),
            c: format!("c{i}"),
            x: format!("x{i}"),
            kind: f.kind,
            generated,
            k: integer.then(|| format!("k{i}")),
        }
    }
}

fn render<D: GroupDialect>(
    table: &str,
    g: &Grouping,
    filter: fn(&crate::ast::Filter, &mut SqlQuery),
    generated: Option<Arc<Generated>>,
) -> SqlQuery {
    let mut ex = Extracted {
        fragments: Vec::new(),
        select: Vec::new(),
        paths: Vec::new(),
        from_column: Vec::new(),
        generated: generated
            .clone()
            .filter(|_| !matches!(g.key, PlainKey::Object(_))),
        from_document: false,
    };
    let bad: Vec<String> = g
        .fields()
        .iter()
        .map(|f| format!("({})", D::bad(&ex.col::<D>(f))))
        .collect();
    let bad = if bad.is_empty() {
        "1 = 0".to_owned()
    } else {
        bad.join(" OR ")
    };
    // Counted with a filter rather than summed: no aggregate step for the good rows.
    let bad = format!("COUNT(*) FILTER (WHERE {bad})");
    // A window would cut off the groups whose data check fails; the check is summed over
    // every group before it is.
    let bad = if g.tail.count.is_some() {
        // Summed again, as a number, by the count around it.
        bad
    } else if g.tail.windowed() {
        D::out(format!("SUM({bad}) OVER ()"))
    } else {
        D::out(bad)
    };
    let mut cols = vec![format!("{bad} AS g_bad")];
    let keys: Vec<&GroupField> = match &g.key {
        PlainKey::Null => Vec::new(),
        PlainKey::Field(f) => vec![f],
        PlainKey::Object(fields) => fields.iter().map(|(_, f)| f).collect(),
    };
    let mut group_by = Vec::new();
    let mut key_order = Vec::new();
    for f in &keys {
        let c = ex.col::<D>(f);
        key_order.push(D::order(&c));
        // A lone key groups missing with null, as the in-memory `$group` does; inside an
        // object key a missing field is left out, so the two stay apart.
        let value = D::out(D::key(&c));
        let (typ, by_type) = match g.key {
            // A generated column's type follows from its value (NULL for null and missing,
            // which a lone key groups together), so the value alone groups: one key to hash
            // a row instead of two. The type is written over the grouped value.
            PlainKey::Field(_) if c.generated => (
                format!(
                    "CASE WHEN {value} IS NULL THEN 'null' ELSE '{}' END",
                    generated_type(c.kind)
                ),
                false,
            ),
            PlainKey::Field(_) => (format!("COALESCE({}, 'null')", c.t), true),
            _ => (c.t.clone(), true),
        };
        cols.push(typ);
        if by_type {
            group_by.push(cols.len().to_string());
        }
        cols.push(value);
        group_by.push(cols.len().to_string());
    }
    // A count of the groups needs each group's data check, and the groups, nothing else.
    let accs = if g.tail.count.is_some() {
        &[][..]
    } else {
        &g.accs[..]
    };
    for (_, acc) in accs {
        match acc {
            PlainAcc::Count(_) => cols.push(D::out("COUNT(*)".to_owned())),
            PlainAcc::Sum(f) => cols.push(D::sum(&ex.col::<D>(f))),
            PlainAcc::Avg(f) => {
                let c = ex.col::<D>(f);
                let num = format!("({} OR {})", D::is_int(&c), D::is_float(&c));
                cols.push(D::out(format!(
                    "SUM(CASE WHEN {num} THEN {} END)",
                    D::float(&c)
                )));
                cols.push(D::out(format!("COUNT(CASE WHEN {num} THEN 1 END)")));
            }
            PlainAcc::Min(f) | PlainAcc::Max(f) => {
                let c = ex.col::<D>(f);
                let agg = if matches!(acc, PlainAcc::Min(_)) {
                    "MIN"
                } else {
                    "MAX"
                };
                cols.push(D::out(format!(
                    "{agg}(CASE WHEN {} THEN {} END)",
                    D::is_int(&c),
                    D::int(&c)
                )));
                cols.push(D::out(format!(
                    "{agg}(CASE WHEN {} THEN {} END)",
                    D::is_float(&c),
                    D::float(&c)
                )));
            }
        }
    }
    let mut extracted = vec!["g_id".to_owned()];
    extracted.extend(ex.select);
    let mut docs = vec!["_id AS g_id".to_owned()];
    docs.extend(D::DOC.map(str::to_owned));
    docs.extend(ex.fragments);
    let mut q = SqlQuery {
        generated,
        ..SqlQuery::default()
    };
    if g.tail.count.is_some() {
        let _ = write!(
            q.sql,
            "SELECT {}, {} FROM (",
            D::out("COALESCE(SUM(g_bad), 0)".to_owned()),
            D::out("COUNT(*)".to_owned())
        );
    }
    let _ = write!(
        q.sql,
        "SELECT {} FROM (SELECT {} FROM (SELECT {} FROM {table} WHERE (",
        cols.join(", "),
        extracted.join(", "),
        docs.join(", "),
    );
    filter(&g.filter, &mut q);
    // What keeps PostgreSQL from taking each field out of the document more than once also
    // keeps it from scanning in parallel; columns it reads as they are need no such fence.
    let (keep_docs, keep_rows) = if D::DOC.is_none() && !ex.from_document {
        ("", "")
    } else {
        (D::KEEP_DOCS, D::KEEP_ROWS)
    };
    let _ = write!(q.sql, "){keep_docs}) AS g_docs{keep_rows}) AS g_rows");
    if !group_by.is_empty() {
        let _ = write!(q.sql, " GROUP BY {}", group_by.join(", "));
    }
    // Without keys SQL answers one row even for no rows; `$group` answers no group.
    q.sql.push_str(" HAVING COUNT(*) > 0");
    if g.tail.count.is_some() {
        q.sql.push_str(") AS g_groups");
        return q;
    }
    let mut order: Vec<String> = g
        .tail
        .sort
        .iter()
        .filter_map(|(on, desc)| {
            let expr = match *on {
                GroupSort::Key(i) => key_order.get(i)?.clone(),
                GroupSort::Count(i) => match g.accs.get(i)? {
                    (_, PlainAcc::Count(by)) => format!("COUNT(*) * {by}"),
                    _ => return None,
                },
            };
            // Null and missing sort before every value, as in memory.
            Some(if *desc {
                format!("{expr} DESC NULLS LAST")
            } else {
                format!("{expr} ASC NULLS FIRST")
            })
        })
        .collect();
    order.push(D::FIRST_ID.to_owned());
    let _ = write!(q.sql, " ORDER BY {}", order.join(", "));
    if g.tail.windowed() {
        // Both databases take a signed 64-bit limit and offset; no more groups than that exist.
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let limit = g.tail.limit.map_or(i64::MAX, clamp);
        let _ = write!(q.sql, " LIMIT {limit} OFFSET {}", clamp(g.tail.skip));
    }
    q
}

/// The scan a grouping counted in the server (`HashGroups`) reads on SQLite: per row of the
/// filter, its `_id`, then the JSON text of each field of `Grouping::scan_paths` (SQL NULL
/// when missing), each looked up in the document once; `jxp_query::scanned_cell` reads the
/// text as the type and value the statement's `json_type` and `json_extract` give. With
/// `range`, only the rows whose `rid` is above the first bound and at most the second, so
/// that parts of a table can be read side by side.
pub fn render_sqlite_group_scan(table: &str, g: &Grouping, range: Option<(i64, i64)>) -> SqlQuery {
    let mut cols = vec!["_id".to_owned()];
    for (p, _) in g.scan_paths() {
        cols.push(format!("doc -> '$.{p}'"));
    }
    let mut q = SqlQuery::default();
    let _ = write!(q.sql, "SELECT {} FROM {table} WHERE (", cols.join(", "));
    walk::render_filter::<Sqlite>(&g.filter, &mut q);
    q.sql.push(')');
    if let Some((after, upto)) = range {
        q.sql.push_str(" AND rid > ");
        q.bind(super::SqlParam::Int(after));
        q.sql.push_str(" AND rid <= ");
        q.bind(super::SqlParam::Int(upto));
    }
    q
}

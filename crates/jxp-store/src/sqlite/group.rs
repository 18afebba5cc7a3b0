//! `$match` + `$group` in SQLite. A grouping is counted in a hash table in the server
//! (`jxp_query::HashGroups`) over a scan of the few values each matching row holds for it,
//! which reads the table once in `rid` order and never sorts; a large table is scanned in
//! two `rid` ranges on two reader connections side by side, their tables then merged. The
//! table's memory is bounded by the number of groups ([`HASH_GROUP_BYTES`]); a grouping with
//! more groups than fit runs as the one statement `jxp_query` renders for it instead, whose
//! `GROUP BY` SQLite sorts in its own bounded memory and temporary files. Either way the rows
//! are those `Grouping::decode` reads, and `?explain` shows the scan and its plan.

use jxp_query::{
    Cell, Grouping, HashGroups, SqlQuery, render_sqlite_group, render_sqlite_group_scan,
};
use rusqlite::{Connection, OptionalExtension, params_from_iter, types::Value};

use super::read::{plan, to_sql};
use crate::error::StoreError;
use crate::tables::table_name;

/// Bytes of groups the hash table may hold before the grouping is left to the database.
pub(crate) const HASH_GROUP_BYTES: usize = 32 << 20;

/// Rows (by `rid`) from which a scan is split into two ranges read side by side.
pub(crate) const SPLIT_ROWS: i64 = 100_000;

/// The `rid` ranges to scan the model's table in: one, unbounded, for a small table or a
/// filter SQLite answers from an index; two halves of the `rid`s for a large table read
/// whole. A filter an index serves reads few rows, and split by `rid` SQLite may read each
/// half's rows in `rid` order instead of searching the index: the halves then read more than
/// the one search.
pub(crate) fn ranges(
    conn: &Connection,
    model: &str,
    grouping: &Grouping,
) -> Result<Vec<Option<(i64, i64)>>, StoreError> {
    let max: Option<i64> = conn
        .query_row(
            &format!("SELECT max(rid) FROM {}", table_name(model)),
            [],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let large = max.is_some_and(|max| max >= SPLIT_ROWS);
    if large && searches_an_index(conn, model, grouping)? {
        return Ok(vec![None]);
    }
    Ok(match max {
        Some(max) if max >= SPLIT_ROWS => {
            let mid = max / 2;
            vec![Some((i64::MIN, mid)), Some((mid, i64::MAX))]
        }
        _ => vec![None],
    })
}

/// Whether SQLite answers the grouping's whole scan by searching an index.
fn searches_an_index(
    conn: &Connection,
    model: &str,
    grouping: &Grouping,
) -> Result<bool, StoreError> {
    let q = render_sqlite_group_scan(&table_name(model), grouping, None);
    Ok(plan(conn, &q)?
        .iter()
        .any(|step| step.trim_start().starts_with("SEARCH") && step.contains(" INDEX ")))
}

/// The groups of the rows of `range`, counted in a table of at most `max_bytes`; `None` when
/// they do not fit.
pub(crate) fn hashed(
    conn: &Connection,
    model: &str,
    grouping: &Grouping,
    range: Option<(i64, i64)>,
    max_bytes: usize,
) -> Result<Option<HashGroups>, StoreError> {
    let q = render_sqlite_group_scan(&table_name(model), grouping, range);
    let mut stmt = conn.prepare_cached(&q.sql)?;
    let fields = grouping.scan_paths().len();
    let mut groups = HashGroups::new(grouping.clone(), max_bytes);
    let mut rows = stmt.query(params_from_iter(q.params.iter().map(to_sql)))?;
    while let Some(row) = rows.next()? {
        let id = row.get_ref(0)?.as_str().unwrap_or_default();
        let texts = (1..=fields)
            .map(|i| row.get_ref(i).map(|v| v.as_str_or_null().ok().flatten()))
            .collect::<Result<Vec<Option<&str>>, _>>()?;
        if groups.push_texts(id, &texts).is_err() {
            return Ok(None);
        }
        // A value not of its kind refuses the whole grouping: the rest need not be read.
        if groups.is_bad() {
            break;
        }
    }
    Ok(Some(groups))
}

/// The grouping as the one statement `jxp_query` renders, for groups too many for the hash
/// table. Its `GROUP BY` sorts every matching row: the connection's temporary storage is
/// files while it runs, so that the sort spills to disk rather than growing in memory (the
/// readers otherwise keep it in memory, for the small sorts of lists).
pub(crate) fn aggregate(
    conn: &Connection,
    model: &str,
    grouping: &Grouping,
) -> Result<Vec<Vec<Cell>>, StoreError> {
    conn.execute_batch("PRAGMA temp_store = FILE")?;
    let rows = statement(conn, model, grouping);
    conn.execute_batch("PRAGMA temp_store = MEMORY")?;
    rows
}

fn statement(
    conn: &Connection,
    model: &str,
    grouping: &Grouping,
) -> Result<Vec<Vec<Cell>>, StoreError> {
    let q = render_sqlite_group(&table_name(model), grouping);
    let mut stmt = conn.prepare(&q.sql)?;
    let width = stmt.column_count();
    let rows = stmt.query_map(params_from_iter(q.params.iter().map(to_sql)), |r| {
        (0..width)
            .map(|i| {
                Ok(match r.get::<_, Value>(i)? {
                    Value::Null | Value::Blob(_) => Cell::Null,
                    Value::Integer(n) => Cell::Int(n),
                    Value::Real(f) => Cell::Real(f),
                    Value::Text(s) => Cell::Text(s),
                })
            })
            .collect::<Result<Vec<Cell>, rusqlite::Error>>()
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The scan the hash table is fed by and its plan, after a line saying how its rows are
/// grouped; then the statement run instead when the groups do not fit, and its plan.
pub(crate) fn explain(
    conn: &Connection,
    model: &str,
    grouping: &Grouping,
) -> Result<(SqlQuery, Vec<String>), StoreError> {
    let parts = ranges(conn, model, grouping)?.len();
    let q = render_sqlite_group_scan(&table_name(model), grouping, None);
    let scans = if parts == 1 {
        "one scan".to_owned()
    } else {
        format!("{parts} scans of rid ranges side by side")
    };
    let mut lines = vec![format!(
        "HASH GROUP in jxp over {scans}, groups in order of their first _id, then the stages after the group"
    )];
    lines.extend(plan(conn, &q)?.into_iter().map(|l| format!("  {l}")));
    let statement = render_sqlite_group(&table_name(model), grouping);
    lines.push(format!(
        "past {} MiB of groups, instead: {}",
        HASH_GROUP_BYTES >> 20,
        statement.sql
    ));
    lines.extend(
        plan(conn, &statement)?
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    Ok((q, lines))
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use jxp_query::{
        FieldKind, Filter, GroupField, GroupTail, Grouping, Op, Path, PlainAcc, PlainKey,
    };
    use rusqlite::Connection;
    use serde_json::json;

    use super::{SPLIT_ROWS, ranges};

    /// A table laid out as the store's, with `k` indexed as a declared index is.
    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE \"m_t\" (rid INTEGER PRIMARY KEY, _id TEXT NOT NULL UNIQUE,
                 doc BLOB NOT NULL, _owner_id TEXT, _deleted INTEGER NOT NULL DEFAULT 0);
             CREATE INDEX \"ix_t__k\" ON \"m_t\" (json_extract(doc, '$.k'), _deleted);",
        )
        .unwrap();
        conn
    }

    fn grouping(filter: Filter) -> Grouping {
        let f = |p: &str, kind| GroupField {
            path: Path::plain(p),
            kind,
        };
        Grouping {
            filter,
            key: PlainKey::Field(f("g", FieldKind::Text)),
            accs: vec![("s".into(), PlainAcc::Sum(f("n", FieldKind::Number)))],
            tail: GroupTail::default(),
        }
    }

    #[test]
    fn a_large_table_read_whole_is_split_and_an_index_search_is_not() {
        let conn = table();
        let insert = |rid: i64| {
            conn.execute(
                "INSERT INTO \"m_t\" (rid, _id, doc) VALUES (?1, ?2, jsonb('{\"k\":\"a\"}'))",
                (rid, format!("id{rid}")),
            )
            .unwrap();
        };
        let whole = grouping(Filter::live());
        let by_k = grouping(Filter::live().and(Filter::cond(Path::plain("k"), Op::Eq, json!("a"))));
        insert(1);
        assert_eq!(
            ranges(&conn, "t", &whole).unwrap().len(),
            1,
            "a small table"
        );
        insert(SPLIT_ROWS);
        assert_eq!(ranges(&conn, "t", &whole).unwrap().len(), 2, "read whole");
        assert_eq!(
            ranges(&conn, "t", &by_k).unwrap().len(),
            1,
            "an index search"
        );
    }
}

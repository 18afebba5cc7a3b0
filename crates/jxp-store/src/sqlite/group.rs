//! `$match` + `$group` in SQLite: the one statement `jxp_query` renders for a grouping, its
//! rows read as cells for `Grouping::decode`, and its plan for `?explain`.

use jxp_query::{Cell, Grouping, SqlQuery, render_sqlite_group};
use rusqlite::{Connection, params_from_iter, types::Value};

use super::read::{plan, to_sql};
use crate::error::StoreError;
use crate::tables::table_name;

pub(crate) fn aggregate(
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

pub(crate) fn explain(
    conn: &Connection,
    model: &str,
    grouping: &Grouping,
) -> Result<(SqlQuery, Vec<String>), StoreError> {
    let q = render_sqlite_group(&table_name(model), grouping);
    let lines = plan(conn, &q)?;
    Ok((q, lines))
}

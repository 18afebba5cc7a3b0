//! `$match` + `$group` in PostgreSQL: the one statement `jxp_query` renders for a grouping
//! (every column as text), its rows read as cells for `Grouping::decode`, and its plan.

use jxp_query::{Cell, Grouping, SqlQuery, render_pg_group};

use super::read::query;
use crate::error::StoreError;
use crate::tables::table_name;

pub(crate) async fn aggregate(
    client: &tokio_postgres::Client,
    model: &str,
    grouping: &Grouping,
) -> Result<Vec<Vec<Cell>>, StoreError> {
    let q = render_pg_group(&table_name(model), grouping);
    let rows = query(client, &q).await?;
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    Ok(row
                        .try_get::<_, Option<String>>(i)?
                        .map_or(Cell::Null, Cell::Text))
                })
                .collect()
        })
        .collect()
}

pub(crate) async fn explain(
    client: &tokio_postgres::Client,
    model: &str,
    grouping: &Grouping,
) -> Result<(SqlQuery, Vec<String>), StoreError> {
    let q = render_pg_group(&table_name(model), grouping);
    let mut plan = q.clone();
    plan.sql = format!("EXPLAIN {}", q.sql);
    let lines = query(client, &plan)
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    Ok((q, lines))
}

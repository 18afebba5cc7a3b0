//! `$match` + `$group` in PostgreSQL: the one statement `jxp_query` renders for a grouping
//! (every column as text), its rows read as cells for `Grouping::decode`, and its plan.
//!
//! The statement runs in a transaction of its own with sorting disabled for the planner
//! (`SET LOCAL enable_sort = off`), so it groups in a hash table, and with the server's own
//! parallel workers, which the pool's connections otherwise plan without. The planner cannot
//! know how many groups values extracted from documents make; it guesses thousands, prices a
//! hash table of that many over `work_mem`, and sorts every matching row instead (a million
//! rows spill to disk, seconds where hashing 50 groups takes a fraction of one). A grouping that
//! does make many groups still works: the hash table spills to disk past `work_mem`. The
//! final `ORDER BY` and any `$sort` still sort, as nothing else can.

use std::sync::Arc;

use jxp_query::{Cell, Generated, Grouping, SqlQuery, render_pg_group};

use super::read::query;
use crate::error::StoreError;
use crate::tables::table_name;

/// What the transaction a grouping runs in sets first: no sorting, and parallel workers as
/// the server allows them (the pool's connections plan lists and counts without them).
const BEGIN: &str = "BEGIN READ ONLY; SET LOCAL enable_sort = off; \
                     SET LOCAL max_parallel_workers_per_gather TO DEFAULT";

/// Runs `q` inside [`BEGIN`] and ends the transaction: committed when it answered, rolled back
/// when it failed (the failure is the answer). A read dropped midway never returns its
/// connection to the pool (see `cancel`), so no transaction is left open on a pooled one.
async fn in_hash_transaction(
    client: &tokio_postgres::Client,
    q: &SqlQuery,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    client.batch_execute(BEGIN).await?;
    let rows = query(client, q).await;
    client
        .batch_execute(if rows.is_ok() { "COMMIT" } else { "ROLLBACK" })
        .await?;
    rows
}

pub(crate) async fn aggregate(
    client: &tokio_postgres::Client,
    model: &str,
    grouping: &Grouping,
    generated: Option<Arc<Generated>>,
) -> Result<Vec<Vec<Cell>>, StoreError> {
    let q = render_pg_group(&table_name(model), grouping, generated);
    let rows = in_hash_transaction(client, &q).await?;
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
    generated: Option<Arc<Generated>>,
) -> Result<(SqlQuery, Vec<String>), StoreError> {
    let q = render_pg_group(&table_name(model), grouping, generated);
    let mut plan = q.clone();
    plan.sql = format!("EXPLAIN {}", q.sql);
    let lines = in_hash_transaction(client, &plan)
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    Ok((q, lines))
}

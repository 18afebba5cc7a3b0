//! Reads: documents by id, queries rendered by the PostgreSQL renderer, counts, and the
//! change log. Statements whose text is fixed per model are prepared once per connection;
//! rendered queries, whose text varies with the filter, are not cached.

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::ClientWrapper;
use futures_util::TryStreamExt;
use jxp_query::{
    Filter, Find, SqlParam, SqlQuery, pg_text_search, render_pg_filter, render_pg_order,
    render_pg_order_keys,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::table_name;
use crate::Document;
use crate::change::{Change, ChangeOp};
use crate::error::StoreError;

pub(crate) fn parse_doc(text: &str) -> Result<Document, StoreError> {
    Ok(serde_json::from_str(text)?)
}

/// Runs a rendered query: every parameter travels as text (or NULL). A regex that the
/// `regex` crate accepts but PostgreSQL cannot compile (`\p{L}`, named groups) is the
/// caller's error, not a fault.
async fn query(client: &tokio_postgres::Client, q: &SqlQuery) -> Result<Vec<Row>, StoreError> {
    let params: Vec<Option<String>> = q.params.iter().map(SqlParam::to_pg_text).collect();
    let run = async {
        let rows = client.query_raw(q.sql.as_str(), params.iter()).await?;
        rows.try_collect::<Vec<Row>>().await
    };
    run.await.map_err(|e| match e.as_db_error() {
        Some(db) if *db.code() == SqlState::INVALID_REGULAR_EXPRESSION => StoreError::BadQuery(
            format!("PostgreSQL cannot run this regex: {}", db.message()),
        ),
        _ => e.into(),
    })
}

pub(crate) async fn get(
    client: &ClientWrapper,
    model: &str,
    id: &str,
) -> Result<Option<Document>, StoreError> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT doc::text FROM {} WHERE _id = $1::text",
            table_name(model)
        ))
        .await?;
    let row = client.query_opt(&stmt, &[&id]).await?;
    row.map(|r| parse_doc(r.get(0))).transpose()
}

/// `SELECT <select> FROM m_x WHERE [tsv @@ query AND] (filter)`, with the text query's
/// expression, or `None` when the text leaves nothing to look for.
fn rows_where(
    q: &mut SqlQuery,
    model: &str,
    select: &str,
    text: Option<&str>,
) -> Option<Option<String>> {
    let table = table_name(model);
    let Some(text) = text else {
        q.sql = format!("SELECT {select} FROM {table} WHERE (");
        return Some(None);
    };
    let ts = pg_text_search(text, q)?;
    let select = select.replace("$TS", &ts);
    q.sql = format!("SELECT {select} FROM {table} WHERE tsv @@ {ts} AND (");
    Some(Some(ts))
}

/// The query `find` runs, or `None` when its text leaves nothing to look for.
fn find_sql(model: &str, find: &Find) -> Option<SqlQuery> {
    let text = find.text.as_deref();
    let mut q = SqlQuery::default();
    let select = match text {
        Some(_) => "doc::text, ts_rank(tsv, $TS)::float8 AS score",
        None => "doc::text, NULL::float8",
    };
    let ts = rows_where(&mut q, model, select, text)?;
    render_pg_filter(&find.filter, &mut q);
    q.sql.push(')');
    if ts.is_some() {
        q.sql.push_str(" ORDER BY 2 DESC, ");
        render_pg_order_keys(&find.sort, &mut q);
    } else {
        render_pg_order(&find.sort, &mut q);
    }
    match find.limit {
        Some(l) => q.sql.push_str(&format!(" LIMIT {l}")),
        None => q.sql.push_str(" LIMIT ALL"),
    }
    q.sql.push_str(&format!(" OFFSET {}", find.skip));
    Some(q)
}

/// The query a count runs, or `None` when its text leaves nothing to look for.
fn count_sql(model: &str, filter: &Filter, text: Option<&str>) -> Option<SqlQuery> {
    let mut q = SqlQuery::default();
    rows_where(&mut q, model, "count(*)", text)?;
    render_pg_filter(filter, &mut q);
    q.sql.push(')');
    Some(q)
}

pub(crate) async fn find(
    client: &tokio_postgres::Client,
    model: &str,
    find: &Find,
) -> Result<Vec<Document>, StoreError> {
    let Some(q) = find_sql(model, find) else {
        return Ok(Vec::new());
    };
    let rows = query(client, &q).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut doc = parse_doc(row.get(0))?;
        let score: Option<f64> = row.get(1);
        if let Some(n) = score.and_then(serde_json::Number::from_f64) {
            doc.insert("score".to_owned(), serde_json::Value::Number(n));
        }
        out.push(doc);
    }
    Ok(out)
}

pub(crate) async fn count(
    client: &tokio_postgres::Client,
    model: &str,
    filter: &Filter,
    text: Option<&str>,
) -> Result<u64, StoreError> {
    let Some(q) = count_sql(model, filter, text) else {
        return Ok(0);
    };
    let rows = query(client, &q).await?;
    let n: i64 = rows.first().map(|r| r.get(0)).unwrap_or_default();
    Ok(u64::try_from(n).unwrap_or_default())
}

/// PostgreSQL's plan for the query `find` (or, with `count`, its count) runs, one line per
/// plan line.
pub(crate) async fn explain(
    client: &tokio_postgres::Client,
    model: &str,
    find: &Find,
    count: bool,
) -> Result<Vec<String>, StoreError> {
    let q = if count {
        count_sql(model, &find.filter, find.text.as_deref())
    } else {
        find_sql(model, find)
    };
    let Some(mut q) = q else {
        return Ok(vec![
            "nothing to run: the text query matches no word".to_owned(),
        ]);
    };
    q.sql = format!("EXPLAIN {}", q.sql);
    let rows = query(client, &q).await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Logged changes of a model with `after < seq` (and `seq <= upto`), oldest first.
pub(crate) async fn changes_between(
    client: &tokio_postgres::Client,
    model: &str,
    after: u64,
    upto: Option<u64>,
    limit: usize,
) -> Result<Vec<Arc<Change>>, StoreError> {
    let rows = client
        .query(
            "SELECT seq, op, doc_id, doc::text, actor, silent FROM jxp_changes
             WHERE model = $1::text AND seq > $2::int8 AND seq <= $3::int8
             ORDER BY seq LIMIT $4::int8",
            &[
                &model,
                &to_i64(after),
                &upto.map_or(i64::MAX, to_i64),
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let op: &str = row.get(1);
        let op = ChangeOp::parse(op)
            .ok_or_else(|| StoreError::Database(format!("unknown op {op} in change log")))?;
        out.push(Arc::new(Change {
            model: model.to_owned(),
            seq: u64::try_from(row.get::<_, i64>(0)).unwrap_or_default(),
            op,
            id: row.get(2),
            doc: Arc::new(parse_doc(row.get(3))?),
            actor: row.get(4),
            silent: row.get(5),
        }));
    }
    Ok(out)
}

pub(crate) async fn last_seq(
    client: &tokio_postgres::Client,
    model: &str,
) -> Result<u64, StoreError> {
    let row = client
        .query_opt("SELECT seq FROM jxp_seq WHERE model = $1::text", &[&model])
        .await?;
    Ok(row
        .and_then(|r| u64::try_from(r.get::<_, i64>(0)).ok())
        .unwrap_or_default())
}

/// Every model's last seq.
pub(crate) async fn all_seqs(
    client: &tokio_postgres::Client,
) -> Result<HashMap<String, u64>, StoreError> {
    let rows = client.query("SELECT model, seq FROM jxp_seq", &[]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                u64::try_from(r.get::<_, i64>(1)).unwrap_or_default(),
            )
        })
        .collect())
}

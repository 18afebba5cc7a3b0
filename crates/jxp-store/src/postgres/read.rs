//! Reads: documents by id, queries rendered by the PostgreSQL renderer, counts, and the
//! change log. Statements whose text is fixed per model are prepared once per connection;
//! rendered queries, whose text varies with the filter, are not cached.

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::ClientWrapper;
use futures_util::TryStreamExt;
use jxp_query::{
    Filter, Find, Generated, Op, SqlQuery, pg_text_search, render_pg_filter, render_pg_order,
    render_pg_order_keys,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Row, RowStream};

use super::migrate::has_scan_index;
use crate::change::Change;
use crate::error::StoreError;
use crate::query::{
    ByteCount, INDEXED_COLUMNS, explained, names_none_of, nothing_to_run, push_order,
};
use crate::row::{LoggedRow, found, parse_doc, seq_from_db, seq_to_db};
use crate::tables::table_name;
use crate::{Analyzed, Document};

/// Runs a rendered query: every parameter travels as text (or NULL). A regex that the
/// `regex` crate accepts but PostgreSQL cannot compile (`\p{L}`, named groups) is the
/// caller's error, not a fault.
pub(crate) async fn query(
    client: &tokio_postgres::Client,
    q: &SqlQuery,
) -> Result<Vec<Row>, StoreError> {
    let run = async {
        let rows = send(client, q).await?;
        rows.try_collect::<Vec<Row>>().await
    };
    run.await.map_err(query_error)
}

/// Sends a rendered query, its parameters typed as the text they all are, so that it takes
/// one round trip (parse, bind and execute together) rather than a prepare first.
async fn send(
    client: &tokio_postgres::Client,
    q: &SqlQuery,
) -> Result<RowStream, tokio_postgres::Error> {
    let params = q.params.iter().map(|p| (p.to_pg_text(), Type::TEXT));
    client.query_typed_raw(q.sql.as_str(), params).await
}

/// A regex that the `regex` crate accepts but PostgreSQL cannot compile (`\p{L}`, named
/// groups) is the caller's error, not a fault.
fn query_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if *db.code() == SqlState::INVALID_REGULAR_EXPRESSION => StoreError::BadQuery(
            format!("PostgreSQL cannot run this regex: {}", db.message()),
        ),
        _ => e.into(),
    }
}

pub(crate) async fn get(
    client: &ClientWrapper,
    model: &str,
    id: &str,
) -> Result<Option<Document>, StoreError> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT body FROM {} WHERE _id = $1::text",
            table_name(model)
        ))
        .await?;
    let Some(row) = client.query_opt(&stmt, &[&id]).await? else {
        return Ok(None);
    };
    parse_doc(row.try_get(0)?).map(Some)
}

/// `SELECT <select> FROM m_x WHERE [tsv @@ query AND] (`, with the text query's expression
/// in place of `$TS` in `select`; `None` when the text leaves nothing to look for.
fn rows_where(q: &mut SqlQuery, model: &str, select: &str, text: Option<&str>) -> Option<()> {
    let table = table_name(model);
    let Some(text) = text else {
        q.sql = format!("SELECT {select} FROM {table} WHERE (");
        return Some(());
    };
    let ts = pg_text_search(text, q)?;
    let select = select.replace("$TS", &ts);
    q.sql = format!("SELECT {select} FROM {table} WHERE tsv @@ {ts} AND (");
    Some(())
}

/// The query `find` runs, comparing the table's `generated` columns where they serve, or
/// `None` when its text leaves nothing to look for.
///
/// A page that no index of its own finds (see [`served_by_index`]) and whose filter and sort
/// read only the columns of the table's scan index (`migrate::scan_index`) picks its rows'
/// ids first, `SELECT rid … ORDER BY … LIMIT`, which PostgreSQL answers from that index
/// without reading the table, and then reads only those rows' documents: a scan of about 90
/// bytes a row instead of the whole row, which holds the document twice.
fn find_sql(model: &str, find: &Find, generated: Option<Arc<Generated>>) -> Option<SqlQuery> {
    let text = find.text.as_deref();
    let late = text.is_none()
        && find.limit.is_some()
        && generated
            .as_deref()
            .is_some_and(|g| has_scan_index(&g.0) && !served_by_index(find, g));
    let mut q = SqlQuery {
        generated,
        ..SqlQuery::default()
    };
    let select = match text {
        Some(_) => "body, ts_rank(tsv, $TS)::float8 AS score",
        None => "body, NULL::float8",
    };
    rows_where(&mut q, model, select, text)?;
    let from = q.sql.len();
    render_pg_filter(&find.filter, &mut q);
    q.sql.push(')');
    let order_at = q.sql.len();
    push_order(&mut q, find, render_pg_order, render_pg_order_keys);
    let page = match find.limit {
        Some(l) => format!(" LIMIT {l} OFFSET {}", find.skip),
        None => format!(" LIMIT ALL OFFSET {}", find.skip),
    };
    if late && reads_scan_columns_only(&q.sql[from..]) {
        let table = table_name(model);
        let (filter, order) = (&q.sql[from..order_at], &q.sql[order_at..]);
        q.sql = format!(
            "SELECT {select} FROM {table} WHERE rid IN \
             (SELECT rid FROM {table} WHERE ({filter}{order}{page}){order}"
        );
    } else {
        q.sql.push_str(&page);
    }
    Some(q)
}

/// Whether an index of its own may find `find`'s page without a scan: its first sort key
/// (`_id` when none) or a condition of its filter's top level that compares (equality, `$in`
/// or a range) is on an indexed field or system column. Such a page reads its few rows from
/// the table, and picking their ids first would only add a second look-up of each.
fn served_by_index(find: &Find, generated: &Generated) -> bool {
    let indexed = |segments: &[String]| match segments {
        [one] if INDEXED_COLUMNS.contains(&one.as_str()) => true,
        _ => generated.indexed_at(segments),
    };
    if find.sort.first().is_none_or(|s| indexed(&s.path.segments)) {
        return true;
    }
    let top = match &find.filter {
        Filter::And(all) => all.as_slice(),
        one => std::slice::from_ref(one),
    };
    top.iter().any(|f| {
        matches!(f, Filter::Cond(c)
            if matches!(c.op, Op::Eq | Op::In | Op::Gt | Op::Gte | Op::Lt | Op::Lte)
                && indexed(&c.path.segments))
    })
}

/// Whether rendered SQL names none of the table's columns that the scan index leaves out
/// (the documents, the full-text column, the two times).
fn reads_scan_columns_only(sql: &str) -> bool {
    names_none_of(sql, &["doc", "body", "tsv", "createdat", "updatedat"])
}

/// The query a count runs, or `None` when its text leaves nothing to look for.
fn count_sql(
    model: &str,
    filter: &Filter,
    text: Option<&str>,
    generated: Option<Arc<Generated>>,
) -> Option<SqlQuery> {
    let mut q = SqlQuery {
        generated,
        ..SqlQuery::default()
    };
    rows_where(&mut q, model, "count(*)", text)?;
    render_pg_filter(filter, &mut q);
    q.sql.push(')');
    Some(q)
}

pub(crate) async fn find(
    client: &tokio_postgres::Client,
    model: &str,
    find: &Find,
    generated: Option<Arc<Generated>>,
) -> Result<Vec<Document>, StoreError> {
    let Some(q) = find_sql(model, find, generated) else {
        return Ok(Vec::new());
    };
    // Rows are taken as they stream in, so a find over its `max_bytes` stops without
    // holding the rest; the connection discards what the server still sends.
    let rows = send(client, &q).await.map_err(query_error)?;
    let mut rows = std::pin::pin!(rows);
    let mut out = Vec::new();
    let mut bytes = ByteCount::new(model, find);
    while let Some(row) = rows.try_next().await.map_err(query_error)? {
        let text: &str = row.try_get(0)?;
        bytes.add(text)?;
        out.push(found(text, row.try_get(1)?)?);
    }
    Ok(out)
}

pub(crate) async fn count(
    client: &tokio_postgres::Client,
    model: &str,
    filter: &Filter,
    text: Option<&str>,
    generated: Option<Arc<Generated>>,
) -> Result<u64, StoreError> {
    let Some(q) = count_sql(model, filter, text, generated) else {
        return Ok(0);
    };
    let rows = query(client, &q).await?;
    let n: i64 = match rows.first() {
        Some(row) => row.try_get(0)?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or_default())
}

/// The query `explain` and `analyze` plan: `find`'s or, with `count`, its count's.
fn planned(
    model: &str,
    find: &Find,
    count: bool,
    generated: Option<Arc<Generated>>,
) -> Option<SqlQuery> {
    let g = generated.clone();
    explained(
        model,
        find,
        count,
        |m, f| find_sql(m, f, g),
        |m, f, t| count_sql(m, f, t, generated),
    )
}

/// PostgreSQL's plan for the query `find` (or, with `count`, its count) runs, one line per
/// plan line.
pub(crate) async fn explain(
    client: &tokio_postgres::Client,
    model: &str,
    find: &Find,
    count: bool,
    generated: Option<Arc<Generated>>,
) -> Result<Vec<String>, StoreError> {
    let Some(mut q) = planned(model, find, count, generated) else {
        return Ok(nothing_to_run());
    };
    q.sql = format!("EXPLAIN {}", q.sql);
    let rows = query(client, &q).await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?)
}

/// The query `explain` plans under `EXPLAIN (ANALYZE)`: the plan with its actual rows and
/// times, and the planning and execution times PostgreSQL reports for it.
pub(crate) async fn analyze(
    client: &tokio_postgres::Client,
    model: &str,
    find: &Find,
    count: bool,
    generated: Option<Arc<Generated>>,
) -> Result<Analyzed, StoreError> {
    let Some(mut q) = planned(model, find, count, generated) else {
        return Ok(Analyzed {
            sql: String::new(),
            plan: nothing_to_run(),
            database_ms: 0.0,
        });
    };
    let sql = q.sql.clone();
    q.sql = format!("EXPLAIN (ANALYZE) {}", q.sql);
    let rows = query(client, &q).await?;
    let plan: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    let database_ms = plan.iter().filter_map(|line| reported_ms(line)).sum();
    Ok(Analyzed {
        sql,
        plan,
        database_ms,
    })
}

/// The milliseconds of an `EXPLAIN ANALYZE` line `Planning Time: 0.1 ms` or
/// `Execution Time: 4.2 ms`; `None` for every other line.
fn reported_ms(line: &str) -> Option<f64> {
    let line = line.trim();
    let rest = line
        .strip_prefix("Planning Time: ")
        .or_else(|| line.strip_prefix("Execution Time: "))?;
    rest.strip_suffix(" ms")?.parse().ok()
}

/// Logged changes of a model with `after < seq` (and `seq <= upto`), oldest first.
/// Whether a read of the change log is the listener following notifications, whose rows' age
/// (from their transaction's start, the `at` column, to now) is the notification lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lag {
    Measure,
    Ignore,
}

pub(crate) async fn changes_between(
    client: &tokio_postgres::Client,
    model: &str,
    after: u64,
    upto: Option<u64>,
    limit: usize,
    lag: Lag,
) -> Result<Vec<Arc<Change>>, StoreError> {
    let rows = client
        .query(
            "SELECT seq, op, doc_id, doc::text, actor, silent,
                    extract(epoch FROM clock_timestamp() - at)::float8 FROM jxp_changes
             WHERE model = $1::text AND seq > $2::int8 AND seq <= $3::int8
             ORDER BY seq LIMIT $4::int8",
            &[
                &model,
                &seq_to_db(after),
                &upto.map_or(i64::MAX, seq_to_db),
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let logged = LoggedRow {
            seq: row.try_get(0)?,
            op: row.try_get(1)?,
            id: row.try_get(2)?,
            doc: row.try_get(3)?,
            actor: row.try_get(4)?,
            silent: row.try_get(5)?,
        };
        if lag == Lag::Measure {
            let age: f64 = row.try_get(6)?;
            metrics::histogram!("jxp_pg_notification_lag_seconds").record(age.max(0.0));
        }
        out.push(logged.into_change(model)?);
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
    match row {
        Some(row) => Ok(seq_from_db(row.try_get(0)?)),
        None => Ok(0),
    }
}

/// Every model's last seq.
pub(crate) async fn all_seqs(
    client: &tokio_postgres::Client,
) -> Result<HashMap<String, u64>, StoreError> {
    let rows = client.query("SELECT model, seq FROM jxp_seq", &[]).await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, seq_from_db(r.try_get(1)?))))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use jxp_query::{Cond, Filter, Find, Generated, GeneratedColumn, GeneratedKind, Op, Path};
    use jxp_query::{Sort, SortDir};
    use serde_json::json;

    use super::{find_sql, has_scan_index, reads_scan_columns_only, reported_ms};

    /// `n` indexed, `m` not: both Number fields with a generated column.
    fn generated() -> Option<Arc<Generated>> {
        let col = |path: &str, indexed| GeneratedColumn {
            path: path.into(),
            column: format!("gn_{path}"),
            kind: GeneratedKind::Number,
            sorts: true,
            indexed,
        };
        Some(Arc::new(Generated(vec![col("n", true), col("m", false)])))
    }

    fn cond(path: &str, op: Op, value: serde_json::Value) -> Filter {
        Filter::Cond(Cond {
            path: Path::plain(path),
            op,
            value,
        })
    }

    fn page(filter: Filter, sort: &str) -> Find {
        Find {
            filter: filter.and(cond("_deleted", Op::Eq, json!(false))),
            sort: vec![Sort {
                path: Path::plain(sort),
                dir: SortDir::Asc,
            }],
            limit: Some(21),
            skip: 40,
            ..Find::default()
        }
    }

    fn sql(find: &Find, generated: Option<Arc<Generated>>) -> String {
        find_sql("x", find, generated)
            .map(|q| q.sql)
            .unwrap_or_default()
    }

    const LATE: &str = "WHERE rid IN (SELECT rid FROM \"m_x\" WHERE (";

    #[test]
    fn a_page_that_must_scan_picks_its_row_ids_from_the_scan_columns_first() {
        let find = page(cond("m", Op::Gte, json!(5)), "m");
        let text = sql(&find, generated());
        assert!(text.contains(LATE), "{text}");
        // The page is cut inside, and the rows read are put in the same order outside.
        let inner_end = text.find("OFFSET 40)").unwrap_or_else(|| panic!("{text}"));
        let order = text.find(" ORDER BY ").unwrap_or_else(|| panic!("{text}"));
        assert_eq!(
            text[order..inner_end].matches("LIMIT 21").count(),
            1,
            "{text}"
        );
        assert!(
            text.ends_with(&text[order..text.find(" LIMIT").unwrap_or(0)]),
            "{text}"
        );
    }

    #[test]
    fn a_page_an_index_serves_or_that_reads_the_documents_is_one_query() {
        let plain = [
            // sorted on an indexed field, or on `_id` when not sorted
            page(cond("m", Op::Gte, json!(5)), "n"),
            Find {
                sort: Vec::new(),
                ..page(cond("m", Op::Gte, json!(5)), "m")
            },
            // found through an index: an equality or a range on one
            page(cond("n", Op::Eq, json!(5)), "m"),
            page(cond("_owner_id", Op::Eq, json!("u1")), "m"),
            page(cond("n", Op::Lt, json!(5)), "m"),
            // reads the document, or a time the scan index leaves out
            page(cond("title", Op::Eq, json!("a")), "m"),
            page(cond("createdAt", Op::Ne, json!("2026")), "m"),
            // every row, or a full-text search
            Find {
                limit: None,
                ..page(cond("m", Op::Gte, json!(5)), "m")
            },
        ];
        for find in &plain {
            let text = sql(find, generated());
            assert!(!text.contains("rid IN"), "{text}");
            assert!(text.ends_with("OFFSET 40"), "{text}");
        }
        // A table without generated columns has no scan index.
        let text = sql(&page(cond("m", Op::Gte, json!(5)), "m"), None);
        assert!(!text.contains("rid IN"), "{text}");
        // A condition on an indexed field under `$or` does not make an index serve the page.
        let either = Filter::Or(vec![
            cond("n", Op::Eq, json!(1)),
            cond("m", Op::Eq, json!(2)),
        ]);
        assert!(sql(&page(either, "m"), generated()).contains(LATE));
    }

    #[test]
    fn a_table_whose_only_generated_column_has_its_own_index_has_no_scan_index() {
        let g = generated().unwrap_or_default();
        let (n, m) = (g.0[0].clone(), g.0[1].clone());
        assert!(!has_scan_index(&[]));
        assert!(!has_scan_index(std::slice::from_ref(&n)));
        assert!(has_scan_index(std::slice::from_ref(&m)));
        assert!(has_scan_index(&[n.clone(), m]));
        // The `int8` column beside a number column does not make a second one.
        let n_int = GeneratedColumn {
            column: "gi_n".into(),
            kind: GeneratedKind::Integer,
            sorts: false,
            indexed: false,
            ..n.clone()
        };
        assert!(!has_scan_index(&[n.clone(), n_int]));
        // Without one, no page is read in two steps.
        let only_n = Some(Arc::new(Generated(vec![n])));
        let find = page(cond("n", Op::Ne, json!(5)), "_deleted");
        assert!(sql(&find, generated()).contains(LATE));
        assert!(!sql(&find, only_n).contains("rid IN"));
    }

    #[test]
    fn only_the_columns_the_scan_index_leaves_out_count_as_read() {
        assert!(reads_scan_columns_only(
            "((\"gn_doc\" >= $1::text::numeric) AND (_deleted = $2::text::boolean)) ORDER BY \"gn_doc\" ASC NULLS FIRST, _id ASC"
        ));
        for sql in [
            "(jxp_num((doc->'n')) > $1::text::numeric)",
            " ORDER BY jxp_key((doc->'n'), body, ARRAY['n']::text[]) ASC",
            "(createdAt >= $1::text)",
            "(updatedat >= $1::text)",
            "tsv @@ q",
        ] {
            assert!(!reads_scan_columns_only(sql), "{sql}");
        }
    }

    #[test]
    fn the_planning_and_execution_times_are_read_from_their_lines() {
        assert_eq!(reported_ms("Planning Time: 0.125 ms"), Some(0.125));
        assert_eq!(reported_ms(" Execution Time: 41.9 ms"), Some(41.9));
        assert_eq!(
            reported_ms("Seq Scan on m_x  (actual time=0.01..2.5 rows=3 loops=1)"),
            None
        );
        assert_eq!(reported_ms("Execution Time: soon"), None);
    }
}

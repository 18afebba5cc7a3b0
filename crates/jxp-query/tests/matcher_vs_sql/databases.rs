//! The tables the filters run on: a SQLite table shaped like the store's, always, and a
//! PostgreSQL one when `JXP_TEST_DATABASE_URL` names a server.

use std::collections::BTreeSet;
use std::sync::Arc;

use jxp_query::{
    Filter, Generated, GeneratedColumn, GeneratedKind, PG_FUNCTIONS, SqlParam, SqlQuery,
    pg_generated_check, pg_generated_expr, render_pg_filter, render_sqlite_filter,
};
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use serde_json::{Map, Value};

/// The stored generated columns of the SQLite table, as the store makes them for Number
/// fields no index covers: each holds `json_extract(doc, path)` as it is. Here they are on
/// paths of every kind, so that the filters compare values of every type through them.
pub(crate) fn sqlite_generated() -> Arc<Generated> {
    let col = |path: &str| GeneratedColumn {
        path: path.into(),
        column: format!("gn_{}", path.replace('.', "__")),
        kind: GeneratedKind::Number,
        sorts: false,
        indexed: false,
    };
    Arc::new(Generated(vec![
        col("b"),
        col("d"),
        col("tags"),
        col("obj"),
        col("obj.zip"),
    ]))
}

/// A table shaped like the store's (documents as JSONB, [`sqlite_generated`] columns after
/// them), with the store's REGEXP.
pub(crate) fn database(docs: &[Map<String, Value>]) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    let generated: String = sqlite_generated()
        .0
        .iter()
        .map(|c| {
            format!(
                ",\n\"{}\" GENERATED ALWAYS AS (json_extract(doc, '$.{}')) STORED",
                c.column, c.path
            )
        })
        .collect();
    conn.execute_batch(&format!(
        "CREATE TABLE t (
             rid INTEGER PRIMARY KEY,
             _id TEXT NOT NULL UNIQUE,
             doc BLOB NOT NULL,
             _owner_id TEXT,
             _deleted INTEGER NOT NULL DEFAULT 0,
             createdAt TEXT,
             updatedAt TEXT{generated}
         );
         CREATE INDEX iy_t__n ON t (json_extract(doc, '$.n'), _deleted);
         CREATE INDEX iy_t__s ON t (json_extract(doc, '$.s'), _deleted);"
    ))
    .unwrap();
    conn.create_scalar_function(
        "regexp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let re: Arc<regex::Regex> = ctx.get_or_create_aux(
                0,
                |vr| -> Result<_, Box<dyn std::error::Error + Send + Sync + 'static>> {
                    Ok(regex::RegexBuilder::new(vr.as_str()?)
                        .size_limit(1 << 20)
                        .build()?)
                },
            )?;
            let text = match ctx.get_raw(1) {
                rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or_default(),
                _ => return Ok(false),
            };
            Ok(re.is_match(text))
        },
    )
    .unwrap();
    for doc in docs {
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        conn.execute(
            "INSERT INTO t (_id, doc, _owner_id, _deleted, createdAt, updatedAt)
             VALUES (?1, jsonb(?2), ?3, ?4, ?5, ?6)",
            rusqlite::params![
                text("_id"),
                serde_json::to_string(doc).unwrap(),
                text("_owner_id"),
                doc.get("_deleted")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                text("createdAt"),
                text("updatedAt"),
            ],
        )
        .unwrap();
    }
    conn
}

pub(crate) fn sql_ids(conn: &Connection, filter: &Filter) -> BTreeSet<String> {
    let mut q = SqlQuery {
        sql: "SELECT _id FROM t WHERE ".into(),
        generated: Some(sqlite_generated()),
        ..SqlQuery::default()
    };
    render_sqlite_filter(filter, &mut q);
    let params = sqlite_params(&q);
    let mut stmt = conn
        .prepare(&q.sql)
        .unwrap_or_else(|e| panic!("{e}: {}", q.sql));
    stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}: {}", q.sql))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {}", q.sql))
}

/// A rendered query's parameters, as SQLite binds them.
pub(crate) fn sqlite_params(q: &SqlQuery) -> Vec<rusqlite::types::Value> {
    q.params
        .iter()
        .map(|p| match p {
            SqlParam::Null => rusqlite::types::Value::Null,
            SqlParam::Int(i) => rusqlite::types::Value::Integer(*i),
            SqlParam::Real(f) => rusqlite::types::Value::Real(*f),
            SqlParam::Text(s) => rusqlite::types::Value::Text(s.clone()),
        })
        .collect()
}

pub(crate) fn with_ids(docs: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    docs.into_iter()
        .enumerate()
        .map(|(i, mut d)| {
            d.insert("_id".into(), Value::from(format!("{:024x}", i + 1)));
            d
        })
        .collect()
}

/// The generated columns of the PostgreSQL table, as the store makes them for indexed fields,
/// plus ones of the other kind on the same paths, so that comparisons of every value with
/// every path read them. Those of the kind the model gives the path sort, as the store's do
/// where a check constraint holds the documents to it: the documents the filter and sort
/// tests load follow the model (the grouping tests' odd ones are never sorted by these), and
/// the sort test checks that they do ([`assert_sortable`]).
pub(crate) fn pg_generated() -> Arc<Generated> {
    let col = |path: &str, kind, sorts| GeneratedColumn {
        path: path.into(),
        column: format!(
            "{}_{}",
            match kind {
                GeneratedKind::Text => "gt",
                GeneratedKind::Number => "gn",
                GeneratedKind::Integer => "gi",
            },
            path.replace('.', "__")
        ),
        kind,
        sorts,
        indexed: false,
    };
    Arc::new(Generated(vec![
        col("s", GeneratedKind::Text, true),
        col("s", GeneratedKind::Number, false),
        col("n", GeneratedKind::Number, true),
        col("n", GeneratedKind::Text, false),
        col("d", GeneratedKind::Text, true),
        col("obj.city", GeneratedKind::Text, true),
        col("obj.zip", GeneratedKind::Number, true),
        // The grouping tests' text and number fields: `m` with the `int8` column the store
        // puts beside every number column, `n` without it (a table made before it was).
        col("k", GeneratedKind::Text, true),
        col("m", GeneratedKind::Number, true),
        col("m", GeneratedKind::Integer, false),
    ]))
}

/// A PostgreSQL connection with a table shaped like the store's, in a schema of its own, or
/// `None` when no server is configured. Cases take turns on it.
pub(crate) struct Pg {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) client: tokio_postgres::Client,
}

pub(crate) fn pg() -> Option<&'static std::sync::Mutex<Pg>> {
    static PG: std::sync::OnceLock<Option<std::sync::Mutex<Pg>>> = std::sync::OnceLock::new();
    PG.get_or_init(|| {
        let url = std::env::var("JXP_TEST_DATABASE_URL").ok()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let schema = format!(
                "mvs_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            );
            let generated: Vec<String> = pg_generated()
                .0
                .iter()
                .map(|c| {
                    let ty = match c.kind {
                        GeneratedKind::Text => "text COLLATE \"C\"",
                        GeneratedKind::Number => "numeric",
                        GeneratedKind::Integer => "int8",
                    };
                    format!(
                        "ALTER TABLE t ADD COLUMN \"{}\" {ty} GENERATED ALWAYS AS ({}) STORED;",
                        c.column,
                        pg_generated_expr(&c.path, c.kind).unwrap()
                    )
                })
                .collect();
            let generated = generated.join("\n");
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA {schema}; SET search_path = {schema};
                     {PG_FUNCTIONS}
                     CREATE TABLE t (
                         rid bigserial PRIMARY KEY,
                         _id text COLLATE \"C\" NOT NULL UNIQUE,
                         doc jsonb NOT NULL,
                         body text NOT NULL,
                         _owner_id text COLLATE \"C\",
                         _deleted boolean NOT NULL DEFAULT false,
                         createdAt text COLLATE \"C\",
                         updatedAt text COLLATE \"C\"
                     );
                     CREATE INDEX ix_t__s ON t (((doc->>'s')) COLLATE \"C\");
                     {generated}"
                ))
                .await
                .unwrap();
            client
        });
        Some(std::sync::Mutex::new(Pg { rt, client }))
    })
    .as_ref()
}

/// Replaces the rows of the PostgreSQL table with `docs`.
pub(crate) async fn load_pg(pg: &Pg, docs: &[Map<String, Value>]) {
    pg.client.batch_execute("TRUNCATE t").await.unwrap();
    for doc in docs {
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        pg.client
            .execute(
                "INSERT INTO t (_id, doc, body, _owner_id, _deleted, createdAt, updatedAt)
                     VALUES ($1, $2::text::jsonb, $2::text, $3, $4, $5, $6)",
                &[
                    &text("_id"),
                    &serde_json::to_string(doc).unwrap(),
                    &text("_owner_id"),
                    &doc.get("_deleted")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    &text("createdAt"),
                    &text("updatedAt"),
                ],
            )
            .await
            .unwrap();
    }
}

/// Every row of the table satisfies the check of each generated column that sorts, as the
/// store's check constraints make sure of its own tables.
pub(crate) async fn assert_sortable(pg: &Pg) {
    let checks: Vec<String> = pg_generated()
        .0
        .iter()
        .filter(|c| c.sorts)
        .map(|c| {
            format!(
                "coalesce({}, TRUE)",
                pg_generated_check(&c.path, c.kind).unwrap()
            )
        })
        .collect();
    let sql = format!(
        "SELECT count(*) FROM t WHERE NOT ({})",
        checks.join(" AND ")
    );
    let bad: i64 = pg.client.query_one(&sql, &[]).await.unwrap().get(0);
    assert_eq!(bad, 0, "documents of another kind than the model's: {sql}");
}

/// The ids each filter selects on PostgreSQL, after loading `docs` into the table.
pub(crate) fn pg_ids(
    pg: &Pg,
    docs: &[Map<String, Value>],
    filters: &[Filter],
) -> Vec<BTreeSet<String>> {
    pg.rt.block_on(async {
        load_pg(pg, docs).await;
        let mut out = Vec::new();
        for f in filters {
            let mut q = SqlQuery {
                sql: "SELECT _id FROM t WHERE ".into(),
                generated: Some(pg_generated()),
                ..SqlQuery::default()
            };
            render_pg_filter(f, &mut q);
            let ids = pg_query(pg, &q).await;
            out.push(ids.iter().map(|r| r.get::<_, String>(0)).collect());
        }
        out
    })
}

/// Runs a rendered query on PostgreSQL, every parameter as text.
pub(crate) async fn pg_query(pg: &Pg, q: &SqlQuery) -> Vec<tokio_postgres::Row> {
    use futures_util::TryStreamExt;
    let params: Vec<Option<String>> = q.params.iter().map(SqlParam::to_pg_text).collect();
    let rows = pg
        .client
        .query_raw(&q.sql, params.iter())
        .await
        .unwrap_or_else(|e| panic!("{e:?}: {}", q.sql));
    rows.try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e:?}: {}", q.sql))
}

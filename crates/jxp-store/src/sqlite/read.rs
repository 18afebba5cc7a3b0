//! Reads: a pool of reader connections (WAL lets them run beside the writer) and the queries
//! they run. Each read runs on the blocking pool so a long scan never stalls the runtime.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jxp_query::{Filter, Find, SqlParam, SqlQuery, render_sqlite_filter, render_sqlite_order};
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use tokio::sync::Semaphore;

use super::{open_connection, table_name};
use crate::Document;
use crate::change::{Change, ChangeOp};
use crate::error::StoreError;

pub(crate) struct ReaderPool {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Semaphore,
}

impl ReaderPool {
    pub fn open(path: &Path, size: usize) -> Result<Self, StoreError> {
        let mut conns = Vec::with_capacity(size);
        for _ in 0..size {
            let conn = open_connection(path)?;
            conn.execute_batch("PRAGMA query_only = ON;")?;
            conns.push(conn);
        }
        Ok(ReaderPool {
            path: path.to_owned(),
            idle: Arc::new(Mutex::new(conns)),
            permits: Semaphore::new(size),
        })
    }

    /// Runs `f` on an idle reader connection on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match taken {
            Some(conn) => conn,
            // A connection is lost only if a read task died; replace it.
            None => {
                let conn = open_connection(&self.path)?;
                conn.execute_batch("PRAGMA query_only = ON;")?;
                conn
            }
        };
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let result = f(&conn);
            if let Ok(mut idle) = idle.lock() {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

fn to_sql(p: &SqlParam) -> rusqlite::types::Value {
    match p {
        SqlParam::Null => rusqlite::types::Value::Null,
        SqlParam::Int(i) => rusqlite::types::Value::Integer(*i),
        SqlParam::Real(f) => rusqlite::types::Value::Real(*f),
        SqlParam::Text(s) => rusqlite::types::Value::Text(s.clone()),
    }
}

pub(crate) fn parse_doc(text: &str) -> Result<Document, StoreError> {
    Ok(serde_json::from_str(text)?)
}

pub(crate) fn get(
    conn: &Connection,
    model: &str,
    id: &str,
) -> Result<Option<Document>, StoreError> {
    let sql = format!("SELECT doc FROM {} WHERE _id = ?1", table_name(model));
    let mut stmt = conn.prepare_cached(&sql)?;
    let text: Option<String> = stmt.query_row([id], |r| r.get(0)).optional()?;
    text.as_deref().map(parse_doc).transpose()
}

pub(crate) fn find(
    conn: &Connection,
    model: &str,
    find: &Find,
) -> Result<Vec<Document>, StoreError> {
    let mut q = SqlQuery {
        sql: format!("SELECT doc FROM {} WHERE ", table_name(model)),
        params: Vec::new(),
    };
    render_sqlite_filter(&find.filter, &mut q);
    render_sqlite_order(&find.sort, &mut q);
    // SQLite wants a LIMIT before an OFFSET; -1 means none.
    let limit = find
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let skip = i64::try_from(find.skip).unwrap_or(i64::MAX);
    q.sql.push_str(&format!(" LIMIT {limit} OFFSET {skip}"));
    let mut stmt = conn.prepare_cached(&q.sql)?;
    let rows = stmt.query_map(params_from_iter(q.params.iter().map(to_sql)), |r| {
        r.get::<_, String>(0)
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.push(parse_doc(&row?)?);
    }
    Ok(out)
}

pub(crate) fn count(conn: &Connection, model: &str, filter: &Filter) -> Result<u64, StoreError> {
    let mut q = SqlQuery {
        sql: format!("SELECT COUNT(*) FROM {} WHERE ", table_name(model)),
        params: Vec::new(),
    };
    render_sqlite_filter(filter, &mut q);
    let mut stmt = conn.prepare_cached(&q.sql)?;
    let n: i64 = stmt.query_row(params_from_iter(q.params.iter().map(to_sql)), |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or_default())
}

pub(crate) fn changes_since(
    conn: &Connection,
    model: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<Arc<Change>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, op, doc_id, doc, actor, silent FROM jxp_changes
         WHERE model = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(rusqlite::params![model, after, limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, bool>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, op, id, doc, actor, silent) = row?;
        let op = ChangeOp::parse(&op)
            .ok_or_else(|| StoreError::Database(format!("unknown op {op} in change log")))?;
        out.push(Arc::new(Change {
            model: model.to_owned(),
            seq: u64::try_from(seq).unwrap_or_default(),
            op,
            id,
            doc: Arc::new(parse_doc(&doc)?),
            actor,
            silent,
        }));
    }
    Ok(out)
}

pub(crate) fn last_seq(conn: &Connection, model: &str) -> Result<u64, StoreError> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM jxp_seq WHERE model = ?1")?
        .query_row([model], |r| r.get(0))
        .optional()?;
    Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or_default())
}

//! Reads: a pool of reader connections (WAL lets them run beside the writer) and the queries
//! they run. Each read runs on the blocking pool so a long scan never stalls the runtime.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use jxp_model::sync::lock;
use jxp_query::{
    Filter, Find, Generated, SqlParam, SqlQuery, fts5_query, render_sqlite_filter,
    render_sqlite_order, render_sqlite_order_keys,
};
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use tokio::sync::Semaphore;

use super::{fts_name, open_connection};
use crate::change::Change;
use crate::error::StoreError;
use crate::query::{
    ByteCount, INDEXED_COLUMNS, explained, names_none_of, nothing_to_run, push_order,
};
use crate::row::{LoggedRow, found, parse_doc, seq_from_db, seq_to_db};
use crate::tables::table_name;
use crate::{Analyzed, Document};

pub(crate) struct ReaderPool {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    /// One per connection; a read holds its permit until its connection is back in `idle`,
    /// so reads abandoned by their callers still count until they have stopped.
    permits: Arc<Semaphore>,
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
            permits: Arc::new(Semaphore::new(size)),
        })
    }

    /// Runs `f` on an idle reader connection on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let conn = self.take()?;
        let idle = self.idle.clone();
        let guard = InterruptOnDrop::new(&conn);
        let state = guard.state.clone();
        let result = tokio::task::spawn_blocking(move || {
            // A read whose caller left while it waited for a thread is not started at all:
            // an interrupt before its first step would be forgotten by that step.
            let result = if *lock(&state) == ReadState::Abandoned {
                Err(StoreError::Interrupted)
            } else {
                f(&conn)
            };
            *lock(&state) = ReadState::Finished;
            lock(&idle).push(conn);
            drop(permit);
            result
        })
        .await;
        drop(guard);
        result.map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }

    /// Runs `f`, a read of a few pages by key (a document by id), on the calling thread when a
    /// reader connection is idle: handing it to the blocking pool would cost more than the
    /// read, and the hand-off is what limits reads by id on many cores. With every reader
    /// busy it waits its turn as `run` does.
    pub async fn run_short<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Ok(_permit) = self.permits.try_acquire() else {
            return self.run(f).await;
        };
        let conn = self.take()?;
        let result = f(&conn);
        lock(&self.idle).push(conn);
        result
    }

    /// An idle connection; the caller holds a permit, so one is there unless a read task died
    /// holding it, and then a new one replaces it.
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = lock(&self.idle).pop() {
            return Ok(conn);
        }
        let conn = open_connection(&self.path)?;
        conn.execute_batch("PRAGMA query_only = ON;")?;
        Ok(conn)
    }
}

/// Interrupts a read still running on the blocking pool when the future waiting for it is
/// dropped: a request that timed out (or whose client left) must not leave its scan running
/// for minutes behind the answer. The interrupted statement fails and is reset as it is
/// dropped, so the connection goes back to the pool fit for the next read.
struct InterruptOnDrop {
    handle: rusqlite::InterruptHandle,
    /// Moves to `Finished`, under this lock, before the connection goes back to the pool:
    /// interrupting after that would stop whatever read took it next, so the two never cross.
    state: Arc<Mutex<ReadState>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Running,
    Abandoned,
    Finished,
}

impl InterruptOnDrop {
    fn new(conn: &Connection) -> Self {
        InterruptOnDrop {
            handle: conn.get_interrupt_handle(),
            state: Arc::new(Mutex::new(ReadState::Running)),
        }
    }
}

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if *state == ReadState::Running {
            *state = ReadState::Abandoned;
            self.handle.interrupt();
        }
    }
}

pub(crate) fn to_sql(p: &SqlParam) -> rusqlite::types::Value {
    match p {
        SqlParam::Null => rusqlite::types::Value::Null,
        SqlParam::Int(i) => rusqlite::types::Value::Integer(*i),
        SqlParam::Real(f) => rusqlite::types::Value::Real(*f),
        SqlParam::Text(s) => rusqlite::types::Value::Text(s.clone()),
    }
}

pub(crate) fn get(
    conn: &Connection,
    model: &str,
    id: &str,
) -> Result<Option<Document>, StoreError> {
    let sql = format!("SELECT json(doc) FROM {} WHERE _id = ?1", table_name(model));
    let mut stmt = conn.prepare_cached(&sql)?;
    let text: Option<String> = stmt.query_row([id], |r| r.get(0)).optional()?;
    text.as_deref().map(parse_doc).transpose()
}

/// The start of a query over a model's rows: `<select> FROM m_x WHERE `, or, with a text
/// query, the rows joined to their full-text entries (`rowid` = `rid`) that match it. The
/// filter renders unqualified column names (`doc`, `_id`, …); the FTS table's columns are
/// `c0…cN` plus its hidden ones, so nothing is ambiguous in the join. Answers whether the
/// text query can match at all.
fn rows_where(q: &mut SqlQuery, model: &str, select: &str, text: Option<&str>) -> bool {
    let table = table_name(model);
    let Some(text) = text else {
        q.sql
            .push_str(&format!("SELECT {select} FROM {table} WHERE "));
        return true;
    };
    let Some(query) = fts5_query(text) else {
        return false;
    };
    let fts = fts_name(model);
    q.sql.push_str(&format!(
        "SELECT {select} FROM {fts} JOIN {table} ON {table}.rid = {fts}.rowid WHERE {fts} MATCH "
    ));
    q.bind(SqlParam::Text(query));
    q.sql.push_str(" AND ");
    true
}

/// The SQL `find` runs, or `None` when its text query cannot match anything; `indexed_by`
/// names the index it reads the rows from ([`sort_index`]).
///
/// A page that no index of its own finds, whose filter and sort read only what the table's
/// scan index holds (`migrate::scan_index_name`: `_deleted`, `_id` and the fields with
/// generated columns) picks its rows' ids there first, `SELECT rid … INDEXED BY … ORDER BY …
/// LIMIT`, and then reads only those rows' documents: a scan of the narrow index instead of
/// every row. That inner query names the fields as `json_extract(doc, …)`, the expressions
/// the index is on, so that SQLite reads the index alone.
fn find_sql(
    model: &str,
    find: &Find,
    indexed_by: Option<&str>,
    generated: Option<&Arc<Generated>>,
) -> Option<SqlQuery> {
    let text = find.text.as_deref();
    let late = text.is_none()
        && indexed_by.is_none()
        && find.limit.is_some()
        && generated.is_some()
        && !sorted_by_an_index(find);
    let mut q = SqlQuery {
        generated: generated.cloned(),
        ..SqlQuery::default()
    };
    // bm25 is lower for better matches; its negation reads as "higher is better".
    let select = match text {
        Some(_) => format!("json(doc), -bm25({})", fts_name(model)),
        None => "json(doc), NULL".to_owned(),
    };
    match indexed_by {
        Some(index) if text.is_none() => {
            let table = table_name(model);
            q.sql.push_str(&format!(
                "SELECT {select} FROM {table} INDEXED BY \"{index}\" WHERE "
            ));
        }
        _ => {
            if !rows_where(&mut q, model, &select, text) {
                return None;
            }
        }
    }
    let from = q.sql.len();
    q.sql.push('(');
    render_sqlite_filter(&find.filter, &mut q);
    q.sql.push(')');
    let order_at = q.sql.len();
    push_order(&mut q, find, render_sqlite_order, render_sqlite_order_keys);
    // SQLite wants a LIMIT before an OFFSET; -1 means none.
    let limit = find
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let skip = i64::try_from(find.skip).unwrap_or(i64::MAX);
    let page = format!(" LIMIT {limit} OFFSET {skip}");
    // With every read of the document turned into a generated column, what is left reads the
    // scan index's fields and columns only.
    if late && reads_scan_columns_only(&q.sql[from..]) {
        let table = table_name(model);
        let scan = super::migrate::scan_index_name(model);
        let order = q.sql[order_at..].to_owned();
        let mut inner = SqlQuery {
            sql: format!("SELECT rid FROM {table} INDEXED BY \"{scan}\" WHERE ("),
            ..SqlQuery::default()
        };
        render_sqlite_filter(&find.filter, &mut inner);
        inner.sql.push(')');
        push_order(
            &mut inner,
            find,
            render_sqlite_order,
            render_sqlite_order_keys,
        );
        q.sql = format!(
            "SELECT {select} FROM {table} WHERE rid IN ({}{page}){order}",
            inner.sql
        );
        q.params = inner.params;
    } else {
        q.sql.push_str(&page);
    }
    Some(q)
}

/// Whether `find`'s first sort key (`_id` when none) is a system column with an index of its
/// own, which finds the page in order without a scan.
fn sorted_by_an_index(find: &Find) -> bool {
    find.sort.first().is_none_or(
        |s| matches!(s.path.segments.as_slice(), [one] if INDEXED_COLUMNS.contains(&one.as_str())),
    )
}

/// Whether rendered SQL names none of the columns the scan index leaves out (the document,
/// the owner, the two times).
fn reads_scan_columns_only(sql: &str) -> bool {
    names_none_of(sql, &["doc", "_owner_id", "createdat", "updatedat"])
}

/// Tables smaller than this are sorted as SQLite plans it: sorting all matches costs little.
const ORDERED_MIN_ROWS: i64 = 10_000;
/// Pages (limit and skip) larger than this are sorted as SQLite plans it.
const ORDERED_MAX_PAGE: u64 = 1_000;

/// The index to read `find`'s rows from in the order of its first sort key, when SQLite would
/// rather sort every match of the filter. SQLite's planner reads the filter's index and sorts
/// what it finds, even when the filter matches a large part of the table and the sort key's
/// own index, read in order, would fill the page after a few hundred rows: 20,000 matches of
/// 1,000,000 took 19 ms that way and 0.3 ms in order. The sort key's index is named
/// (`INDEXED BY`) when it exists, the table is large, the page small, an index serves the
/// filter, and the filter matches at least √(page × rows) documents (counted on that index,
/// stopping there): reading in order then touches fewer rows than the matches it would sort.
/// The documents are the same either way; only the plan differs.
fn sort_index(
    conn: &Connection,
    model: &str,
    find: &Find,
    generated: Option<&Arc<Generated>>,
) -> Result<Option<String>, StoreError> {
    let (Some(limit), None, Some(first)) = (find.limit, &find.text, find.sort.first()) else {
        return Ok(None);
    };
    let page = limit.saturating_add(find.skip);
    if page > ORDERED_MAX_PAGE || matches!(find.filter, Filter::All) {
        return Ok(None);
    }
    let segments = &first.path.segments;
    let names = match segments.as_slice() {
        [only] if only == "createdAt" => vec![format!("sx_{model}__created")],
        _ if segments.iter().all(|s| jxp_model::is_ident(s)) && first.path.array_at.is_none() => {
            let path = segments.join("__");
            vec![format!("iy_{model}__{path}"), format!("ux_{model}__{path}")]
        }
        _ => return Ok(None),
    };
    let mut found = None;
    for name in names {
        let exists = conn
            .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1")?
            .query_row([&name], |_| Ok(()))
            .optional()?
            .is_some();
        if exists {
            found = Some(name);
            break;
        }
    }
    let Some(index) = found else {
        return Ok(None);
    };
    let table = table_name(model);
    let rows: Option<i64> = conn
        .prepare_cached(&format!("SELECT max(rid) FROM {table}"))?
        .query_row([], |r| r.get(0))?;
    let rows = rows.unwrap_or(0);
    if rows < ORDERED_MIN_ROWS {
        return Ok(None);
    }
    let mut q = SqlQuery {
        sql: format!("SELECT 1 FROM {table} WHERE ("),
        generated: generated.cloned(),
        ..SqlQuery::default()
    };
    render_sqlite_filter(&find.filter, &mut q);
    q.sql.push(')');
    // Only a filter an index serves is counted: counting an unindexed one would read the
    // table once more.
    let served = {
        let mut stmt = conn.prepare_cached(&format!("EXPLAIN QUERY PLAN {}", q.sql))?;
        let details = stmt.query_map(params_from_iter(q.params.iter().map(to_sql)), |r| {
            r.get::<_, String>(3)
        })?;
        let (mut served, named) = (false, format!("INDEX {index} "));
        for detail in details {
            let detail = detail?;
            served |= detail.starts_with("SEARCH")
                && detail.contains("INDEX")
                && !detail.contains(&named);
        }
        served
    };
    if !served {
        return Ok(None);
    }
    // The bound is a parameter, so the statement's text (and its cached preparation) stays
    // the same as the table grows.
    let enough = ((page as f64) * (rows as f64)).sqrt().ceil() as i64;
    q.sql = format!("SELECT count(*) FROM ({} LIMIT ", q.sql);
    q.bind(SqlParam::Int(enough));
    q.sql.push(')');
    let counted: i64 = conn
        .prepare_cached(&q.sql)?
        .query_row(params_from_iter(q.params.iter().map(to_sql)), |r| r.get(0))?;
    Ok((counted >= enough).then_some(index))
}

pub(crate) fn find(
    conn: &Connection,
    model: &str,
    find: &Find,
    generated: Option<&Arc<Generated>>,
) -> Result<Vec<Document>, StoreError> {
    let index = sort_index(conn, model, find, generated)?;
    let Some(q) = find_sql(model, find, index.as_deref(), generated) else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(&q.sql)?;
    let rows = stmt.query_map(params_from_iter(q.params.iter().map(to_sql)), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<f64>>(1)?))
    })?;
    let mut out = Vec::new();
    let mut bytes = ByteCount::new(model, find);
    for row in rows {
        let (text, score) = row?;
        bytes.add(&text)?;
        out.push(found(&text, score)?);
    }
    Ok(out)
}

/// SQLite's plan for the query `find` (or, with `count`, `count_find`) runs: one line per
/// step of `EXPLAIN QUERY PLAN`, indented by depth.
pub(crate) fn explain(
    conn: &Connection,
    model: &str,
    find: &Find,
    count: bool,
    generated: Option<&Arc<Generated>>,
) -> Result<Vec<String>, StoreError> {
    let Some(q) = planned(conn, model, find, count, generated)? else {
        return Ok(nothing_to_run());
    };
    plan(conn, &q)
}

/// The query `explain` and `analyze` plan: `find`'s (read as `find` reads it) or, with
/// `count`, its count's.
fn planned(
    conn: &Connection,
    model: &str,
    find: &Find,
    count: bool,
    generated: Option<&Arc<Generated>>,
) -> Result<Option<SqlQuery>, StoreError> {
    let index = if count {
        None
    } else {
        sort_index(conn, model, find, generated)?
    };
    Ok(explained(
        model,
        find,
        count,
        |m, f| find_sql(m, f, index.as_deref(), generated),
        |m, f, text| count_sql(m, f, text, generated),
    ))
}

/// SQLite's plan for `q`: one line per step of `EXPLAIN QUERY PLAN`, indented by depth.
pub(crate) fn plan(conn: &Connection, q: &SqlQuery) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", q.sql))?;
    let rows = stmt.query_map(params_from_iter(q.params.iter().map(to_sql)), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut depth: Vec<(i64, usize)> = Vec::new();
    let mut out = Vec::new();
    for row in rows {
        let (id, parent, detail) = row?;
        let level = depth
            .iter()
            .find(|(i, _)| *i == parent)
            .map_or(0, |(_, l)| l + 1);
        depth.push((id, level));
        out.push(format!("{}{detail}", "  ".repeat(level)));
    }
    Ok(out)
}

/// The query `explain` plans, stepped to its last row and timed: the result columns are
/// computed (documents turned to text) but never copied out of SQLite.
pub(crate) fn analyze(
    conn: &Connection,
    model: &str,
    find: &Find,
    count: bool,
    generated: Option<&Arc<Generated>>,
) -> Result<Analyzed, StoreError> {
    // The time counts the choice of index too ([`sort_index`]): SQLite runs that for the
    // request as it runs the query.
    let choosing = Instant::now();
    let Some(q) = planned(conn, model, find, count, generated)? else {
        return Ok(Analyzed {
            sql: String::new(),
            plan: nothing_to_run(),
            database_ms: 0.0,
        });
    };
    let chosen = choosing.elapsed();
    let plan = plan(conn, &q)?;
    let started = Instant::now();
    let mut stmt = conn.prepare_cached(&q.sql)?;
    let mut rows = stmt.query(params_from_iter(q.params.iter().map(to_sql)))?;
    while rows.next()?.is_some() {}
    let database_ms = (chosen + started.elapsed()).as_secs_f64() * 1000.0;
    Ok(Analyzed {
        sql: q.sql,
        plan,
        database_ms,
    })
}

pub(crate) fn count(
    conn: &Connection,
    model: &str,
    filter: &Filter,
    generated: Option<&Arc<Generated>>,
) -> Result<u64, StoreError> {
    count_matching(conn, model, filter, None, generated)
}

pub(crate) fn count_find(
    conn: &Connection,
    model: &str,
    find: &Find,
    generated: Option<&Arc<Generated>>,
) -> Result<u64, StoreError> {
    count_matching(conn, model, &find.filter, find.text.as_deref(), generated)
}

/// The SQL a count runs, or `None` when its text query cannot match anything.
fn count_sql(
    model: &str,
    filter: &Filter,
    text: Option<&str>,
    generated: Option<&Arc<Generated>>,
) -> Option<SqlQuery> {
    let mut q = SqlQuery {
        generated: generated.cloned(),
        ..SqlQuery::default()
    };
    if !rows_where(&mut q, model, "COUNT(*)", text) {
        return None;
    }
    q.sql.push('(');
    render_sqlite_filter(filter, &mut q);
    q.sql.push(')');
    Some(q)
}

fn count_matching(
    conn: &Connection,
    model: &str,
    filter: &Filter,
    text: Option<&str>,
    generated: Option<&Arc<Generated>>,
) -> Result<u64, StoreError> {
    let Some(q) = count_sql(model, filter, text, generated) else {
        return Ok(0);
    };
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
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(rusqlite::params![model, seq_to_db(after), limit], |r| {
        Ok(LoggedRow {
            seq: r.get(0)?,
            op: r.get(1)?,
            id: r.get(2)?,
            doc: r.get(3)?,
            actor: r.get(4)?,
            silent: r.get(5)?,
        })
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.into_change(model)?);
    }
    Ok(out)
}

pub(crate) fn last_seq(conn: &Connection, model: &str) -> Result<u64, StoreError> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM jxp_seq WHERE model = ?1")?
        .query_row([model], |r| r.get(0))
        .optional()?;
    Ok(seq.map(seq_from_db).unwrap_or_default())
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use jxp_query::{GeneratedColumn, GeneratedKind, Op, Path, Sort, SortDir};
    use serde_json::{Value, json};

    use crate::spec::{TableSpec, WriteOp, WriteTx};
    use crate::{SqliteOptions, SqliteStore, Store};

    use super::*;

    #[test]
    fn a_page_no_index_finds_reads_its_row_ids_from_the_scan_index() {
        let generated = Arc::new(Generated(vec![GeneratedColumn {
            path: "m".into(),
            column: "gn_m".into(),
            kind: GeneratedKind::Number,
            sorts: false,
            indexed: false,
        }]));
        let page = |filter: Filter, sort: &str| Find {
            filter: filter.and(Filter::cond(Path::plain("_deleted"), Op::Eq, json!(false))),
            sort: vec![Sort {
                path: Path::plain(sort),
                dir: SortDir::Asc,
            }],
            limit: Some(20),
            ..Find::default()
        };
        let sql = |find: &Find, indexed_by: Option<&str>| {
            find_sql("t", find, indexed_by, Some(&generated))
                .map(|q| q.sql)
                .unwrap_or_default()
        };
        let by_m = page(Filter::cond(Path::plain("m"), Op::Gte, json!(5)), "m");
        assert_eq!(
            sql(&by_m, None),
            "SELECT json(doc), NULL FROM \"m_t\" WHERE rid IN (SELECT rid FROM \"m_t\" \
             INDEXED BY \"sc_t\" WHERE (((json_extract(doc,'$.m') >= ?1 \
             AND typeof(json_extract(doc,'$.m')) IN ('integer','real')) AND (_deleted = ?2))) \
             ORDER BY json_extract(doc,'$.m') ASC, _id ASC LIMIT 20 OFFSET 0) \
             ORDER BY \"gn_m\" ASC, _id ASC"
        );
        // One step: a field read from the document, a sort an index of its own serves, an
        // index chosen for the sort, no limit, no generated columns.
        let one_step = |text: &str| !text.contains("rid IN") && text.ends_with("OFFSET 0");
        let by_doc = page(Filter::cond(Path::plain("n"), Op::Gte, json!(5)), "m");
        assert!(one_step(&sql(&by_doc, None)));
        let by_id = page(Filter::cond(Path::plain("m"), Op::Gte, json!(5)), "_id");
        assert!(one_step(&sql(&by_id, None)));
        assert!(sql(&by_m, Some("iy_t__x")).contains("INDEXED BY \"iy_t__x\""));
        assert!(!sql(&by_m, Some("iy_t__x")).contains("rid IN"));
        let unlimited = Find {
            limit: None,
            ..by_m.clone()
        };
        assert!(!sql(&unlimited, None).contains("rid IN"));
        let plain = find_sql("t", &by_m, None, None).map(|q| q.sql);
        assert!(plain.is_some_and(|s| !s.contains("rid IN")));
    }

    fn doc(i: u32, text: &str, n: i64, deleted: bool) -> Document {
        json!({"_id": format!("{i:024x}"), "n": n, "_deleted": deleted, "__v": 0,
               "createdAt": "2020-01-01T00:00:00.000Z", "updatedAt": "2020-01-01T00:00:00.000Z",
               "body": text, "title": format!("title {i}")})
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let s = SqliteStore::open(SqliteOptions::new(dir.path().join("db"))).unwrap();
        s.migrate(&[
            TableSpec {
                model: "t".into(),
                text_fields: vec!["body".into(), "title".into()],
                fields: vec!["body".into(), "title".into(), "n".into()],
                ..TableSpec::default()
            },
            TableSpec {
                model: "plain".into(),
                ..TableSpec::default()
            },
        ])
        .await
        .unwrap();
        let docs = [
            doc(1, "kubla khan kubla", 1, false),
            doc(2, "a stately pleasure dome, kubla", 2, false),
            doc(3, "nothing to see", 3, false),
            doc(4, "kubla kubla kubla kubla", 4, true),
            doc(5, "quoted \"kubla\" OR NOT( *", 5, false),
        ];
        s.write(WriteTx {
            ops: docs
                .into_iter()
                .map(|d| WriteOp::Insert {
                    model: "t".into(),
                    doc: d,
                })
                .collect(),
            ..WriteTx::default()
        })
        .await
        .unwrap();
        s
    }

    fn ids(docs: &[Document]) -> Vec<i64> {
        docs.iter()
            .map(|d| d.get("n").and_then(Value::as_i64).unwrap_or(-1))
            .collect()
    }

    #[tokio::test]
    async fn text_search_ranks_filters_counts_and_never_breaks_on_syntax() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let live = Filter::cond(Path::plain("_deleted"), Op::Eq, json!(false));
        let find = |text: &str, filter: Filter| Find {
            filter,
            text: Some(text.into()),
            ..Find::default()
        };
        let got = s.find("t", &find("Kubla", live.clone())).await.unwrap();
        // Doc 1 says kubla twice in a short text; doc 4 is deleted.
        assert_eq!(&ids(&got)[..1], &[1]);
        let mut sorted = ids(&got);
        sorted.sort_unstable();
        assert_eq!(sorted, vec![1, 2, 5]);
        let scores: Vec<f64> = got
            .iter()
            .map(|d| d.get("score").and_then(Value::as_f64).unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(scores.iter().all(|s| *s > 0.0), "{scores:?}");
        assert_eq!(
            s.count_find("t", &find("kubla", live.clone()))
                .await
                .unwrap(),
            3
        );
        // The filter applies too, and paging.
        let narrowed = live
            .clone()
            .and(Filter::cond(Path::plain("n"), Op::Gte, json!(2)));
        let mut narrowed = ids(&s.find("t", &find("kubla", narrowed)).await.unwrap());
        narrowed.sort_unstable();
        assert_eq!(narrowed, vec![2, 5]);
        let page = Find {
            limit: Some(1),
            skip: 1,
            sort: vec![Sort {
                path: Path::plain("n"),
                dir: SortDir::Desc,
            }],
            ..find("kubla", live.clone())
        };
        assert_eq!(s.find("t", &page).await.unwrap().len(), 1);
        // Words are words: FTS5 syntax in the text is searched for, not obeyed.
        for text in [
            "\"kubla\" OR",
            "NOT(",
            "*",
            "kubla:",
            "NEAR(a b)",
            "\"",
            "-x",
        ] {
            s.find("t", &find(text, live.clone()))
                .await
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        assert_eq!(
            ids(&s.find("t", &find("title", live.clone())).await.unwrap()).len(),
            4
        );
        assert_eq!(
            ids(&s
                .find("t", &find("kubla -khan", live.clone()))
                .await
                .unwrap())
            .len(),
            2
        );
        assert!(s.find("plain", &find("x", Filter::All)).await.is_err());
        assert!(
            s.count_find("plain", &find("x", Filter::All))
                .await
                .is_err()
        );
        // Without text nothing carries a score.
        let all = s.find("t", &Find::default()).await.unwrap();
        assert!(all.iter().all(|d| !d.contains_key("score")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_read_waits_its_turn_when_every_reader_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        drop(store(&dir).await);
        let pool = std::sync::Arc::new(ReaderPool::open(&dir.path().join("db"), 1).unwrap());
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move |_| {
                    let _ = started.send(());
                    held.recv().ok();
                    Ok(1)
                })
                .await
            })
        };
        running.await.unwrap();
        // The one reader is busy: the short read must wait for it, not fail or open another.
        let short = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run_short(|conn| get(conn, "t", &format!("{:024x}", 1)))
                    .await
            })
        };
        tokio::task::yield_now().await;
        assert!(!short.is_finished());
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), 1);
        let found = short.await.unwrap().unwrap().unwrap();
        assert_eq!(found["n"], json!(1));
        // Idle again: the short read runs on the caller's thread and still finds it.
        let again = pool
            .run_short(|conn| get(conn, "t", &format!("{:024x}", 3)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again["n"], json!(3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_whose_caller_left_is_interrupted_and_its_reader_serves_the_next() {
        let dir = tempfile::tempdir().unwrap();
        drop(store(&dir).await);
        let pool = ReaderPool::open(&dir.path().join("db"), 1).unwrap();
        // Counting to a billion takes minutes; the caller gives up after a tenth of a second.
        let slow = pool.run(|conn| count_to(conn, 1_000_000_000));
        let started = std::time::Instant::now();
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(100), slow).await;
        assert!(gave_up.is_err(), "the count cannot finish in 100 ms");
        // The pool's one reader comes back only once the count has stopped, and it works.
        let next = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            pool.run(|conn| {
                // SQLite forgets an interrupt when a statement starts with none active, which
                // holds only if the interrupted statement was reset.
                let found = get(conn, "t", &format!("{:024x}", 2))?;
                Ok((found, conn.is_interrupted()))
            }),
        )
        .await
        .expect("the interrupted reader returns to the pool within seconds")
        .unwrap();
        assert_eq!(next.0.unwrap()["n"], json!(2));
        assert!(!next.1);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The interrupted statement, cached, runs again from its start.
        assert_eq!(pool.run(|conn| count_to(conn, 10)).await.unwrap(), 10);
    }

    #[tokio::test]
    async fn a_find_past_its_max_bytes_stops_with_too_large() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let all = s.find("t", &Find::default()).await.unwrap();
        let text: usize = all
            .iter()
            .map(|d| Value::Object(d.clone()).to_string().len())
            .sum();
        let fits = Find {
            max_bytes: Some(u64::try_from(text * 2).unwrap()),
            ..Find::default()
        };
        assert_eq!(s.find("t", &fits).await.unwrap().len(), 5);
        let over = Find {
            max_bytes: Some(100),
            ..Find::default()
        };
        assert_eq!(
            s.find("t", &over).await,
            Err(StoreError::TooLarge {
                model: "t".into(),
                max_bytes: 100
            })
        );
    }

    /// Counts from 1 to `n` the slow way, through a cached statement.
    fn count_to(conn: &Connection, n: i64) -> Result<i64, StoreError> {
        let mut stmt = conn.prepare_cached(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) \
             SELECT count(*) FROM c",
        )?;
        Ok(stmt.query_row([n], |r| r.get(0))?)
    }
}

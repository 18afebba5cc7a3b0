//! The write path: the waiting write transactions of this process go into one PostgreSQL
//! transaction (group commit), each in its own savepoint, so a failing one takes back only its
//! own operations; a run of writes that each insert one document goes in one statement that
//! skips whatever meets a unique index, and only the skipped ones are tried again on their
//! own (to fail with the field named). Documents are written first; then, for each model
//! touched (in name order, so concurrent transactions lock the counters in the same order),
//! one statement advances the counter row by the number of changes and inserts the change
//! rows, numbered from it; the notification, the log trim and COMMIT follow in the same round
//! trip. The counter row stays locked until COMMIT, so a model's changes commit in seq order
//! and without gaps; a rolled-back transaction takes its seqs with it. One commit (one WAL
//! flush) answers the whole batch, which is what lets writes to one model go faster than one
//! flush each. Statements that do not depend on each other's answers are sent back to back
//! (BEGIN with the first write, the change log with COMMIT): a batch of inserts costs three
//! round trips.

use std::collections::BTreeMap;
use std::sync::Arc;

use deadpool_postgres::{ClientWrapper, Pool};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

use super::listen::Published;
use super::{Tables, read, table_name};
use crate::Document;
use crate::change::{Change, ChangeOp};
use crate::error::StoreError;
use crate::spec::{Guard, WriteOp, WriteTx};

/// PostgreSQL refuses notification payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7000;

/// How often a transaction that lost a deadlock or serialization race is tried again.
const ATTEMPTS: usize = 5;

pub(crate) struct Context<'a> {
    pub tables: &'a Tables,
    pub channel: &'a str,
    pub retention: u64,
}

/// A change before its seq is known.
struct Pending {
    model: String,
    op: ChangeOp,
    id: String,
    doc: Document,
    text: String,
}

impl Pending {
    /// The change of inserting `doc` (its id checked by the caller).
    fn created(model: &str, doc: &Document) -> Pending {
        Pending {
            model: model.to_owned(),
            op: ChangeOp::Create,
            id: str_field(doc, "_id").unwrap_or_default().to_owned(),
            doc: doc.clone(),
            text: serde_json::to_string(doc).unwrap_or_default(),
        }
    }
}

/// What a write transaction answers.
pub(crate) type Answer = Result<Vec<Arc<Change>>, StoreError>;

/// A write transaction waiting for the writer.
pub(crate) struct Queued {
    pub tx: WriteTx,
    pub reply: oneshot::Sender<Answer>,
}

/// The most write transactions committed together. Each is a subtransaction, and PostgreSQL
/// keeps the ids of at most 64 per transaction where other sessions' snapshots look cheaply.
const MAX_BATCH: usize = 64;

/// The writer task of a store: takes whatever writes wait (at least one), commits them
/// together, answers each; ends when the store is dropped. One task per store: two or four
/// sharing the queue were measured no faster (a second batch waits for the first's counter
/// row anyway).
pub(crate) async fn run_writer(
    pool: Pool,
    tables: Tables,
    channel: String,
    retention: u64,
    published: Arc<Published>,
    mut queue: mpsc::UnboundedReceiver<Queued>,
) {
    let ctx = Context {
        tables: &tables,
        channel: &channel,
        retention,
    };
    loop {
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let (txs, replies): (Vec<WriteTx>, Vec<oneshot::Sender<Answer>>) =
            batch.into_iter().map(|q| (q.tx, q.reply)).unzip();
        let answers = match pool.get().await {
            Ok(mut client) => write_batch(&mut client, &ctx, &txs).await,
            Err(e) => {
                let why = database_text(e.into());
                txs.iter()
                    .map(|_| Err(StoreError::Database(why.clone())))
                    .collect()
            }
        };
        // Committed: on this process's stream now if they follow on from what is published,
        // else as soon as the listener has published what another process committed first.
        let own: Vec<Arc<Change>> = answers.iter().flatten().flatten().cloned().collect();
        if !own.is_empty() {
            published.publish_own(own);
        }
        for (reply, answer) in replies.into_iter().zip(answers) {
            // A writer that stopped waiting does not stop the others.
            let _ = reply.send(answer);
        }
    }
}

fn database_text(e: StoreError) -> String {
    match e {
        StoreError::Database(why) => why,
        other => other.to_string(),
    }
}

/// Commits `batch` in one transaction; answers each write transaction in order. A deadlock or
/// serialization failure retries the whole batch; any other failure of the transaction as a
/// whole is every write's answer.
pub(crate) async fn write_batch(
    client: &mut ClientWrapper,
    ctx: &Context<'_>,
    batch: &[WriteTx],
) -> Vec<Answer> {
    let mut attempt = 0;
    let mut together = true;
    loop {
        attempt += 1;
        let result = try_batch(client, ctx, batch, together).await;
        if result.is_err() {
            // Whatever was sent of this transaction is undone (a no-op when COMMIT ended it).
            let _ = client.batch_execute("ROLLBACK").await;
        }
        match result {
            Ok(answers) => return answers,
            Err(Fault::Together(e)) if attempt < ATTEMPTS => {
                tracing::debug!(error = %e, "inserts in one statement failed; one by one");
                together = false;
            }
            Err(Fault::Db(e)) if attempt < ATTEMPTS && retryable(&e) => {
                tracing::debug!(error = %e, "write transaction retried");
            }
            Err(Fault::Db(e) | Fault::Together(e)) => {
                let why = database_text(e.into());
                return batch
                    .iter()
                    .map(|_| Err(StoreError::Database(why.clone())))
                    .collect();
            }
        }
    }
}

/// Why a batch's transaction failed as a whole.
enum Fault {
    Db(tokio_postgres::Error),
    /// The statement inserting several writes at once failed: the batch is tried again with
    /// each write on its own.
    Together(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Fault {
    fn from(e: tokio_postgres::Error) -> Self {
        Fault::Db(e)
    }
}

/// The statement that opens a write's savepoint: `begun` is whether the transaction is open
/// yet (BEGIN goes in the same message), `open` whether the previous write's savepoint is.
fn savepoint_sql(begun: bool, open: bool) -> &'static str {
    match (begun, open) {
        (false, _) => "BEGIN; SAVEPOINT jxp_write",
        (true, false) => "SAVEPOINT jxp_write",
        (true, true) => "RELEASE SAVEPOINT jxp_write; SAVEPOINT jxp_write",
    }
}

/// One transaction for the batch, COMMIT included; answers each write. `together` lets runs
/// of single-insert writes go in one statement.
async fn try_batch(
    tx: &ClientWrapper,
    ctx: &Context<'_>,
    batch: &[WriteTx],
    together: bool,
) -> Result<Vec<Answer>, Fault> {
    let mut applied: Vec<Result<Vec<Pending>, StoreError>> = Vec::with_capacity(batch.len());
    let mut begun = false;
    // The savepoint of the last write, when that write succeeded and it is still open.
    let mut open = false;
    let mut next = 0;
    while next < batch.len() {
        if together {
            let run = single_insert_run(ctx, &batch[next..]);
            if run >= 2 {
                let inserted = insert_together(tx, &batch[next..next + run], begun).await?;
                begun = true;
                for (wtx, pending) in batch[next..next + run].iter().zip(inserted) {
                    match pending {
                        Some(pending) => applied.push(Ok(pending)),
                        // In conflict: on its own, it fails with the field named (or goes in,
                        // if what it met is gone by now).
                        None => {
                            let (outcome, still_open) =
                                one_write(tx, ctx, wtx, begun, open).await?;
                            applied.push(outcome);
                            open = still_open;
                        }
                    }
                }
                next += run;
                continue;
            }
        }
        // Writes that only insert go to the server back to back, without waiting in between.
        let run = batch[next..]
            .iter()
            .take_while(|w| only_inserts(ctx, w))
            .count();
        if run >= 2 {
            let (outcomes, still_open) =
                insert_run(tx, ctx, &batch[next..next + run], begun, open).await?;
            begun = true;
            next += outcomes.len();
            applied.extend(outcomes);
            open = still_open;
            continue;
        }
        let (outcome, still_open) = one_write(tx, ctx, &batch[next], begun, open).await?;
        begun = true;
        next += 1;
        applied.push(outcome);
        open = still_open;
    }
    finish(tx, ctx, batch, applied, open).await
}

/// One write in its own savepoint; answers its outcome and whether its savepoint is open.
async fn one_write(
    tx: &ClientWrapper,
    ctx: &Context<'_>,
    wtx: &WriteTx,
    begun: bool,
    open: bool,
) -> Result<(Result<Vec<Pending>, StoreError>, bool), Fault> {
    // Polled together, the savepoint goes out with the write's first statement: one round
    // trip instead of two.
    let (savepoint, result) = tokio::join!(
        tx.batch_execute(savepoint_sql(begun, open)),
        apply(tx, ctx, wtx)
    );
    let failed = match (savepoint, result) {
        (Err(e), _) => return Err(e.into()),
        (Ok(()), Ok(pending)) => return Ok((Ok(pending), true)),
        (Ok(()), Err(Failure::Db(e))) if retryable(&e) => return Err(e.into()),
        (Ok(()), Err(Failure::Db(e))) => e.into(),
        (Ok(()), Err(Failure::Store(e))) => e,
    };
    tx.batch_execute("ROLLBACK TO SAVEPOINT jxp_write; RELEASE SAVEPOINT jxp_write")
        .await?;
    Ok((Err(failed), false))
}

/// How many writes from the start of `rest` each insert one document, with an id of its own
/// within the run, into one known model.
fn single_insert_run(ctx: &Context<'_>, rest: &[WriteTx]) -> usize {
    fn model_of(w: &WriteTx) -> Option<&str> {
        match w.ops.as_slice() {
            [WriteOp::Insert { model, doc }] if str_field(doc, "_id").is_some() => {
                Some(model.as_str())
            }
            _ => None,
        }
    }
    let Some(model) = rest.first().and_then(model_of) else {
        return 0;
    };
    if known(ctx, model).is_err() {
        return 0;
    }
    let mut ids = std::collections::HashSet::new();
    rest.iter()
        .take_while(|w| {
            model_of(w) == Some(model)
                && w.ops.first().is_some_and(|op| match op {
                    WriteOp::Insert { doc, .. } => ids.insert(str_field(doc, "_id")),
                    _ => false,
                })
        })
        .count()
}

/// Inserts the documents of a single-insert run (see `single_insert_run`) in one statement
/// that skips any in conflict with a unique index; answers each write's changes, or None for
/// one that was skipped.
async fn insert_together(
    tx: &ClientWrapper,
    run: &[WriteTx],
    begun: bool,
) -> Result<Vec<Option<Vec<Pending>>>, Fault> {
    let mut pending: Vec<Pending> = Vec::with_capacity(run.len());
    for wtx in run {
        if let [WriteOp::Insert { model, doc }] = wtx.ops.as_slice() {
            pending.push(Pending::created(model, doc));
        }
    }
    let Some(model) = pending.first().map(|p| p.model.clone()) else {
        return Ok(Vec::new());
    };
    let ids: Vec<&str> = pending.iter().map(|p| p.id.as_str()).collect();
    let texts: Vec<&str> = pending.iter().map(|p| p.text.as_str()).collect();
    let owners: Vec<Option<&str>> = pending
        .iter()
        .map(|p| str_field(&p.doc, "_owner_id"))
        .collect();
    let deleted: Vec<bool> = pending.iter().map(|p| deleted(&p.doc)).collect();
    let created: Vec<Option<&str>> = pending
        .iter()
        .map(|p| str_field(&p.doc, "createdAt"))
        .collect();
    let updated: Vec<Option<&str>> = pending
        .iter()
        .map(|p| str_field(&p.doc, "updatedAt"))
        .collect();
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO {} (_id, doc, _owner_id, _deleted, createdAt, updatedAt)
             SELECT i, d::json, o, x, c, u
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::text[])
                  AS r(i, d, o, x, c, u)
             ON CONFLICT DO NOTHING
             RETURNING _id",
            table_name(&model)
        ))
        .await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
        [&ids, &texts, &owners, &deleted, &created, &updated];
    let rows = if begun {
        tx.query(&stmt, &params).await
    } else {
        let (b, rows) = tokio::join!(tx.batch_execute("BEGIN"), tx.query(&stmt, &params));
        b?;
        rows
    }
    .map_err(Fault::Together)?;
    let inserted: std::collections::HashSet<String> =
        rows.iter().map(|r| r.get::<_, String>(0)).collect();
    Ok(pending
        .into_iter()
        .map(|p| inserted.contains(&p.id).then(|| vec![p]))
        .collect())
}

fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::T_R_DEADLOCK_DETECTED | &SqlState::T_R_SERIALIZATION_FAILURE)
    )
}

/// A database error (maybe worth a retry) or an answer of the store's own.
enum Failure {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

fn known(ctx: &Context<'_>, model: &str) -> Result<(), StoreError> {
    let ok = ctx
        .tables
        .read()
        .map(|t| t.contains_key(model))
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(StoreError::UnknownModel(model.to_owned()))
    }
}

/// A unique violation named after the field its index is on.
fn map_unique(ctx: &Context<'_>, model: &str, e: tokio_postgres::Error) -> Failure {
    let Some(db) = e
        .as_db_error()
        .filter(|d| *d.code() == SqlState::UNIQUE_VIOLATION)
    else {
        return Failure::Db(e);
    };
    let field = db
        .constraint()
        .and_then(|name| {
            ctx.tables.read().ok().and_then(|t| {
                t.get(model)
                    .and_then(|info| info.unique_indexes.get(name).cloned())
            })
        })
        .unwrap_or_else(|| "_id".to_owned());
    Failure::Store(StoreError::Unique {
        model: model.to_owned(),
        field,
    })
}

fn str_field<'a>(doc: &'a Document, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

fn deleted(doc: &Document) -> bool {
    doc.get("_deleted")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Whether a write only inserts documents (with ids) into known models.
fn only_inserts(ctx: &Context<'_>, wtx: &WriteTx) -> bool {
    !wtx.ops.is_empty()
        && wtx.ops.iter().all(|op| match op {
            WriteOp::Insert { model, doc } => {
                known(ctx, model).is_ok() && str_field(doc, "_id").is_some()
            }
            _ => false,
        })
}

fn insert_sql(model: &str) -> String {
    format!(
        "INSERT INTO {} (_id, doc, _owner_id, _deleted, createdAt, updatedAt)
         VALUES ($1::text, $2::text::json, $3::text, $4::bool, $5::text, $6::text)",
        table_name(model)
    )
}

/// Writes that only insert, pipelined: each write's savepoint and inserts are sent without
/// waiting for the previous write's answers. When one fails, everything sent after it failed
/// too (the transaction was aborted), so the failed write is rolled back to its savepoint
/// and the outcomes stop there; the caller sends the rest again. Answers the outcomes of the
/// writes up to and including the first failure, and whether a savepoint is left open.
async fn insert_run(
    tx: &ClientWrapper,
    ctx: &Context<'_>,
    run: &[WriteTx],
    begun: bool,
    open: bool,
) -> Result<(Vec<Result<Vec<Pending>, StoreError>>, bool), tokio_postgres::Error> {
    // Statements are prepared first, so that nothing but the writes is in the pipeline.
    let mut statements: BTreeMap<&str, tokio_postgres::Statement> = BTreeMap::new();
    for wtx in run {
        for op in &wtx.ops {
            if let WriteOp::Insert { model, .. } = op
                && !statements.contains_key(model.as_str())
            {
                let stmt = tx.prepare_cached(&insert_sql(model)).await?;
                statements.insert(model.as_str(), stmt);
            }
        }
    }
    let mut pending: Vec<Vec<Pending>> = Vec::with_capacity(run.len());
    for wtx in run {
        let mut mine = Vec::with_capacity(wtx.ops.len());
        for op in &wtx.ops {
            if let WriteOp::Insert { model, doc } = op {
                mine.push(Pending::created(model, doc));
            }
        }
        pending.push(mine);
    }
    /// A sent statement: its write, whether it is the write's savepoint, and its result.
    type Step<'f> = std::pin::Pin<
        Box<dyn Future<Output = (usize, bool, Result<(), tokio_postgres::Error>)> + Send + 'f>,
    >;
    let mut steps: Vec<Step<'_>> = Vec::new();
    for (w, mine) in pending.iter().enumerate() {
        let begin = savepoint_sql(begun || w > 0, open || w > 0);
        steps.push(Box::pin(
            async move { (w, true, tx.batch_execute(begin).await) },
        ));
        for p in mine {
            let Some(stmt) = statements.get(p.model.as_str()) else {
                continue;
            };
            steps.push(Box::pin(async move {
                let result = tx
                    .execute(
                        stmt,
                        &[
                            &p.id,
                            &p.text,
                            &str_field(&p.doc, "_owner_id"),
                            &deleted(&p.doc),
                            &str_field(&p.doc, "createdAt"),
                            &str_field(&p.doc, "updatedAt"),
                        ],
                    )
                    .await
                    .map(|_| ());
                (w, false, result)
            }));
        }
    }
    // `join_all` polls the steps in order the first time, which is when each is sent.
    let results = futures_util::future::join_all(steps).await;
    let failure = results
        .into_iter()
        .find_map(|(w, begin, r)| r.err().map(|e| (w, begin, e)));
    let Some((failed, begin, error)) = failure else {
        return Ok((pending.into_iter().map(Ok).collect(), true));
    };
    // A savepoint that fails before any insert did is a fault of the transaction as a whole,
    // as is a deadlock: the batch fails (or is tried again) whole.
    if begin || retryable(&error) {
        return Err(error);
    }
    let model = run[failed]
        .ops
        .iter()
        .find_map(|op| match op {
            WriteOp::Insert { model, .. } => Some(model.as_str()),
            _ => None,
        })
        .unwrap_or_default();
    let error = match map_unique(ctx, model, error) {
        Failure::Store(e) => e,
        Failure::Db(e) => e.into(),
    };
    tx.batch_execute("ROLLBACK TO SAVEPOINT jxp_write; RELEASE SAVEPOINT jxp_write")
        .await?;
    let mut outcomes: Vec<Result<Vec<Pending>, StoreError>> =
        pending.into_iter().take(failed).map(Ok).collect();
    outcomes.push(Err(error));
    // The writes before the failed one released their savepoints as they went; none is open.
    Ok((outcomes, false))
}

/// The operations of one write transaction; answers its changes, seqs still to come.
async fn apply(
    tx: &ClientWrapper,
    ctx: &Context<'_>,
    wtx: &WriteTx,
) -> Result<Vec<Pending>, Failure> {
    let mut pending = Vec::new();
    for op in &wtx.ops {
        match op {
            WriteOp::Guard(guard) => check_guard(tx, ctx, guard).await?,
            WriteOp::Insert { model, doc } => {
                known(ctx, model)?;
                let id = str_field(doc, "_id").map(str::to_owned).ok_or_else(|| {
                    StoreError::Database(format!("insert into {model} without _id"))
                })?;
                let text = serde_json::to_string(doc).map_err(StoreError::from)?;
                let stmt = tx.prepare_cached(&insert_sql(model)).await?;
                tx.execute(
                    &stmt,
                    &[
                        &id,
                        &text,
                        &str_field(doc, "_owner_id"),
                        &deleted(doc),
                        &str_field(doc, "createdAt"),
                        &str_field(doc, "updatedAt"),
                    ],
                )
                .await
                .map_err(|e| map_unique(ctx, model, e))?;
                pending.push(Pending {
                    model: model.clone(),
                    op: ChangeOp::Create,
                    id,
                    doc: doc.clone(),
                    text,
                });
            }
            WriteOp::Replace {
                model,
                id,
                doc,
                expect_version,
                op,
            } => {
                known(ctx, model)?;
                let text = serde_json::to_string(doc).map_err(StoreError::from)?;
                let stmt = tx
                    .prepare_cached(&format!(
                        "UPDATE {} SET doc = $2::text::json, _owner_id = $3::text,
                             _deleted = $4::bool, createdAt = $5::text, updatedAt = $6::text
                         WHERE _id = $1::text
                           AND ($7::int8 IS NULL OR jxp_num(doc->'__v') = $7::int8)",
                        table_name(model)
                    ))
                    .await?;
                let n = tx
                    .execute(
                        &stmt,
                        &[
                            id,
                            &text,
                            &str_field(doc, "_owner_id"),
                            &deleted(doc),
                            &str_field(doc, "createdAt"),
                            &str_field(doc, "updatedAt"),
                            expect_version,
                        ],
                    )
                    .await
                    .map_err(|e| map_unique(ctx, model, e))?;
                if n == 0 {
                    let exists = tx
                        .query_opt(
                            &format!("SELECT 1 FROM {} WHERE _id = $1::text", table_name(model)),
                            &[id],
                        )
                        .await?
                        .is_some();
                    let (model, id) = (model.clone(), id.clone());
                    return Err(Failure::Store(if exists {
                        StoreError::VersionConflict { model, id }
                    } else {
                        StoreError::NotFound { model, id }
                    }));
                }
                pending.push(Pending {
                    model: model.clone(),
                    op: *op,
                    id: id.clone(),
                    doc: doc.clone(),
                    text,
                });
            }
            WriteOp::Remove { model, id } => {
                known(ctx, model)?;
                let stmt = tx
                    .prepare_cached(&format!(
                        "DELETE FROM {} WHERE _id = $1::text RETURNING doc::text",
                        table_name(model)
                    ))
                    .await?;
                let Some(row) = tx.query_opt(&stmt, &[id]).await? else {
                    return Err(Failure::Store(StoreError::NotFound {
                        model: model.clone(),
                        id: id.clone(),
                    }));
                };
                let text: String = row.get(0);
                pending.push(Pending {
                    model: model.clone(),
                    op: ChangeOp::Delete,
                    id: id.clone(),
                    doc: read::parse_doc(&text)?,
                    text,
                });
            }
        }
    }
    Ok(pending)
}

/// Per model touched: its counter row advanced by its number of changes (locked to COMMIT),
/// and its change rows, numbered in op order from the seq the counter row had.
const LOG_SQL: &str = "WITH b AS (
         INSERT INTO jxp_seq (model, seq) VALUES ($1::text, $2::int8)
         ON CONFLICT (model) DO UPDATE SET seq = jxp_seq.seq + excluded.seq
         RETURNING seq),
     c AS (
         INSERT INTO jxp_changes (model, seq, op, doc_id, doc, actor, silent)
         SELECT $1::text, b.seq - $2::int8 + r.k, r.o, r.i, r.d::json, r.a, r.q
         FROM b, unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bool[])
                 WITH ORDINALITY AS r(o, i, d, a, q, k))
     SELECT seq FROM b";

/// The notification: runs of one model's changes in op order (`test:5 link:2 test:6`), each
/// run given as the model and how many of that model's changes the batch made up to its end.
const NOTIFY_SQL: &str = "SELECT pg_notify($1::text,
         string_agg(r.m || ':' || (s.seq - n.n + r.e)::text, ' ' ORDER BY r.k))
     FROM unnest($2::text[], $3::int8[]) WITH ORDINALITY AS r(m, e, k)
     JOIN jxp_seq s ON s.model = r.m
     JOIN unnest($4::text[], $5::int8[]) AS n(m, n) ON n.m = r.m";

/// The notification when the runs would be too long for one: each model's last seq (order
/// across models is lost).
const NOTIFY_LAST_SQL: &str = "SELECT pg_notify($1::text,
         string_agg(model || ':' || seq::text, ' ' ORDER BY model))
     FROM jxp_seq WHERE model = ANY($2::text[])";

/// Trims a model's log to the retention ($2), in steps ($4) so the delete runs once per many
/// writes, not on every write: only when this batch's $3 changes crossed a step.
const TRIM_SQL: &str = "DELETE FROM jxp_changes c USING jxp_seq s
     WHERE s.model = $1::text AND c.model = $1::text
       AND s.seq > $2::int8
       AND (s.seq - $3::int8) / $4::int8 <> s.seq / $4::int8
       AND c.seq <= s.seq - $2::int8";

/// One model's changes of a batch, as columns for `LOG_SQL`.
/// Borrowed from the batch: the document texts are not copied.
#[derive(Default)]
struct ModelRows<'a> {
    n: i64,
    op: Vec<&'static str>,
    id: Vec<&'a str>,
    doc: Vec<&'a str>,
    actor: Vec<Option<&'a str>>,
    silent: Vec<bool>,
}

/// Logs the changes of every applied write of the batch (seqs in batch order), queues one
/// notification and commits, all sent back to back in one round trip; answers each write
/// transaction.
async fn finish(
    tx: &ClientWrapper,
    ctx: &Context<'_>,
    batch: &[WriteTx],
    applied: Vec<Result<Vec<Pending>, StoreError>>,
    open: bool,
) -> Result<Vec<Answer>, Fault> {
    let mut models: BTreeMap<&str, ModelRows<'_>> = BTreeMap::new();
    // Runs of one model in op order: (model, that model's changes up to the run's end).
    let mut runs: Vec<(&str, i64)> = Vec::new();
    for (wtx, outcome) in batch.iter().zip(&applied) {
        for p in outcome.iter().flatten() {
            let rows = models.entry(p.model.as_str()).or_default();
            rows.n += 1;
            rows.op.push(p.op.as_str());
            rows.id.push(&p.id);
            rows.doc.push(&p.text);
            rows.actor.push(wtx.actor.as_deref());
            rows.silent.push(wtx.silent);
            match runs.last_mut() {
                Some((m, end)) if *m == p.model => *end = rows.n,
                _ => runs.push((p.model.as_str(), rows.n)),
            }
        }
    }
    let release = async {
        if open {
            tx.batch_execute("RELEASE SAVEPOINT jxp_write").await
        } else {
            Ok(())
        }
    };
    if models.is_empty() {
        let (released, committed) = tokio::join!(release, tx.batch_execute("COMMIT"));
        released?;
        committed?;
        return Ok(applied
            .into_iter()
            .map(|outcome| outcome.map(|_| Vec::new()))
            .collect());
    }
    // Prepared first (once per connection), so that the round trip below is the only one.
    let log = tx.prepare_cached(LOG_SQL).await?;
    let notify = tx.prepare_cached(NOTIFY_SQL).await?;
    let notify_last = tx.prepare_cached(NOTIFY_LAST_SQL).await?;
    let trim = tx.prepare_cached(TRIM_SQL).await?;
    let names: Vec<&str> = models.keys().copied().collect();
    let counts: Vec<i64> = models.values().map(|r| r.n).collect();
    let run_models: Vec<&str> = runs.iter().map(|(m, _)| *m).collect();
    let run_ends: Vec<i64> = runs.iter().map(|(_, e)| *e).collect();
    // A seq has at most 20 digits.
    let long = runs.iter().map(|(m, _)| m.len() + 22).sum::<usize>() > MAX_PAYLOAD;
    let retention = i64::try_from(ctx.retention).unwrap_or(i64::MAX);
    let step = i64::try_from((ctx.retention / 16).max(1)).unwrap_or(i64::MAX);
    // Counter rows in name order (the lock order of every process), then the notification,
    // the trims and COMMIT, all sent at once. A failed statement makes the COMMIT a rollback
    // (which PostgreSQL answers without an error), so every answer before it is checked.
    let (released, lasts, notified, trimmed, committed) = tokio::join!(
        release,
        futures_util::future::join_all(models.iter().map(|(model, rows)| {
            let log = &log;
            async move {
                tx.query_one(
                    log,
                    &[
                        model,
                        &rows.n,
                        &rows.op,
                        &rows.id,
                        &rows.doc,
                        &rows.actor,
                        &rows.silent,
                    ],
                )
                .await
            }
        })),
        async {
            if long {
                tx.execute(&notify_last, &[&ctx.channel, &names]).await
            } else {
                tx.execute(
                    &notify,
                    &[&ctx.channel, &run_models, &run_ends, &names, &counts],
                )
                .await
            }
        },
        futures_util::future::join_all(models.iter().map(|(model, rows)| {
            let (trim, retention, step) = (&trim, &retention, &step);
            async move { tx.execute(trim, &[model, retention, &rows.n, step]).await }
        })),
        tx.batch_execute("COMMIT"),
    );
    released?;
    // The next seq to hand out per model.
    let mut next: BTreeMap<String, u64> = BTreeMap::new();
    for ((model, rows), last) in models.iter().zip(lasts) {
        let last: i64 = last?.get(0);
        next.insert(
            (*model).to_owned(),
            u64::try_from(last - rows.n + 1).unwrap_or_default(),
        );
    }
    notified?;
    for t in trimmed {
        t?;
    }
    committed?;
    let mut answers = Vec::with_capacity(applied.len());
    for (wtx, outcome) in batch.iter().zip(applied) {
        let pending = match outcome {
            Ok(pending) => pending,
            Err(e) => {
                answers.push(Err(e));
                continue;
            }
        };
        let mut mine = Vec::with_capacity(pending.len());
        for p in pending {
            let Some(slot) = next.get_mut(p.model.as_str()) else {
                continue;
            };
            let seq = *slot;
            *slot += 1;
            mine.push(Arc::new(Change {
                model: p.model,
                seq,
                op: p.op,
                id: p.id,
                doc: Arc::new(p.doc),
                actor: wtx.actor.clone(),
                silent: wtx.silent,
            }));
        }
        answers.push(Ok(mine));
    }
    Ok(answers)
}

async fn check_guard(tx: &ClientWrapper, ctx: &Context<'_>, guard: &Guard) -> Result<(), Failure> {
    match guard {
        Guard::NotReferenced { model, id, by } => {
            for r in by {
                known(ctx, &r.model)?;
                // No referrer may be written until this transaction ends.
                tx.batch_execute(&format!(
                    "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
                    table_name(&r.model)
                ))
                .await?;
                let sql = referrer_query(&r.model, &r.path, r.array_at)?;
                if tx.query_opt(sql.as_str(), &[id]).await?.is_some() {
                    return Err(Failure::Store(StoreError::Referenced {
                        model: model.clone(),
                        id: id.clone(),
                        by_model: r.model.clone(),
                        by_field: r.path.clone(),
                    }));
                }
            }
            Ok(())
        }
        Guard::Empty { model } => {
            known(ctx, model)?;
            // Concurrent first writes take turns, so only one finds the table empty.
            tx.batch_execute(&format!(
                "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
                table_name(model)
            ))
            .await?;
            let any = tx
                .query_opt(&format!("SELECT 1 FROM {} LIMIT 1", table_name(model)), &[])
                .await?;
            match any {
                Some(_) => Err(Failure::Store(StoreError::NotEmpty {
                    model: model.clone(),
                })),
                None => Ok(()),
            }
        }
    }
}

/// `SELECT 1` from a live referrer whose field (or an element of its array) holds `$1`.
fn referrer_query(model: &str, path: &str, array_at: Option<usize>) -> Result<String, StoreError> {
    let bad = || StoreError::Database(format!("\"{path}\" is not a plain field path"));
    let table = table_name(model);
    let Some(at) = array_at else {
        let expr = jxp_query::pg_doc_text(path).ok_or_else(bad)?;
        return Ok(format!(
            "SELECT 1 FROM {table} WHERE NOT _deleted AND {expr} COLLATE \"C\" = $1::text LIMIT 1"
        ));
    };
    let segments: Vec<&str> = path.split('.').collect();
    let cut = (at + 1).min(segments.len());
    let array = jxp_query::pg_doc_text(&segments[..cut].join(".")).ok_or_else(bad)?;
    // The array as json: the text expression's last `->>` becomes `->`.
    let array = match array.rfind("->>") {
        Some(i) => format!("{}->{}", &array[..i], &array[i + 3..]),
        None => return Err(bad()),
    };
    let rest = &segments[cut..];
    let elem = if rest.is_empty() {
        "(jx.v #>> '{}')".to_owned()
    } else {
        let inner = jxp_query::pg_doc_text(&rest.join(".")).ok_or_else(bad)?;
        inner.replacen(
            "(doc",
            "((CASE WHEN json_typeof(jx.v) = 'object' THEN jx.v END)",
            1,
        )
    };
    Ok(format!(
        "SELECT 1 FROM {table} WHERE NOT _deleted AND EXISTS
         (SELECT 1 FROM jxp_items({array}) AS jx(v) WHERE {elem} = $1::text) LIMIT 1"
    ))
}

//! The write path: the waiting write transactions of this process go into one PostgreSQL
//! transaction (group commit), each in its own savepoint, so a failing one takes back only its
//! own operations. Documents are written first; then, for each model touched (in name order,
//! so concurrent transactions lock the counters in the same order), the counter row is
//! advanced by the number of changes (`UPDATE … SET seq = seq + n RETURNING seq`), the change
//! rows are inserted and a notification is queued. The counter row stays locked until COMMIT,
//! so a model's changes commit in seq order and without gaps; a rolled-back transaction takes
//! its seqs with it. One commit (one WAL flush) answers the whole batch, which is what lets
//! writes to one model go faster than one flush each.

use std::collections::BTreeMap;
use std::sync::Arc;

use deadpool_postgres::{ClientWrapper, Pool, Transaction};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

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

/// Change rows as columns.
#[derive(Default)]
struct ChangeRows {
    model: Vec<String>,
    seq: Vec<i64>,
    op: Vec<String>,
    id: Vec<String>,
    doc: Vec<String>,
    actor: Vec<Option<String>>,
    silent: Vec<bool>,
}

/// A change before its seq is known.
struct Pending {
    model: String,
    op: ChangeOp,
    id: String,
    doc: Document,
    text: String,
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
    loop {
        attempt += 1;
        match try_batch(client, ctx, batch).await {
            Ok(answers) => return answers,
            Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                tracing::debug!(error = %e, "write transaction retried");
            }
            Err(e) => {
                let why = database_text(e.into());
                return batch
                    .iter()
                    .map(|_| Err(StoreError::Database(why.clone())))
                    .collect();
            }
        }
    }
}

async fn try_batch(
    client: &mut ClientWrapper,
    ctx: &Context<'_>,
    batch: &[WriteTx],
) -> Result<Vec<Answer>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let mut applied: Vec<Result<Vec<Pending>, StoreError>> = Vec::with_capacity(batch.len());
    // The savepoint of the last write, when that write succeeded and it is still open.
    let mut open = false;
    let mut next = 0;
    while next < batch.len() {
        // Writes that only insert go to the server back to back, without waiting in between.
        let run = batch[next..]
            .iter()
            .take_while(|w| only_inserts(ctx, w))
            .count();
        if run >= 2 {
            let (outcomes, still_open) =
                insert_run(&tx, ctx, &batch[next..next + run], open).await?;
            next += outcomes.len();
            applied.extend(outcomes);
            open = still_open;
            continue;
        }
        let wtx = &batch[next];
        next += 1;
        let begin = if open {
            "RELEASE SAVEPOINT jxp_write; SAVEPOINT jxp_write"
        } else {
            "SAVEPOINT jxp_write"
        };
        // Polled together, the savepoint goes out with the write's first statement: one round
        // trip instead of two.
        let (savepoint, result) = tokio::join!(tx.batch_execute(begin), apply(&tx, ctx, wtx));
        let failed = match (savepoint, result) {
            (Err(e), _) => return Err(e),
            (Ok(()), Ok(pending)) => {
                applied.push(Ok(pending));
                open = true;
                continue;
            }
            (Ok(()), Err(Failure::Db(e))) if retryable(&e) => return Err(e),
            (Ok(()), Err(Failure::Db(e))) => e.into(),
            (Ok(()), Err(Failure::Store(e))) => e,
        };
        tx.batch_execute("ROLLBACK TO SAVEPOINT jxp_write; RELEASE SAVEPOINT jxp_write")
            .await?;
        open = false;
        applied.push(Err(failed));
    }
    if open {
        tx.batch_execute("RELEASE SAVEPOINT jxp_write").await?;
    }
    let answers = match log_changes(&tx, ctx, batch, applied).await {
        Ok(answers) => answers,
        Err(Failure::Db(e)) => return Err(e),
        Err(Failure::Store(e)) => {
            // Only a database fault gets here; the transaction cannot commit.
            let why = database_text(e);
            return Ok(batch
                .iter()
                .map(|_| Err(StoreError::Database(why.clone())))
                .collect());
        }
    };
    tx.commit().await?;
    Ok(answers)
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
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    run: &[WriteTx],
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
                mine.push(Pending {
                    model: model.clone(),
                    op: ChangeOp::Create,
                    id: str_field(doc, "_id").unwrap_or_default().to_owned(),
                    doc: doc.clone(),
                    text: serde_json::to_string(doc).unwrap_or_default(),
                });
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
        let begin = if w == 0 && !open {
            "SAVEPOINT jxp_write"
        } else {
            "RELEASE SAVEPOINT jxp_write; SAVEPOINT jxp_write"
        };
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
    tx: &Transaction<'_>,
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

/// Takes the seqs of every applied write of the batch, in batch order, writes the change
/// rows and queues one notification; answers each write transaction.
async fn log_changes(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    batch: &[WriteTx],
    applied: Vec<Result<Vec<Pending>, StoreError>>,
) -> Result<Vec<Answer>, Failure> {
    let mut per_model: BTreeMap<String, u64> = BTreeMap::new();
    for p in applied.iter().flatten().flatten() {
        *per_model.entry(p.model.clone()).or_default() += 1;
    }
    // The next seq to hand out per model.
    let mut next: BTreeMap<String, u64> = BTreeMap::new();
    let bump = tx
        .prepare_cached(
            "INSERT INTO jxp_seq (model, seq) VALUES ($1::text, $2::int8)
             ON CONFLICT (model) DO UPDATE SET seq = jxp_seq.seq + excluded.seq
             RETURNING seq",
        )
        .await?;
    for (model, n) in &per_model {
        let n_i = i64::try_from(*n).unwrap_or(i64::MAX);
        let last: i64 = tx.query_one(&bump, &[model, &n_i]).await?.get(0);
        let last = u64::try_from(last).unwrap_or_default();
        next.insert(model.clone(), last + 1 - n);
    }
    let mut answers = Vec::with_capacity(applied.len());
    let mut changes: Vec<Arc<Change>> = Vec::new();
    // The change rows, as columns for one `INSERT … SELECT FROM unnest(…)`.
    let mut rows = ChangeRows::default();
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
            let slot = next.entry(p.model.clone()).or_default();
            let seq = *slot;
            *slot += 1;
            rows.model.push(p.model.clone());
            rows.seq.push(i64::try_from(seq).unwrap_or(i64::MAX));
            rows.op.push(p.op.as_str().to_owned());
            rows.id.push(p.id.clone());
            rows.doc.push(p.text);
            rows.actor.push(wtx.actor.clone());
            rows.silent.push(wtx.silent);
            let change = Arc::new(Change {
                model: p.model,
                seq,
                op: p.op,
                id: p.id,
                doc: Arc::new(p.doc),
                actor: wtx.actor.clone(),
                silent: wtx.silent,
            });
            changes.push(change.clone());
            mine.push(change);
        }
        answers.push(Ok(mine));
    }
    if changes.is_empty() {
        return Ok(answers);
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO jxp_changes (model, seq, op, doc_id, doc, actor, silent)
             SELECT m, s, o, i, d::json, a, q
             FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::bool[]) AS r(m, s, o, i, d, a, q)",
        )
        .await?;
    tx.execute(
        &insert,
        &[
            &rows.model,
            &rows.seq,
            &rows.op,
            &rows.id,
            &rows.doc,
            &rows.actor,
            &rows.silent,
        ],
    )
    .await?;
    // One notification for the transaction: its changes as runs of one model, in op order
    // (`test:5 link:2 test:6`), so listeners publish them in the order they were made.
    let mut runs: Vec<(&str, u64)> = Vec::new();
    for c in &changes {
        match runs.last_mut() {
            Some((m, seq)) if *m == c.model => *seq = c.seq,
            _ => runs.push((c.model.as_str(), c.seq)),
        }
    }
    let mut payload: Vec<String> = runs.iter().map(|(m, s)| format!("{m}:{s}")).collect();
    if payload.iter().map(|p| p.len() + 1).sum::<usize>() > MAX_PAYLOAD {
        // Too long for a notification: each model's last seq (order across models is lost).
        payload = next
            .iter()
            .map(|(m, s)| format!("{m}:{}", s.saturating_sub(1)))
            .collect();
    }
    tx.execute(
        "SELECT pg_notify($1::text, $2::text)",
        &[&ctx.channel, &payload.join(" ")],
    )
    .await?;
    for (model, n) in &per_model {
        let last = next
            .get(model)
            .copied()
            .unwrap_or_default()
            .saturating_sub(1);
        // Trim in steps so the delete runs once per many writes, not on every write.
        let step = (ctx.retention / 16).max(1);
        let before = last - n;
        if last > ctx.retention && before / step != last / step {
            tx.execute(
                "DELETE FROM jxp_changes WHERE model = $1::text AND seq <= $2::int8",
                &[
                    model,
                    &i64::try_from(last - ctx.retention).unwrap_or(i64::MAX),
                ],
            )
            .await?;
        }
    }
    Ok(answers)
}

async fn check_guard(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    guard: &Guard,
) -> Result<(), Failure> {
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

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
//!
//! Here: the writer task, the batch's transaction and its retry, and one write in its
//! savepoint. `insert.rs` sends runs of inserts together, `apply.rs` applies a write's
//! operations and guards, `log.rs` writes the change log and commits.

mod apply;
mod insert;
mod log;

use std::sync::Arc;

use deadpool_postgres::{ClientWrapper, Pool};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

use super::listen::Published;
use crate::Document;
use crate::change::{Change, ChangeOp};
use crate::error::StoreError;
use crate::row::str_field;
use crate::spec::WriteTx;
use crate::tables::Tables;

use apply::{Failure, apply};
use insert::{insert_run, insert_together, only_inserts, single_insert_run};
use log::finish;

/// How often a transaction that lost a deadlock or serialization race is tried again.
const ATTEMPTS: usize = 5;

/// What every step of a batch needs of its store.
pub(crate) struct Context<'a> {
    pub tables: &'a Tables,
    pub channel: &'a str,
    pub retention: u64,
    pub published: &'a Published,
}

/// A change before its seq is known.
struct Pending {
    model: String,
    op: ChangeOp,
    id: String,
    doc: Document,
    text: String,
    prev: Option<Arc<Document>>,
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
            prev: None,
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
    tables: Arc<Tables>,
    channel: String,
    retention: u64,
    published: Arc<Published>,
    mut queue: mpsc::UnboundedReceiver<Queued>,
) {
    let ctx = Context {
        tables: tables.as_ref(),
        channel: &channel,
        retention,
        published: &published,
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
        crate::count_batch(batch.len());
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
        // Committed (or failed): on this process's stream now if they follow on from what is
        // published, else as soon as the listener has published what another process
        // committed first; either way the listener may read the log again.
        let own: Vec<Arc<Change>> = answers.iter().flatten().flatten().cloned().collect();
        published.committed(own);
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

fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::T_R_DEADLOCK_DETECTED | &SqlState::T_R_SERIALIZATION_FAILURE)
    )
}

//! The writer thread: the only connection that writes. It drains every write transaction that
//! is waiting, applies each inside a SAVEPOINT of one SQLite transaction (so one failing
//! transaction rolls back alone), commits once, then publishes the changes in commit order and
//! answers each caller. Batching is what makes concurrent writes cheap: one commit for many.
//! Applying the operations is `apply.rs`; the change log and its counters are `log.rs`.

mod apply;
mod import;
mod log;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use rusqlite::Connection;
use tokio::sync::{broadcast, oneshot};

use super::migrate;
use crate::change::Change;
use crate::error::StoreError;
use crate::import::{ImportError, ImportSteps, Imported};
use crate::spec::{TableSpec, WriteOp, WriteTx};
use crate::tables::Tables;

/// Most write transactions folded into one SQLite transaction.
const MAX_BATCH: usize = 512;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(crate) enum Command {
    Write(WriteTx, Reply<Vec<Arc<Change>>>),
    Migrate(Vec<TableSpec>, Reply<()>),
    /// Finish the writes sent before it, close the connection, then answer and stop.
    Close(Reply<()>),
    /// A bulk import into one model, read from its feed; the writer does nothing else
    /// meanwhile.
    Import(
        String,
        ImportSteps,
        oneshot::Sender<Result<Imported, ImportError>>,
    ),
}

pub(crate) fn spawn(
    conn: Connection,
    tables: Arc<Tables>,
    events: broadcast::Sender<Arc<Change>>,
    retention: u64,
) -> Result<Sender<Command>, StoreError> {
    let seqs = log::load_seqs(&conn)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut writer = Writer {
        conn,
        tables,
        events,
        retention: retention.max(1),
        seqs,
    };
    std::thread::Builder::new()
        .name("jxp-sqlite-writer".into())
        .spawn(move || {
            // On one CPU, a write handed over must not preempt the worker that sent it, so
            // that the writes of one turn of the workers share a transaction (see
            // `jxp_model::sched`). With more, the writer wakes on another CPU, and the policy
            // would only delay a lone write.
            if std::thread::available_parallelism().is_ok_and(|n| n.get() == 1)
                && let Err(e) = jxp_model::sched::batch_policy()
            {
                tracing::debug!(error = %e, "the writer keeps the default scheduling policy");
            }
            let closed = writer.run(rx);
            // Answered once the connection is closed, so whoever asked may open the file.
            drop(writer);
            if let Some(reply) = closed {
                let _ = reply.send(Ok(()));
            }
        })
        .map_err(|e| StoreError::Database(format!("cannot start writer thread: {e}")))?;
    Ok(tx)
}

struct Writer {
    conn: Connection,
    tables: Arc<Tables>,
    events: broadcast::Sender<Arc<Change>>,
    retention: u64,
    /// The last assigned `seq` per model; only this thread changes it.
    seqs: HashMap<String, u64>,
}

impl Writer {
    /// Runs until every sender is gone or a `Close` comes, which it answers with.
    fn run(&mut self, rx: Receiver<Command>) -> Option<Reply<()>> {
        let mut writes = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Write(tx, reply) => writes.push((tx, reply)),
                    Command::Migrate(specs, reply) => {
                        // A migration runs alone, after the writes queued before it.
                        self.write_batch(std::mem::take(&mut writes));
                        let result = migrate::migrate(&self.conn, &self.tables, &specs);
                        let _ = reply.send(result);
                    }
                    Command::Import(model, steps, reply) => {
                        // An import runs alone, after the writes queued before it.
                        self.write_batch(std::mem::take(&mut writes));
                        let _ = reply.send(self.import(&model, steps));
                    }
                    Command::Close(reply) => {
                        self.write_batch(std::mem::take(&mut writes));
                        tracing::debug!("sqlite writer closed");
                        return Some(reply);
                    }
                }
                if writes.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            self.write_batch(std::mem::take(&mut writes));
        }
        tracing::debug!("sqlite writer stopped");
        None
    }

    fn write_batch(&mut self, writes: Vec<(WriteTx, Reply<Vec<Arc<Change>>>)>) {
        if writes.is_empty() {
            return;
        }
        crate::count_batch(writes.len());
        let before = self.seqs.clone();
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            let e = StoreError::from(e);
            for (_, reply) in writes {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        let mut outcomes = Vec::with_capacity(writes.len());
        for (tx, reply) in writes {
            let outcome = self.apply_in_savepoint(&tx);
            outcomes.push((outcome, reply));
        }
        let committed = self.persist_seqs(&before).and_then(|()| {
            self.conn.execute_batch("COMMIT")?;
            Ok(())
        });
        if let Err(e) = committed {
            tracing::error!(error = %e, "write batch failed to commit");
            let _ = self.conn.execute_batch("ROLLBACK");
            self.seqs = before;
            for (_, reply) in outcomes {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        for (outcome, reply) in outcomes {
            if let Ok(changes) = &outcome {
                for change in changes {
                    // No receiver is not an error: nobody listens yet.
                    let _ = self.events.send(change.clone());
                }
            }
            let _ = reply.send(outcome);
        }
    }

    fn apply_in_savepoint(&mut self, tx: &WriteTx) -> Result<Vec<Arc<Change>>, StoreError> {
        self.conn.execute_batch("SAVEPOINT w")?;
        let before: Vec<(String, Option<u64>)> = tx
            .ops
            .iter()
            .filter_map(op_model)
            .map(|m| (m.to_owned(), self.seqs.get(m).copied()))
            .collect();
        let result = self.apply(tx);
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK TO w");
            for (model, seq) in before.into_iter().rev() {
                match seq {
                    Some(s) => self.seqs.insert(model, s),
                    None => self.seqs.remove(&model),
                };
            }
        }
        self.conn.execute_batch("RELEASE w")?;
        result
    }
}

fn op_model(op: &WriteOp) -> Option<&str> {
    match op {
        WriteOp::Insert { model, .. }
        | WriteOp::Replace { model, .. }
        | WriteOp::Remove { model, .. } => Some(model),
        WriteOp::Guard(_) => None,
    }
}

//! The writer thread: the only connection that writes. It drains every write transaction that
//! is waiting, applies each inside a SAVEPOINT of one SQLite transaction (so one failing
//! transaction rolls back alone), commits once, then publishes the changes in commit order and
//! answers each caller. Batching is what makes concurrent writes cheap: one commit for many.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

use super::{Tables, fts_name, migrate, table_name};
use crate::Document;
use crate::change::{Change, ChangeOp};
use crate::error::StoreError;
use crate::spec::{Guard, TableSpec, WriteOp, WriteTx};

/// Most write transactions folded into one SQLite transaction.
const MAX_BATCH: usize = 512;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(crate) enum Command {
    Write(WriteTx, Reply<Vec<Arc<Change>>>),
    Migrate(Vec<TableSpec>, Reply<()>),
}

pub(crate) fn create_system_tables(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS jxp_seq (
             model TEXT PRIMARY KEY,
             seq INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS jxp_changes (
             model TEXT NOT NULL,
             seq INTEGER NOT NULL,
             op TEXT NOT NULL,
             doc_id TEXT NOT NULL,
             doc TEXT NOT NULL,
             actor TEXT,
             silent INTEGER NOT NULL DEFAULT 0,
             at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
             PRIMARY KEY (model, seq)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS jxp_meta (
             key TEXT PRIMARY KEY,
             value TEXT NOT NULL
         );",
    )?;
    Ok(())
}

pub(crate) fn spawn(
    conn: Connection,
    tables: Tables,
    events: broadcast::Sender<Arc<Change>>,
    retention: u64,
) -> Result<Sender<Command>, StoreError> {
    let seqs = load_seqs(&conn)?;
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
        .spawn(move || writer.run(rx))
        .map_err(|e| StoreError::Database(format!("cannot start writer thread: {e}")))?;
    Ok(tx)
}

fn load_seqs(conn: &Connection) -> Result<HashMap<String, u64>, StoreError> {
    let mut stmt = conn.prepare("SELECT model, seq FROM jxp_seq")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (model, seq) = row?;
        out.insert(model, u64::try_from(seq).unwrap_or_default());
    }
    Ok(out)
}

struct Writer {
    conn: Connection,
    tables: Tables,
    events: broadcast::Sender<Arc<Change>>,
    retention: u64,
    /// The last assigned `seq` per model; only this thread changes it.
    seqs: HashMap<String, u64>,
}

impl Writer {
    fn run(&mut self, rx: Receiver<Command>) {
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
                }
                if writes.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            self.write_batch(std::mem::take(&mut writes));
        }
        tracing::debug!("sqlite writer stopped");
    }

    fn write_batch(&mut self, writes: Vec<(WriteTx, Reply<Vec<Arc<Change>>>)>) {
        if writes.is_empty() {
            return;
        }
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

    fn apply(&mut self, tx: &WriteTx) -> Result<Vec<Arc<Change>>, StoreError> {
        let mut changes = Vec::new();
        for op in &tx.ops {
            let (model, id, doc, text, change_op) = match op {
                WriteOp::Guard(guard) => {
                    self.check_guard(guard)?;
                    continue;
                }
                WriteOp::Insert { model, doc } => {
                    let id = doc_id(model, doc)?;
                    let text = serde_json::to_string(doc)?;
                    self.insert(model, &id, doc, &text)?;
                    (model, id, doc.clone(), text, ChangeOp::Create)
                }
                WriteOp::Replace {
                    model,
                    id,
                    doc,
                    expect_version,
                    op,
                } => {
                    let text = serde_json::to_string(doc)?;
                    self.replace(model, id, doc, &text, *expect_version)?;
                    (model, id.clone(), doc.clone(), text, *op)
                }
                WriteOp::Remove { model, id } => {
                    let (doc, text) = self.remove(model, id)?;
                    (model, id.clone(), doc, text, ChangeOp::Delete)
                }
            };
            let seq = self.seqs.get(model).copied().unwrap_or_default() + 1;
            self.seqs.insert(model.clone(), seq);
            self.conn
                .prepare_cached(
                    "INSERT INTO jxp_changes (model, seq, op, doc_id, doc, actor, silent)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    model,
                    i64::try_from(seq).unwrap_or(i64::MAX),
                    change_op.as_str(),
                    id,
                    text,
                    tx.actor,
                    tx.silent
                ])?;
            changes.push(Arc::new(Change {
                model: model.clone(),
                seq,
                op: change_op,
                id,
                doc: Arc::new(doc),
                actor: tx.actor.clone(),
                silent: tx.silent,
            }));
        }
        Ok(changes)
    }

    fn table_known(&self, model: &str) -> Result<Vec<String>, StoreError> {
        self.tables
            .read()
            .ok()
            .and_then(|t| t.get(model).map(|info| info.text_fields.clone()))
            .ok_or_else(|| StoreError::UnknownModel(model.to_owned()))
    }

    fn map_unique(&self, model: &str, e: rusqlite::Error) -> StoreError {
        if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e
            && f.code == rusqlite::ErrorCode::ConstraintViolation
            && msg.contains("UNIQUE")
        {
            let field = self
                .tables
                .read()
                .ok()
                .and_then(|t| {
                    t.get(model).and_then(|info| {
                        info.unique_indexes
                            .iter()
                            .find(|(name, _)| msg.contains(&format!("'{name}'")))
                            .map(|(_, path)| path.clone())
                    })
                })
                .unwrap_or_else(|| "_id".to_owned());
            return StoreError::Unique {
                model: model.to_owned(),
                field,
            };
        }
        e.into()
    }

    fn insert(&self, model: &str, id: &str, doc: &Document, text: &str) -> Result<(), StoreError> {
        let text_fields = self.table_known(model)?;
        let sql = format!(
            "INSERT INTO {} (_id, doc, _owner_id, _deleted, createdAt, updatedAt)
             VALUES (?1, jsonb(?2), ?3, ?4, ?5, ?6)",
            table_name(model)
        );
        self.conn
            .prepare_cached(&sql)?
            .execute(params![
                id,
                text,
                str_field(doc, "_owner_id"),
                doc.get("_deleted")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                str_field(doc, "createdAt"),
                str_field(doc, "updatedAt"),
            ])
            .map_err(|e| self.map_unique(model, e))?;
        self.index_text(model, id, &text_fields)
    }

    fn replace(
        &self,
        model: &str,
        id: &str,
        doc: &Document,
        text: &str,
        expect_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let text_fields = self.table_known(model)?;
        self.unindex_text(model, id, &text_fields)?;
        let sql = format!(
            "UPDATE {} SET doc = jsonb(?2), _owner_id = ?3, _deleted = ?4, createdAt = ?5, updatedAt = ?6
             WHERE _id = ?1 AND (?7 IS NULL OR json_extract(doc, '$.__v') = ?7)",
            table_name(model)
        );
        let n = self
            .conn
            .prepare_cached(&sql)?
            .execute(params![
                id,
                text,
                str_field(doc, "_owner_id"),
                doc.get("_deleted")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                str_field(doc, "createdAt"),
                str_field(doc, "updatedAt"),
                expect_version,
            ])
            .map_err(|e| self.map_unique(model, e))?;
        if n == 0 {
            let exists: Option<i64> = self
                .conn
                .prepare_cached(&format!(
                    "SELECT 1 FROM {} WHERE _id = ?1",
                    table_name(model)
                ))?
                .query_row([id], |r| r.get(0))
                .optional()?;
            return Err(match exists {
                Some(_) => StoreError::VersionConflict {
                    model: model.to_owned(),
                    id: id.to_owned(),
                },
                None => StoreError::NotFound {
                    model: model.to_owned(),
                    id: id.to_owned(),
                },
            });
        }
        self.index_text(model, id, &text_fields)
    }

    fn remove(&self, model: &str, id: &str) -> Result<(Document, String), StoreError> {
        let text_fields = self.table_known(model)?;
        let text: Option<String> = self
            .conn
            .prepare_cached(&format!(
                "SELECT json(doc) FROM {} WHERE _id = ?1",
                table_name(model)
            ))?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let Some(text) = text else {
            return Err(StoreError::NotFound {
                model: model.to_owned(),
                id: id.to_owned(),
            });
        };
        self.unindex_text(model, id, &text_fields)?;
        self.conn
            .prepare_cached(&format!("DELETE FROM {} WHERE _id = ?1", table_name(model)))?
            .execute([id])?;
        Ok((super::read::parse_doc(&text)?, text))
    }

    fn index_text(&self, model: &str, id: &str, text_fields: &[String]) -> Result<(), StoreError> {
        if text_fields.is_empty() {
            return Ok(());
        }
        let sql = migrate::fts_insert_sql(model, text_fields, "WHERE _id = ?1");
        self.conn.prepare_cached(&sql)?.execute([id])?;
        Ok(())
    }

    fn unindex_text(
        &self,
        model: &str,
        id: &str,
        text_fields: &[String],
    ) -> Result<(), StoreError> {
        if text_fields.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "DELETE FROM {} WHERE rowid = (SELECT rid FROM {} WHERE _id = ?1)",
            fts_name(model),
            table_name(model)
        );
        self.conn.prepare_cached(&sql)?.execute([id])?;
        Ok(())
    }

    fn check_guard(&self, guard: &Guard) -> Result<(), StoreError> {
        match guard {
            Guard::NotReferenced { model, id, by } => {
                for r in by {
                    self.table_known(&r.model)?;
                    let path = migrate::json_path(&r.path)?;
                    let sql = if let Some(at) = r.array_at {
                        let (array_part, rest) = migrate::split_array_path(&r.path, at);
                        let elem = if rest.is_empty() {
                            "value".to_owned()
                        } else {
                            format!("json_extract(value, '$.{rest}')")
                        };
                        format!(
                            "SELECT 1 FROM {} WHERE _deleted = 0 AND EXISTS
                             (SELECT 1 FROM json_each(doc, '$.{array_part}') WHERE {elem} = ?1) LIMIT 1",
                            table_name(&r.model)
                        )
                    } else {
                        format!(
                            "SELECT 1 FROM {} WHERE _deleted = 0 AND json_extract(doc, '{path}') = ?1 LIMIT 1",
                            table_name(&r.model)
                        )
                    };
                    let hit: Option<i64> = self
                        .conn
                        .prepare_cached(&sql)?
                        .query_row([id], |row| row.get(0))
                        .optional()?;
                    if hit.is_some() {
                        return Err(StoreError::Referenced {
                            model: model.clone(),
                            id: id.clone(),
                            by_model: r.model.clone(),
                            by_field: r.path.clone(),
                        });
                    }
                }
                Ok(())
            }
            Guard::Empty { model } => {
                self.table_known(model)?;
                let any: Option<i64> = self
                    .conn
                    .prepare_cached(&format!("SELECT 1 FROM {} LIMIT 1", table_name(model)))?
                    .query_row([], |row| row.get(0))
                    .optional()?;
                match any {
                    Some(_) => Err(StoreError::NotEmpty {
                        model: model.clone(),
                    }),
                    None => Ok(()),
                }
            }
        }
    }

    /// Writes the counters that moved in this batch, and trims the change log to the
    /// retention of each model that grew past it.
    fn persist_seqs(&self, before: &HashMap<String, u64>) -> Result<(), StoreError> {
        for (model, seq) in &self.seqs {
            let old = before.get(model).copied().unwrap_or_default();
            if *seq == old {
                continue;
            }
            let seq_i = i64::try_from(*seq).unwrap_or(i64::MAX);
            self.conn
                .prepare_cached(
                    "INSERT INTO jxp_seq (model, seq) VALUES (?1, ?2)
                     ON CONFLICT (model) DO UPDATE SET seq = excluded.seq",
                )?
                .execute(params![model, seq_i])?;
            // Trim in steps so the delete runs once per many writes, not on every write.
            let step = (self.retention / 16).max(1);
            if *seq > self.retention && (old / step) != (*seq / step) {
                let keep_after = i64::try_from(*seq - self.retention).unwrap_or(i64::MAX);
                self.conn
                    .prepare_cached("DELETE FROM jxp_changes WHERE model = ?1 AND seq <= ?2")?
                    .execute(params![model, keep_after])?;
            }
        }
        Ok(())
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

fn doc_id(model: &str, doc: &Document) -> Result<String, StoreError> {
    doc.get("_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Database(format!("insert into {model} without _id")))
}

fn str_field<'a>(doc: &'a Document, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

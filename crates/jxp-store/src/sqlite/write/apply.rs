//! One write transaction's operations, on the writer's connection: documents inserted,
//! replaced and removed with their full-text entries, and guards checked, each operation
//! followed by its change-log row.

use std::sync::Arc;

use jxp_query::render_sqlite_filter;
use rusqlite::{OptionalExtension, params, params_from_iter};

use super::Writer;
use crate::Document;
use crate::change::{Change, ChangeOp};
use crate::error::StoreError;
use crate::row::{Columns, doc_id, parse_doc};
use crate::spec::{Guard, WriteOp, WriteTx};
use crate::sqlite::read::to_sql;
use crate::sqlite::{fts_name, migrate};
use crate::tables::table_name;

impl Writer {
    /// Applies the operations of `tx` in order; answers the changes they made.
    pub(super) fn apply(&mut self, tx: &WriteTx) -> Result<Vec<Arc<Change>>, StoreError> {
        let mut changes = Vec::new();
        for op in &tx.ops {
            let (model, id, doc, text, change_op, prev) = match op {
                WriteOp::Guard(guard) => {
                    self.check_guard(guard)?;
                    continue;
                }
                WriteOp::Insert { model, doc } => {
                    let id = doc_id(model, doc)?;
                    let text = serde_json::to_string(doc)?;
                    self.insert(model, &id, doc, &text)?;
                    (model, id, doc.clone(), text, ChangeOp::Create, None)
                }
                WriteOp::Replace {
                    model,
                    id,
                    doc,
                    expect_version,
                    op,
                    prev,
                } => {
                    let text = serde_json::to_string(doc)?;
                    self.replace(model, id, doc, &text, *expect_version)?;
                    (model, id.clone(), doc.clone(), text, *op, prev.clone())
                }
                WriteOp::Remove { model, id } => {
                    let (doc, text) = self.remove(model, id)?;
                    (model, id.clone(), doc, text, ChangeOp::Delete, None)
                }
            };
            let seq = self.log_change(tx, model, change_op, &id, &text)?;
            changes.push(Arc::new(Change {
                model: model.clone(),
                seq,
                op: change_op,
                id,
                doc: Arc::new(doc),
                prev,
                actor: tx.actor.clone(),
                silent: tx.silent,
            }));
        }
        Ok(changes)
    }

    /// A unique violation named after the field its index is on.
    pub(super) fn map_unique(&self, model: &str, e: rusqlite::Error) -> StoreError {
        if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e
            && f.code == rusqlite::ErrorCode::ConstraintViolation
            && msg.contains("UNIQUE")
        {
            return StoreError::Unique {
                model: model.to_owned(),
                field: self
                    .tables
                    .unique_field(model, |name| msg.contains(&format!("'{name}'"))),
            };
        }
        e.into()
    }

    fn insert(&self, model: &str, id: &str, doc: &Document, text: &str) -> Result<(), StoreError> {
        let text_fields = self.tables.text_fields(model)?;
        let sql = format!(
            "INSERT INTO {} (_id, doc, _owner_id, _deleted, createdAt, updatedAt)
             VALUES (?1, jsonb(?2), ?3, ?4, ?5, ?6)",
            table_name(model)
        );
        let c = Columns::of(doc);
        self.conn
            .prepare_cached(&sql)?
            .execute(params![id, text, c.owner, c.deleted, c.created, c.updated])
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
        let text_fields = self.tables.text_fields(model)?;
        self.unindex_text(model, id, &text_fields)?;
        let sql = format!(
            "UPDATE {} SET doc = jsonb(?2), _owner_id = ?3, _deleted = ?4, createdAt = ?5, updatedAt = ?6
             WHERE _id = ?1 AND (?7 IS NULL OR json_extract(doc, '$.__v') = ?7)",
            table_name(model)
        );
        let c = Columns::of(doc);
        let n = self
            .conn
            .prepare_cached(&sql)?
            .execute(params![
                id,
                text,
                c.owner,
                c.deleted,
                c.created,
                c.updated,
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
        let text_fields = self.tables.text_fields(model)?;
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
        Ok((parse_doc(&text)?, text))
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

    /// Checks a guard inside the writing transaction. The writer is the only connection that
    /// writes, so nothing can change between the check and the commit.
    fn check_guard(&self, guard: &Guard) -> Result<(), StoreError> {
        match guard {
            Guard::NotReferenced { model, id, by } => {
                for r in by {
                    self.tables.check_model(&r.model)?;
                    let q = r.referrer_query(render_sqlite_filter);
                    let hit: Option<i64> = self
                        .conn
                        .prepare_cached(&q.sql)?
                        .query_row(params_from_iter(q.params.iter().map(to_sql)), |row| {
                            row.get(0)
                        })
                        .optional()?;
                    if hit.is_some() {
                        return Err(r.refusal(model, id));
                    }
                }
                Ok(())
            }
            Guard::Empty { model } => {
                self.tables.check_model(model)?;
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
}

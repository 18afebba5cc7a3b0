//! A bulk import on the writer's connection: one SQLite transaction, one prepared insert for
//! every document, the full-text index filled by one statement once the rows are in, and the
//! change log moved on as the import module says (`crate::import`). The writer does nothing
//! else meanwhile; on SQLite no other process can write to the file anyway.

use rusqlite::params;

use super::Writer;
use crate::change::ChangeOp;
use crate::error::StoreError;
use crate::import::{ImportError, ImportStep, ImportSteps, Imported, Tail};
use crate::spec::WriteTx;
use crate::sqlite::migrate;
use crate::tables::table_name;

/// The page cache of the writer while it imports (KiB, as `cache_size` takes a negative
/// number): the secondary indexes of a large import are written all over, and a cache that
/// holds them saves most of the reads and re-writes of their pages.
const IMPORT_CACHE_KIB: i64 = 256 * 1024;
/// The writer's usual page cache, as `open_connection` sets it.
const USUAL_CACHE_KIB: i64 = 16_000;

impl Writer {
    /// Reads the feed to its `Commit` and writes it all in one transaction, or nothing.
    pub(super) fn import(
        &mut self,
        model: &str,
        mut steps: ImportSteps,
    ) -> Result<Imported, ImportError> {
        self.tables.check_model(model)?;
        let before = self.seqs.clone();
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)?;
        let _ = self
            .conn
            .execute_batch(&format!("PRAGMA cache_size = -{IMPORT_CACHE_KIB}"));
        let result = self.import_rows(model, &mut steps);
        let result = result.and_then(|imported| {
            self.persist_seqs(&before)?;
            self.conn
                .execute_batch("COMMIT")
                .map_err(StoreError::from)?;
            Ok(imported)
        });
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.seqs = before;
        }
        let _ = self
            .conn
            .execute_batch(&format!("PRAGMA cache_size = -{USUAL_CACHE_KIB}"));
        result
    }

    /// The rows, their full-text entries and the change log, inside the open transaction.
    fn import_rows(
        &mut self,
        model: &str,
        steps: &mut ImportSteps,
    ) -> Result<Imported, ImportError> {
        let table = table_name(model);
        let text_fields = self.tables.text_fields(model)?;
        let last_rid: i64 = self
            .conn
            .query_row(
                &format!("SELECT coalesce(max(rid), 0) FROM {table}"),
                [],
                |r| r.get(0),
            )
            .map_err(StoreError::from)?;
        let mut tail = Tail::new(self.retention);
        let mut count: u64 = 0;
        {
            let mut insert = self
                .conn
                .prepare(&format!(
                    "INSERT INTO {table} (_id, doc, _owner_id, _deleted, createdAt, updatedAt)
                     VALUES (?1, jsonb(?2), ?3, ?4, ?5, ?6)"
                ))
                .map_err(StoreError::from)?;
            loop {
                match steps.blocking_recv() {
                    Some(ImportStep::Docs(docs)) => {
                        for d in docs {
                            insert
                                .execute(params![
                                    d.id, d.text, d.owner, d.deleted, d.created, d.updated
                                ])
                                .map_err(|e| ImportError::Refused {
                                    at: count,
                                    error: self.map_unique(model, e),
                                })?;
                            count += 1;
                            tail.push(d);
                        }
                    }
                    Some(ImportStep::Commit) => break,
                    None => return Err(ImportError::Abandoned),
                }
            }
        }
        if !text_fields.is_empty() {
            // One statement over the new rows instead of one per document.
            let sql = migrate::fts_insert_sql(model, &text_fields, "WHERE rid > ?1");
            self.conn
                .execute(&sql, [last_rid])
                .map_err(StoreError::from)?;
        }
        // The counter moves past the documents whose change rows the retention would have
        // trimmed already; the last ones get theirs.
        let skipped = count - tail.len() as u64;
        let seq = self.seqs.get(model).copied().unwrap_or_default() + skipped;
        self.seqs.insert(model.to_owned(), seq);
        let system = WriteTx::default();
        let mut last_seq = seq;
        for (id, text) in tail.iter() {
            last_seq = self.log_change(&system, model, ChangeOp::Create, id, text)?;
        }
        Ok(Imported { count, last_seq })
    }
}

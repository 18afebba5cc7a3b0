//! The change log on SQLite: the per-model counters (kept in memory by the writer, written
//! once per batch), one `jxp_changes` row per change, and the log trimmed to its retention.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::Writer;
use crate::change::ChangeOp;
use crate::error::StoreError;
use crate::row::{seq_from_db, seq_to_db};
use crate::spec::WriteTx;

/// The last seq of every model, as the counters table holds it.
pub(super) fn load_seqs(conn: &Connection) -> Result<HashMap<String, u64>, StoreError> {
    let mut stmt = conn.prepare("SELECT model, seq FROM jxp_seq")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (model, seq) = row?;
        out.insert(model, seq_from_db(seq));
    }
    Ok(out)
}

impl Writer {
    /// Appends the change of one operation of `tx` to the log with the model's next seq;
    /// answers that seq.
    pub(super) fn log_change(
        &mut self,
        tx: &WriteTx,
        model: &str,
        op: ChangeOp,
        id: &str,
        text: &str,
    ) -> Result<u64, StoreError> {
        let seq = self.seqs.get(model).copied().unwrap_or_default() + 1;
        self.seqs.insert(model.to_owned(), seq);
        self.conn
            .prepare_cached(
                "INSERT INTO jxp_changes (model, seq, op, doc_id, doc, actor, silent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                model,
                seq_to_db(seq),
                op.as_str(),
                id,
                text,
                tx.actor,
                tx.silent
            ])?;
        Ok(seq)
    }

    /// Writes the counters that moved in this batch, and trims the change log to the
    /// retention of each model that grew past it.
    pub(super) fn persist_seqs(&self, before: &HashMap<String, u64>) -> Result<(), StoreError> {
        for (model, seq) in &self.seqs {
            let old = before.get(model).copied().unwrap_or_default();
            if *seq == old {
                continue;
            }
            self.conn
                .prepare_cached(
                    "INSERT INTO jxp_seq (model, seq) VALUES (?1, ?2)
                     ON CONFLICT (model) DO UPDATE SET seq = excluded.seq",
                )?
                .execute(params![model, seq_to_db(*seq)])?;
            // Trim in steps so the delete runs once per many writes, not on every write.
            let step = (self.retention / 16).max(1);
            if *seq > self.retention && (old / step) != (*seq / step) {
                let keep_after = seq_to_db(*seq - self.retention);
                self.conn
                    .prepare_cached("DELETE FROM jxp_changes WHERE model = ?1 AND seq <= ?2")?
                    .execute(params![model, keep_after])?;
            }
        }
        Ok(())
    }
}

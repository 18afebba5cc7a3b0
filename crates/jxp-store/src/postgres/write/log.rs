//! The end of a batch: for each model touched (in name order, so concurrent transactions lock
//! the counters in the same order) one statement advances the counter row and inserts the
//! change rows numbered from it; the notification, the log trim and COMMIT go in the same
//! round trip. Each write's changes then get their seqs.

use std::collections::BTreeMap;
use std::sync::Arc;

use deadpool_postgres::ClientWrapper;

use super::{Answer, Context, Fault, Pending};
use crate::change::Change;
use crate::error::StoreError;
use crate::spec::WriteTx;

/// PostgreSQL refuses notification payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7000;

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
pub(super) async fn finish(
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
    ctx.published.committing(&names);
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
        let last: i64 = last?.try_get(0)?;
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
                prev: p.prev,
                actor: wtx.actor.clone(),
                silent: wtx.silent,
            }));
        }
        answers.push(Ok(mine));
    }
    Ok(answers)
}

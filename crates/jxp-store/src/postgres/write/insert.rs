//! Runs of writes that only insert, sent without waiting in between: a run of writes that
//! each insert one document goes in one statement that skips whatever meets a unique index;
//! other writes that only insert are pipelined, each in its savepoint.

use std::collections::BTreeMap;

use deadpool_postgres::ClientWrapper;

use super::apply::{Failure, map_unique};
use super::{Context, Fault, Pending, retryable, savepoint_sql};
use crate::error::StoreError;
use crate::postgres::jsonb::jsonb_text;
use crate::row::{Columns, str_field};
use crate::spec::{WriteOp, WriteTx};
use crate::tables::table_name;

/// How many writes from the start of `rest` each insert one document, with an id of its own
/// within the run, into one known model.
pub(super) fn single_insert_run(ctx: &Context<'_>, rest: &[WriteTx]) -> usize {
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
    if ctx.tables.check_model(model).is_err() {
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
pub(super) async fn insert_together(
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
    let columns: Vec<Columns<'_>> = pending.iter().map(|p| Columns::of(&p.doc)).collect();
    let owners: Vec<Option<&str>> = columns.iter().map(|c| c.owner).collect();
    let deleted: Vec<bool> = columns.iter().map(|c| c.deleted).collect();
    let created: Vec<Option<&str>> = columns.iter().map(|c| c.created).collect();
    let updated: Vec<Option<&str>> = columns.iter().map(|c| c.updated).collect();
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO {} (_id, doc, body, _owner_id, _deleted, createdAt, updatedAt)
             SELECT i, coalesce(j, d)::jsonb, d, o, x, c, u
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::text[],
                         $7::text[])
                  AS r(i, d, o, x, c, u, j)
             ON CONFLICT DO NOTHING
             RETURNING _id",
            table_name(&model)
        ))
        .await?;
    let jsonb: Vec<Option<String>> = pending.iter().map(|p| jsonb_text(&p.doc)).collect();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
        [&ids, &texts, &owners, &deleted, &created, &updated, &jsonb];
    let rows = if begun {
        tx.query(&stmt, &params).await
    } else {
        let (b, rows) = tokio::join!(tx.batch_execute("BEGIN"), tx.query(&stmt, &params));
        b?;
        rows
    }
    .map_err(Fault::Together)?;
    let inserted: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    Ok(pending
        .into_iter()
        .map(|p| inserted.contains(&p.id).then(|| vec![p]))
        .collect())
}

/// Whether a write only inserts documents (with ids) into known models.
pub(super) fn only_inserts(ctx: &Context<'_>, wtx: &WriteTx) -> bool {
    !wtx.ops.is_empty()
        && wtx.ops.iter().all(|op| match op {
            WriteOp::Insert { model, doc } => {
                ctx.tables.check_model(model).is_ok() && str_field(doc, "_id").is_some()
            }
            _ => false,
        })
}

pub(super) fn insert_sql(model: &str) -> String {
    format!(
        "INSERT INTO {} (_id, doc, body, _owner_id, _deleted, createdAt, updatedAt)
         VALUES ($1::text, coalesce($7::text, $2::text)::jsonb, $2::text, $3::text, $4::bool,
                 $5::text, $6::text)",
        table_name(model)
    )
}

/// Writes that only insert, pipelined: each write's savepoint and inserts are sent without
/// waiting for the previous write's answers. When one fails, everything sent after it failed
/// too (the transaction was aborted), so the failed write is rolled back to its savepoint
/// and the outcomes stop there; the caller sends the rest again. Answers the outcomes of the
/// writes up to and including the first failure, and whether a savepoint is left open.
pub(super) async fn insert_run(
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
                let c = Columns::of(&p.doc);
                let jsonb = jsonb_text(&p.doc);
                let result = tx
                    .execute(
                        stmt,
                        &[
                            &p.id, &p.text, &c.owner, &c.deleted, &c.created, &c.updated, &jsonb,
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

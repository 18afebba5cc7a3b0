//! One write's operations inside the batch's transaction: documents inserted, replaced and
//! removed, and guards checked (referrers found by rendering the guard's filter, under a
//! table lock). The changes they make wait in `Pending` for their seqs.

use deadpool_postgres::ClientWrapper;
use futures_util::TryStreamExt;
use jxp_query::{SqlParam, render_pg_filter};
use tokio_postgres::error::SqlState;

use super::insert::insert_sql;
use super::{Context, Pending};
use crate::change::ChangeOp;
use crate::error::StoreError;
use crate::postgres::jsonb::jsonb_text;
use crate::row::{Columns, doc_id, parse_doc};
use crate::spec::{Guard, WriteOp, WriteTx};
use crate::tables::table_name;

/// A database error (maybe worth a retry) or an answer of the store's own.
pub(super) enum Failure {
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

/// A unique violation named after the field its index is on.
pub(super) fn map_unique(ctx: &Context<'_>, model: &str, e: tokio_postgres::Error) -> Failure {
    let Some(db) = e
        .as_db_error()
        .filter(|d| *d.code() == SqlState::UNIQUE_VIOLATION)
    else {
        return Failure::Db(e);
    };
    let field = ctx
        .tables
        .unique_field(model, |name| db.constraint() == Some(name));
    Failure::Store(StoreError::Unique {
        model: model.to_owned(),
        field,
    })
}

/// The operations of one write transaction; answers its changes, seqs still to come.
pub(super) async fn apply(
    tx: &ClientWrapper,
    ctx: &Context<'_>,
    wtx: &WriteTx,
) -> Result<Vec<Pending>, Failure> {
    let mut pending = Vec::new();
    for op in &wtx.ops {
        match op {
            WriteOp::Guard(guard) => check_guard(tx, ctx, guard).await?,
            WriteOp::Insert { model, doc } => {
                ctx.tables.check_model(model)?;
                let id = doc_id(model, doc)?;
                let text = serde_json::to_string(doc).map_err(StoreError::from)?;
                let stmt = tx.prepare_cached(&insert_sql(model)).await?;
                let c = Columns::of(doc);
                let jsonb = jsonb_text(doc);
                tx.execute(
                    &stmt,
                    &[
                        &id, &text, &c.owner, &c.deleted, &c.created, &c.updated, &jsonb,
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
                    prev: None,
                });
            }
            WriteOp::Replace {
                model,
                id,
                doc,
                expect_version,
                op,
                prev,
            } => {
                ctx.tables.check_model(model)?;
                let text = serde_json::to_string(doc).map_err(StoreError::from)?;
                let stmt = tx
                    .prepare_cached(&format!(
                        "UPDATE {} SET doc = coalesce($8::text, $2::text)::jsonb, body = $2::text,
                             _owner_id = $3::text,
                             _deleted = $4::bool, createdAt = $5::text, updatedAt = $6::text
                         WHERE _id = $1::text
                           AND ($7::int8 IS NULL OR jxp_num(doc->'__v') = $7::int8)",
                        table_name(model)
                    ))
                    .await?;
                let c = Columns::of(doc);
                let n = tx
                    .execute(
                        &stmt,
                        &[
                            id,
                            &text,
                            &c.owner,
                            &c.deleted,
                            &c.created,
                            &c.updated,
                            expect_version,
                            &jsonb_text(doc),
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
                    prev: prev.clone(),
                });
            }
            WriteOp::Remove { model, id } => {
                ctx.tables.check_model(model)?;
                let stmt = tx
                    .prepare_cached(&format!(
                        "DELETE FROM {} WHERE _id = $1::text RETURNING body",
                        table_name(model)
                    ))
                    .await?;
                let Some(row) = tx.query_opt(&stmt, &[id]).await? else {
                    return Err(Failure::Store(StoreError::NotFound {
                        model: model.clone(),
                        id: id.clone(),
                    }));
                };
                let text: String = row.try_get(0)?;
                pending.push(Pending {
                    model: model.clone(),
                    op: ChangeOp::Delete,
                    id: id.clone(),
                    doc: parse_doc(&text)?,
                    text,
                    prev: None,
                });
            }
        }
    }
    Ok(pending)
}

/// Checks a guard inside the writing transaction. The tables it reads are locked against
/// writes until the transaction ends, so what it found still holds at COMMIT.
async fn check_guard(tx: &ClientWrapper, ctx: &Context<'_>, guard: &Guard) -> Result<(), Failure> {
    match guard {
        Guard::NotReferenced { model, id, by } => {
            for r in by {
                ctx.tables.check_model(&r.model)?;
                // No referrer may be written until this transaction ends.
                lock_table(tx, &r.model).await?;
                let q = r.referrer_query(render_pg_filter);
                let stmt = tx.prepare_cached(&q.sql).await?;
                let params: Vec<Option<String>> =
                    q.params.iter().map(SqlParam::to_pg_text).collect();
                let mut rows = std::pin::pin!(tx.query_raw(&stmt, params.iter()).await?);
                if rows.try_next().await?.is_some() {
                    return Err(Failure::Store(r.refusal(model, id)));
                }
            }
            Ok(())
        }
        Guard::Empty { model } => {
            ctx.tables.check_model(model)?;
            // Concurrent first writes take turns, so only one finds the table empty.
            lock_table(tx, model).await?;
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

/// Locks a model's table against writes of other transactions until this one ends.
async fn lock_table(tx: &ClientWrapper, model: &str) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        table_name(model)
    ))
    .await
}

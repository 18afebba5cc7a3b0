//! A bulk import on PostgreSQL: one transaction on a connection of its own, the documents sent
//! with `COPY … FROM STDIN` (text format) in the columns an insert of the write path fills,
//! then the change log moved on as `crate::import` says, the model's notification and COMMIT,
//! and the table vacuumed and its planner statistics refreshed (`VACUUM (ANALYZE)`).
//! Other processes keep writing meanwhile; the counter row is locked only at the end, so
//! their changes come before the import's in `seq` order, as their commits do.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::error::SqlState;

use crate::error::StoreError;
use crate::import::{ImportDoc, ImportError, ImportStep, ImportSteps, Imported, Tail};
use crate::row::{seq_from_db, seq_to_db};
use crate::tables::{Tables, table_name};

/// Bytes of rows gathered before they are sent.
const CHUNK: usize = 1 << 20;

/// The counter moved on by every imported document ($2), and the change rows of the last
/// ones ($3…, the tail), numbered so the last is the counter's new value.
const LOG_SQL: &str = "WITH b AS (
         INSERT INTO jxp_seq (model, seq) VALUES ($1::text, $2::int8)
         ON CONFLICT (model) DO UPDATE SET seq = jxp_seq.seq + excluded.seq
         RETURNING seq),
     c AS (
         INSERT INTO jxp_changes (model, seq, op, doc_id, doc, actor, silent)
         SELECT $1::text, b.seq - $5::int8 + r.k, 'create', r.i, r.d::json, NULL, false
         FROM b, unnest($3::text[], $4::text[]) WITH ORDINALITY AS r(i, d, k))
     SELECT seq FROM b";

/// Trims the model's log to the retention ($2) after the import.
const TRIM_SQL: &str = "DELETE FROM jxp_changes
     WHERE model = $1::text AND seq <= $3::int8 - $2::int8";

/// What the import needs of the store.
pub(crate) struct ImportCtx<'a> {
    pub pool: &'a deadpool_postgres::Pool,
    pub tables: &'a Tables,
    pub channel: &'a str,
    pub retention: u64,
}

/// Reads the feed to its `Commit` and writes it all in one transaction, or nothing.
pub(crate) async fn import(
    ctx: ImportCtx<'_>,
    model: &str,
    mut steps: ImportSteps,
) -> Result<Imported, ImportError> {
    ctx.tables.check_model(model)?;
    let client = ctx.pool.get().await.map_err(StoreError::from)?;
    let result = copy_and_log(&ctx, &client, model, &mut steps).await;
    if result.is_err() {
        // The connection may be in the middle of an aborted COPY: it is closed rather than
        // returned to the pool, which rolls the transaction back.
        drop(deadpool_postgres::Object::take(client));
    }
    result
}

async fn copy_and_log(
    ctx: &ImportCtx<'_>,
    client: &deadpool_postgres::Object,
    model: &str,
    steps: &mut ImportSteps,
) -> Result<Imported, ImportError> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(StoreError::from)?;
    let sink = client
        .copy_in::<_, Bytes>(&format!(
            "COPY {} (_id, doc, body, _owner_id, _deleted, createdAt, updatedAt) FROM STDIN",
            table_name(model)
        ))
        .await
        .map_err(StoreError::from)?;
    futures_util::pin_mut!(sink);
    let mut tail = Tail::new(ctx.retention);
    let mut count: u64 = 0;
    let mut buf = BytesMut::with_capacity(CHUNK + CHUNK / 4);
    loop {
        match steps.recv().await {
            Some(ImportStep::Docs(docs)) => {
                count += docs.len() as u64;
                for d in docs {
                    copy_row(&mut buf, &d);
                    tail.push(d);
                }
                if buf.len() >= CHUNK {
                    let chunk = buf.split().freeze();
                    sink.send(chunk)
                        .await
                        .map_err(|e| refusal(ctx.tables, model, e))?;
                }
            }
            Some(ImportStep::Commit) => break,
            // The sink is dropped unfinished, which aborts the COPY.
            None => return Err(ImportError::Abandoned),
        }
    }
    if !buf.is_empty() {
        sink.send(buf.split().freeze())
            .await
            .map_err(|e| refusal(ctx.tables, model, e))?;
    }
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| refusal(ctx.tables, model, e))?;
    let ids: Vec<&str> = tail.iter().map(|(id, _)| id.as_str()).collect();
    let texts: Vec<&str> = tail.iter().map(|(_, text)| text.as_str()).collect();
    let kept = i64::try_from(tail.len()).unwrap_or(i64::MAX);
    let row = client
        .query_one(LOG_SQL, &[&model, &seq_to_db(count), &ids, &texts, &kept])
        .await
        .map_err(StoreError::from)?;
    let last: i64 = row.try_get(0).map_err(StoreError::from)?;
    let retention = seq_to_db(ctx.retention.max(1));
    client
        .execute(TRIM_SQL, &[&model, &retention, &last])
        .await
        .map_err(StoreError::from)?;
    if count > 0 {
        // Every listening process reads the log rows of the import up to here.
        let payload = format!("{model}:{last}");
        client
            .execute(
                "SELECT pg_notify($1::text, $2::text)",
                &[&ctx.channel, &payload],
            )
            .await
            .map_err(StoreError::from)?;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(StoreError::from)?;
    if count > 0 {
        // The planner's statistics are refreshed at once rather than when autovacuum comes
        // round (a minute or more): planned for the table before the import, a filter on a
        // million new rows can be estimated at a handful and read the wrong way. VACUUM marks
        // the new pages all-visible, so a count on an indexed field reads its index alone
        // from the start. The import is committed whatever this answers.
        let table = table_name(model);
        if let Err(e) = client
            .batch_execute(&format!("VACUUM (ANALYZE) {table}"))
            .await
        {
            tracing::warn!(%model, error = %e, "the import is committed but VACUUM (ANALYZE) failed");
        }
    }
    Ok(Imported {
        count,
        last_seq: seq_from_db(last),
    })
}

/// A failed COPY as the import answers it: a unique violation with the document it was
/// about when PostgreSQL says which line of the COPY that was.
fn refusal(tables: &Tables, model: &str, e: tokio_postgres::Error) -> ImportError {
    let Some(db) = e.as_db_error() else {
        return StoreError::from(e).into();
    };
    let line = db.where_().and_then(copy_line);
    let error = if *db.code() == SqlState::UNIQUE_VIOLATION {
        StoreError::Unique {
            model: model.to_owned(),
            field: tables.unique_field(model, |name| db.constraint() == Some(name)),
        }
    } else {
        StoreError::from(e)
    };
    match line {
        Some(line) => ImportError::Refused {
            at: line.saturating_sub(1),
            error,
        },
        None => error.into(),
    }
}

/// The line number in PostgreSQL's context of a COPY error (`COPY m_x, line 3, column …`).
fn copy_line(context: &str) -> Option<u64> {
    let rest = &context[context.find(", line ")? + ", line ".len()..];
    let digits: &str = &rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())];
    digits.parse().ok()
}

/// One row of COPY's text format: the columns tab-separated, `\N` for NULL, `t`/`f`.
fn copy_row(buf: &mut BytesMut, d: &ImportDoc) {
    copy_text(buf, &d.id);
    buf.put_u8(b'\t');
    copy_text(buf, d.jsonb.as_deref().unwrap_or(&d.text));
    buf.put_u8(b'\t');
    copy_text(buf, &d.text);
    buf.put_u8(b'\t');
    copy_opt(buf, d.owner.as_deref());
    buf.put_u8(b'\t');
    buf.put_u8(if d.deleted { b't' } else { b'f' });
    buf.put_u8(b'\t');
    copy_opt(buf, d.created.as_deref());
    buf.put_u8(b'\t');
    copy_opt(buf, d.updated.as_deref());
    buf.put_u8(b'\n');
}

fn copy_opt(buf: &mut BytesMut, v: Option<&str>) {
    match v {
        Some(s) => copy_text(buf, s),
        None => buf.put_slice(b"\\N"),
    }
}

/// A value in COPY's text format: a backslash and the characters that end a column or a row
/// are written as backslash escapes; everything else is itself.
fn copy_text(buf: &mut BytesMut, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        buf.put_slice(&bytes[start..i]);
        buf.put_slice(escaped);
        start = i + 1;
    }
    buf.put_slice(&bytes[start..]);
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut buf = BytesMut::new();
        copy_text(&mut buf, s);
        String::from_utf8(buf.to_vec()).unwrap()
    }

    #[test]
    fn copy_text_escapes_what_ends_a_column_or_a_row() {
        assert_eq!(text(r#"{"a":"x\"y\\n"}"#), r#"{"a":"x\\"y\\\\n"}"#);
        assert_eq!(text("a\tb\nc\rd"), "a\\tb\\nc\\rd");
        assert_eq!(text("plain é"), "plain é");
        assert_eq!(text(""), "");
    }

    #[test]
    fn a_row_has_every_column_in_order() {
        let mut buf = BytesMut::new();
        let d = ImportDoc {
            id: "i1".into(),
            text: r#"{"_id":"i1","t":"a\tb"}"#.into(),
            jsonb: None,
            owner: None,
            deleted: false,
            created: Some("c".into()),
            updated: Some("u".into()),
        };
        copy_row(&mut buf, &d);
        assert_eq!(
            String::from_utf8(buf.to_vec()).unwrap(),
            "i1\t{\"_id\":\"i1\",\"t\":\"a\\\\tb\"}\t{\"_id\":\"i1\",\"t\":\"a\\\\tb\"}\t\\N\tf\tc\tu\n"
        );
    }

    #[test]
    fn the_line_of_a_copy_error_is_read_from_its_context() {
        assert_eq!(copy_line("COPY m_x, line 3"), Some(3));
        assert_eq!(copy_line("COPY m_x, line 12, column doc: \"…\""), Some(12));
        assert_eq!(copy_line("something else"), None);
    }
}

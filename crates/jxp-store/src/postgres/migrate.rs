//! Schema evolution on PostgreSQL: tables, expression indexes, unique indexes and the
//! full-text column are made to match the model files on every start, without losing data,
//! in one transaction under an advisory lock (so processes starting together take turns).
//! Every identifier comes from a `TableSpec`, whose names are checked to be plain first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jxp_model::is_ident;
use jxp_query::{
    Generated, GeneratedColumn, GeneratedKind, PG_FUNCTIONS, pg_doc_text, pg_generated_check,
    pg_generated_expr,
};
use tokio_postgres::Transaction;

use super::jsonb::jsonb_value_text;
use crate::error::StoreError;
use crate::indexes::{
    DeclaredIndex, Flavor, declared, integer_columns, is_managed, number_columns,
};
use crate::spec::TableSpec;
use crate::tables::{
    TableInfo, check_model_name, fields_key, fields_value, migration_error, new_defaults,
    table_name, text_fields_key,
};

/// The advisory lock key schema changes take (any constant; "jxp" in ASCII).
pub(super) const LOCK_KEY: i64 = 0x006a_7870;

/// The statement that creates a declared index (`if_not_exists` for start-up, which leaves
/// one already there alone); `table` is the (quoted) table it goes on. An index of a string
/// or number field is on its generated column and `_deleted`, so a filter on the field of
/// live documents (every list and count) finds them in the index alone, and a count reads no
/// row of a page the visibility map knows; the column must exist ([`add_generated`]). Any
/// other is on the expression the renderer reads the field with, in byte order, so equality
/// and ranges on strings use it.
pub(super) fn create_index_sql(
    model: &str,
    table: &str,
    index: &DeclaredIndex,
    if_not_exists: bool,
) -> Result<String, StoreError> {
    let unique = if index.unique { "UNIQUE " } else { "" };
    let guard = if if_not_exists { "IF NOT EXISTS " } else { "" };
    if let Some(g) = &index.generated {
        return Ok(format!(
            "CREATE {unique}INDEX {guard}\"{}\" ON {table} (\"{}\" NULLS FIRST, _deleted)",
            index.name, g.column
        ));
    }
    let expr = pg_doc_text(&index.path)
        .ok_or_else(|| migration_error(model)(format!("bad index path \"{}\"", index.path)))?;
    Ok(format!(
        "CREATE {unique}INDEX {guard}\"{}\" ON {table} (({expr}) COLLATE \"C\")",
        index.name
    ))
}

/// The columns of `table` (as SQL names it).
async fn columns(tx: &Transaction<'_>, table: &str) -> Result<HashSet<String>, StoreError> {
    let rows = tx
        .query(
            "SELECT attname::text FROM pg_attribute
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped",
            &[&table],
        )
        .await?;
    rows.iter()
        .map(|r| r.try_get::<_, String>(0).map_err(StoreError::from))
        .collect()
}

/// Holds each path of `wanted` to its column's kind with a check constraint named as the
/// column, where the documents already are (a check that the table breaks is not added, and
/// sorts on that path keep reading the document); drops the constraints of jxp's naming that
/// no wanted column has. Answers the columns whose constraint holds: those sort.
async fn constrain(
    tx: &Transaction<'_>,
    model: &str,
    table: &str,
    wanted: &[&GeneratedColumn],
) -> Result<HashSet<String>, StoreError> {
    let rows = tx
        .query(
            "SELECT conname::text FROM pg_constraint
             WHERE conrelid = $1::text::regclass AND contype = 'c'",
            &[&table],
        )
        .await?;
    let mut have = HashSet::new();
    for row in rows {
        have.insert(row.try_get::<_, String>(0)?);
    }
    for name in &have {
        if is_generated_name(name) && !wanted.iter().any(|g| g.column == *name) {
            tx.batch_execute(&format!("ALTER TABLE {table} DROP CONSTRAINT \"{name}\""))
                .await?;
        }
    }
    let mut holds = HashSet::new();
    // An `int8` column is held to numbers by the number column beside it.
    for g in wanted.iter().filter(|g| g.kind != GeneratedKind::Integer) {
        if have.contains(&g.column) {
            holds.insert(g.column.clone());
            continue;
        }
        let check = pg_generated_check(&g.path, g.kind)
            .filter(|_| is_generated_name(&g.column))
            .ok_or_else(|| migration_error(model)(format!("bad index path \"{}\"", g.path)))?;
        tx.batch_execute("SAVEPOINT jxp_check").await?;
        let added = tx
            .batch_execute(&format!(
                "ALTER TABLE {table} ADD CONSTRAINT \"{}\" CHECK ({check})",
                g.column
            ))
            .await;
        match added {
            Ok(()) => {
                tx.batch_execute("RELEASE SAVEPOINT jxp_check").await?;
                holds.insert(g.column.clone());
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT jxp_check").await?;
                tracing::info!(
                    %model,
                    field = %g.path,
                    "some documents hold another kind of value than the model's here: sorts on it read the documents"
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(holds)
}

/// Whether `name` is one of the generated columns jxp makes for indexed fields.
fn is_generated_name(name: &str) -> bool {
    is_ident(name) && ["gt_", "gn_", "gi_"].iter().any(|p| name.starts_with(p))
}

/// Adds the `wanted` generated columns that `table` lacks, in one statement: adding a stored
/// column writes the table anew, once however many are added. Answers whether any was added.
pub(super) async fn add_generated(
    tx: &Transaction<'_>,
    model: &str,
    table: &str,
    wanted: &[&GeneratedColumn],
) -> Result<bool, StoreError> {
    if wanted.is_empty() {
        return Ok(false);
    }
    let have = columns(tx, table).await?;
    let mut adds = Vec::new();
    for c in wanted {
        if have.contains(&c.column) {
            continue;
        }
        adds.push(format!("ADD COLUMN {}", generated_column(model, c)?));
    }
    if adds.is_empty() {
        return Ok(false);
    }
    tracing::info!(
        %model,
        columns = adds.len(),
        "adding generated columns: the table is written anew, which takes a while for a large one"
    );
    tx.batch_execute(&format!("ALTER TABLE {table} {}", adds.join(", ")))
        .await?;
    Ok(true)
}

/// A generated column's definition, as `CREATE TABLE` and `ALTER TABLE … ADD COLUMN` take it.
fn generated_column(model: &str, c: &GeneratedColumn) -> Result<String, StoreError> {
    let expr = pg_generated_expr(&c.path, c.kind)
        .filter(|_| is_generated_name(&c.column))
        .ok_or_else(|| migration_error(model)(format!("bad index path \"{}\"", c.path)))?;
    let ty = match c.kind {
        GeneratedKind::Text => "text COLLATE \"C\"",
        GeneratedKind::Number => "numeric",
        GeneratedKind::Integer => "int8",
    };
    Ok(format!(
        "\"{}\" {ty} GENERATED ALWAYS AS ({expr}) STORED",
        c.column
    ))
}

/// The scan index of a model's table: `_deleted` with the row id, `_id`, `_owner_id` and every
/// generated column included, about 90 bytes a row where the row holds the document twice.
/// A query that reads nothing else (a filter and sort on Number fields and indexed ones, a
/// count, a grouping of such fields) is answered from it by an index-only scan, without
/// reading the table; see `read::find_sql` for the lists that use it. Made again whenever
/// the generated columns change (dropping one of them drops the index with it). None for a
/// table without generated columns, nor for one whose only generated column has an index of
/// its own (the tables of tokens and API keys): that index already answers what the scan
/// index would, and every write would update both.
async fn scan_index(
    tx: &Transaction<'_>,
    model: &str,
    table: &str,
    generated: &[GeneratedColumn],
) -> Result<(), StoreError> {
    let name = scan_index_name(model);
    let key = format!("scan:{model}");
    let mut wanted = String::new();
    if has_scan_index(generated) {
        wanted.push_str("rid, _id, _owner_id");
        for g in generated {
            if !is_generated_name(&g.column) {
                return Err(migration_error(model)(format!(
                    "bad index path \"{}\"",
                    g.path
                )));
            }
            wanted.push_str(&format!(", \"{}\"", g.column));
        }
    }
    let exists = tx
        .query_one(
            "SELECT to_regclass(quote_ident($1::text)) IS NOT NULL",
            &[&name],
        )
        .await?
        .try_get::<_, bool>(0)?;
    let made = meta_get(tx, &key).await?;
    let wants_index = !wanted.is_empty();
    if exists == wants_index && made.as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    tx.batch_execute(&format!("DROP INDEX IF EXISTS \"{name}\""))
        .await?;
    if wants_index {
        tx.batch_execute(&format!(
            "CREATE INDEX \"{name}\" ON {table} (_deleted) INCLUDE ({wanted})"
        ))
        .await?;
    }
    meta_set(tx, &key, &wanted).await
}

/// Whether a table with these generated columns has a scan index ([`scan_index`]): the
/// `int8` columns beside number columns do not count.
pub(super) fn has_scan_index(generated: &[GeneratedColumn]) -> bool {
    let mut valued = generated
        .iter()
        .filter(|g| g.kind != GeneratedKind::Integer);
    match (valued.next(), valued.next()) {
        (None, _) => false,
        (Some(only), None) => !only.indexed,
        (Some(_), Some(_)) => true,
    }
}

/// The name of a model's scan index ([`scan_index`]).
fn scan_index_name(model: &str) -> String {
    format!("sc_{model}")
}

/// Creates a declared index on the model's table, answering a unique index that existing
/// documents break as the migration error that says so.
pub(super) async fn create_index(
    tx: &Transaction<'_>,
    model: &str,
    index: &DeclaredIndex,
    if_not_exists: bool,
) -> Result<(), StoreError> {
    let table = table_name(model);
    if let Some(g) = &index.generated {
        add_generated(tx, model, &table, &[g]).await?;
    }
    let sql = create_index_sql(model, &table, index, if_not_exists)?;
    tx.batch_execute(&sql).await.map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            migration_error(model)(format!(
                "cannot add a unique index on \"{}\": existing documents share a value",
                index.path
            ))
        } else {
            e.into()
        }
    })
}

/// The system tables and the renderer's functions, created if missing.
pub(crate) async fn create_system_tables(
    client: &tokio_postgres::Client,
) -> Result<(), StoreError> {
    client
        .batch_execute(&format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock({LOCK_KEY});
             CREATE TABLE IF NOT EXISTS jxp_seq (
                 model text PRIMARY KEY,
                 seq bigint NOT NULL
             );
             CREATE TABLE IF NOT EXISTS jxp_changes (
                 model text NOT NULL,
                 seq bigint NOT NULL,
                 op text NOT NULL,
                 doc_id text NOT NULL,
                 doc json NOT NULL,
                 actor text,
                 silent boolean NOT NULL DEFAULT false,
                 at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (model, seq)
             );
             CREATE TABLE IF NOT EXISTS jxp_meta (
                 key text PRIMARY KEY,
                 value text NOT NULL
             );
             {PG_FUNCTIONS}
             COMMIT;"
        ))
        .await
        .map_err(|e| {
            StoreError::Database(format!(
                "cannot create the system tables: {}",
                StoreError::from(e)
            ))
        })?;
    Ok(())
}

async fn meta_get(tx: &Transaction<'_>, key: &str) -> Result<Option<String>, StoreError> {
    let row = tx
        .query_opt("SELECT value FROM jxp_meta WHERE key = $1::text", &[&key])
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

async fn meta_set(tx: &Transaction<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO jxp_meta (key, value) VALUES ($1::text, $2::text)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )
    .await?;
    Ok(())
}

/// Converts a table whose documents are `json` (as versions before `jsonb` made them) once:
/// `doc` becomes `jsonb`, which PostgreSQL reads without parsing text, and the text each
/// document was written with moves to `body`, which reads answer (`jsonb` sorts object keys
/// and rewrites numbers). The full-text column reads `doc`, so it is dropped first and built
/// again by the caller; the expression indexes are rebuilt by the type change itself. Both
/// steps rewrite the table. Answers whether it converted anything.
async fn to_jsonb(tx: &Transaction<'_>, model: &str) -> Result<bool, StoreError> {
    let key = format!("jsonb:{model}");
    if meta_get(tx, &key).await?.is_some() {
        return Ok(false);
    }
    let table = table_name(model);
    let json = tx
        .query_opt(
            "SELECT 1 FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1::text
               AND column_name = 'doc' AND data_type = 'json'",
            &[&format!("m_{model}")],
        )
        .await?
        .is_some();
    if json {
        tx.batch_execute(&format!(
            "ALTER TABLE {table} DROP COLUMN IF EXISTS tsv;
             ALTER TABLE {table} ADD COLUMN IF NOT EXISTS body text;
             UPDATE {table} SET body = doc::text;
             ALTER TABLE {table} ALTER COLUMN body SET NOT NULL,
                 ALTER COLUMN doc TYPE jsonb USING doc::jsonb;"
        ))
        .await?;
    }
    meta_set(tx, &key, "1").await?;
    Ok(json)
}

/// Migrates every table in one transaction: all of them or none.
pub(crate) async fn migrate(
    client: &mut tokio_postgres::Client,
    specs: &[TableSpec],
) -> Result<HashMap<String, TableInfo>, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1::int8)", &[&LOCK_KEY])
        .await?;
    let mut infos = HashMap::new();
    let mut rewritten = Vec::new();
    for spec in specs {
        let (info, added) = migrate_one(&tx, spec).await?;
        if added {
            rewritten.push(spec.model.as_str());
        }
        infos.insert(spec.model.clone(), info);
    }
    tx.commit().await?;
    // A table written anew has no planner statistics for its new columns and no page marked
    // all-visible, so its counts would read every row they find in the index until autovacuum
    // came round; VACUUM (outside the transaction, as it must be) does both at once.
    for model in rewritten {
        let table = table_name(model);
        if let Err(e) = client
            .batch_execute(&format!("VACUUM (ANALYZE) {table}"))
            .await
        {
            tracing::warn!(%model, error = %e, "VACUUM (ANALYZE) after adding generated columns failed");
        }
    }
    Ok(infos)
}

/// Migrates one model's table; answers what the store knows of it, and whether generated
/// columns were added (which wrote the table anew).
async fn migrate_one(
    tx: &Transaction<'_>,
    spec: &TableSpec,
) -> Result<(TableInfo, bool), StoreError> {
    let model = spec.model.as_str();
    let fail = migration_error(model);
    check_model_name(model)?;
    let table = table_name(model);
    let existed = tx
        .query_opt(
            "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1::text",
            &[&format!("m_{model}")],
        )
        .await?
        .is_some();
    let declared = declared(spec, Flavor::Postgres);
    let numbers = number_columns(spec, &declared);
    let valued = declared
        .iter()
        .filter_map(|d| d.generated.as_ref())
        .chain(&numbers);
    let integers = integer_columns(valued.clone());
    let generated: Vec<&GeneratedColumn> = valued.chain(&integers).collect();
    // A new table has its small columns first and the documents last: PostgreSQL finds a
    // column by walking the row's columns before it, so a scan that filters, sorts or groups
    // on columns (every generated one) then never steps over the two copies of the document
    // (about 600 bytes a row). A column added later goes at the end.
    let mut first = String::new();
    let mut named = HashSet::new();
    for c in &generated {
        if named.insert(c.column.as_str()) {
            first.push_str(&generated_column(model, c)?);
            first.push_str(",\n");
        }
    }
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
             rid bigserial PRIMARY KEY,
             _deleted boolean NOT NULL DEFAULT false,
             _id text COLLATE \"C\" NOT NULL UNIQUE,
             _owner_id text COLLATE \"C\",
             createdAt text COLLATE \"C\",
             updatedAt text COLLATE \"C\",
             {first}
             doc jsonb NOT NULL,
             body text NOT NULL
         );
         CREATE INDEX IF NOT EXISTS \"sx_{model}__owner\" ON {table} (_owner_id);
         CREATE INDEX IF NOT EXISTS \"sx_{model}__created\" ON {table} (createdAt);"
    ))
    .await?;
    let converted = to_jsonb(tx, model).await?;

    // Indexes asked for by the model, after the generated columns they are on; ours that it
    // no longer asks for are dropped, and so are generated columns that neither an index nor
    // a Number field needs.
    let mut info = TableInfo::default();
    let mut wanted = HashSet::new();
    let added = add_generated(tx, model, &table, &generated).await?;
    for name in columns(tx, &table).await? {
        if is_generated_name(&name) && !generated.iter().any(|g| g.column == name) {
            tx.batch_execute(&format!("ALTER TABLE {table} DROP COLUMN \"{name}\""))
                .await?;
        }
    }
    let sorts = constrain(tx, model, &table, &generated).await?;
    if !generated.is_empty() {
        info.generated = Some(Arc::new(Generated(
            generated
                .iter()
                .map(|g| GeneratedColumn {
                    sorts: sorts.contains(&g.column),
                    indexed: declared
                        .iter()
                        .any(|d| d.generated.as_ref().is_some_and(|i| i.column == g.column)),
                    ..(*g).clone()
                })
                .collect(),
        )));
    }
    let columns = info
        .generated
        .as_deref()
        .map_or(&[][..], |g| g.0.as_slice());
    scan_index(tx, model, &table, columns).await?;
    for index in declared {
        create_index(tx, model, &index, true).await?;
        if index.unique {
            info.unique_indexes
                .insert(index.name.clone(), index.path.clone());
        }
        wanted.insert(index.name);
    }
    let existing = tx
        .query(
            "SELECT indexname::text FROM pg_indexes
             WHERE schemaname = current_schema() AND tablename = $1::text",
            &[&format!("m_{model}")],
        )
        .await?;
    for row in existing {
        let name: String = row.try_get(0)?;
        if is_managed(Flavor::Postgres, model, &name) && !wanted.contains(&name) {
            tx.batch_execute(&format!("DROP INDEX IF EXISTS \"{name}\""))
                .await?;
        }
    }

    // The full-text column is a generated tsvector with a GIN index, rebuilt whenever the set
    // of fields changes.
    let mut parts = Vec::new();
    for f in &spec.text_fields {
        let expr = pg_doc_text(f).ok_or_else(|| fail(format!("bad text index path \"{f}\"")))?;
        parts.push(format!("coalesce({expr}, '')"));
    }
    let fts_key = text_fields_key(model);
    let fts_now = spec.text_fields.join(",");
    let fts_before = meta_get(tx, &fts_key).await?.unwrap_or_default();
    if fts_now != fts_before || !existed || converted {
        tx.batch_execute(&format!("ALTER TABLE {table} DROP COLUMN IF EXISTS tsv"))
            .await?;
        if !parts.is_empty() {
            tx.batch_execute(&format!(
                "ALTER TABLE {table} ADD COLUMN tsv tsvector GENERATED ALWAYS AS
                     (to_tsvector('simple'::regconfig, {})) STORED;
                 CREATE INDEX \"tx_{model}\" ON {table} USING gin (tsv);",
                parts.join(" || ' ' || ")
            ))
            .await?;
        }
        meta_set(tx, &fts_key, &fts_now).await?;
    }
    info.text_fields = spec.text_fields.clone();

    // Fields new since the last start get their default in existing documents that lack
    // them. The document's text is extended in place, so its key order is kept.
    let fields_key = fields_key(model);
    if existed {
        let known = meta_get(tx, &fields_key).await?;
        for (field, value) in new_defaults(spec, known.as_deref()) {
            if !is_ident(field) {
                return Err(fail(format!("bad field \"{field}\"")));
            }
            let member = format!(
                "{}:{}",
                serde_json::to_string(field)?,
                serde_json::to_string(value)?
            );
            let jsonb_member = format!(
                "{}:{}",
                serde_json::to_string(field)?,
                jsonb_value_text(value)?
            );
            tx.execute(
                &format!(
                    "UPDATE {table} SET body = (CASE WHEN body = '{{}}' THEN '{{' || $1::text || '}}'
                     ELSE left(body, -1) || ',' || $1::text || '}}' END),
                     doc = doc || ('{{' || $2::text || '}}')::jsonb
                     WHERE jsonb_typeof(doc) = 'object' AND doc->'{field}' IS NULL"
                ),
                &[&member, &jsonb_member],
            )
            .await?;
        }
    }
    meta_set(tx, &fields_key, &fields_value(spec)).await?;
    // A table made just now holds nothing to vacuum.
    Ok((info, added && existed))
}

//! Schema evolution: tables, expression indexes, unique indexes and the full-text table are
//! made to match the model files on every start, without losing data. Every identifier here
//! comes from a `TableSpec`, whose names are checked to be plain identifiers first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jxp_model::is_ident;
use jxp_query::{Generated, GeneratedColumn};
use rusqlite::{Connection, OptionalExtension, params};

use super::fts_name;
use crate::error::StoreError;
use crate::indexes::{DeclaredIndex, Flavor, declared, is_managed, number_columns};
use crate::spec::TableSpec;
use crate::tables::{
    TableInfo, Tables, check_model_name, fields_key, fields_value, migration_error, new_defaults,
    table_name, text_fields_key,
};

/// The change log, its counters and the store's own settings, created if missing.
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

/// `$.a.b` for a dotted path of plain identifiers.
fn json_path(dotted: &str) -> Result<String, StoreError> {
    if dotted.split('.').all(is_ident) {
        Ok(format!("$.{dotted}"))
    } else {
        Err(StoreError::Migration {
            model: String::new(),
            reason: format!("\"{dotted}\" is not a plain field path"),
        })
    }
}

/// The statement that creates a declared index (`if_not_exists` for start-up, which leaves
/// one already there alone). Unique indexes are on the value alone; the others carry
/// `_deleted` as their second column, so that a filter on the field of live documents (every
/// list and count) is answered from the index alone, and a count never reads a row.
pub(super) fn create_index_sql(
    model: &str,
    index: &DeclaredIndex,
    if_not_exists: bool,
) -> Result<String, StoreError> {
    let path = json_path(&index.path)
        .map_err(|_| migration_error(model)(format!("bad index path \"{}\"", index.path)))?;
    let (unique, deleted) = if index.unique {
        ("UNIQUE ", "")
    } else {
        ("", ", _deleted")
    };
    let guard = if if_not_exists { "IF NOT EXISTS " } else { "" };
    Ok(format!(
        "CREATE {unique}INDEX {guard}\"{}\" ON {} (json_extract(doc, '{path}'){deleted})",
        index.name,
        table_name(model)
    ))
}

/// Creates a declared index, answering a unique index that existing documents break as the
/// migration error that says so.
pub(super) fn create_index(
    conn: &Connection,
    model: &str,
    index: &DeclaredIndex,
    if_not_exists: bool,
) -> Result<(), StoreError> {
    conn.execute_batch(&create_index_sql(model, index, if_not_exists)?)
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                migration_error(model)(format!(
                    "cannot add a unique index on \"{}\": existing documents share a value",
                    index.path
                ))
            }
            other => other.into(),
        })
}

/// `INSERT INTO fts_x (rowid, c0, …) SELECT rid, json_extract(doc, '$.f0'), … FROM m_x <where>`.
pub(crate) fn fts_insert_sql(model: &str, text_fields: &[String], where_clause: &str) -> String {
    let cols: Vec<String> = (0..text_fields.len()).map(|i| format!("c{i}")).collect();
    let exprs: Vec<String> = text_fields
        .iter()
        .map(|f| format!("coalesce(json_extract(doc, '$.{f}'), '')"))
        .collect();
    format!(
        "INSERT INTO {} (rowid, {}) SELECT rid, {} FROM {} {where_clause}",
        fts_name(model),
        cols.join(", "),
        exprs.join(", "),
        table_name(model)
    )
}

fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM jxp_meta WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO jxp_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Migrates every table in one transaction: all of them or none.
pub(crate) fn migrate(
    conn: &Connection,
    tables: &Tables,
    specs: &[TableSpec],
) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut infos = HashMap::new();
    for spec in specs {
        match migrate_one(conn, spec) {
            Ok(info) => {
                infos.insert(spec.model.clone(), info);
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    tables.extend(infos);
    Ok(())
}

/// A model table's columns: the system ones, the document, then a stored generated column per
/// Number field no index covers (`indexes::number_columns`). Such a column holds exactly what
/// `json_extract(doc, path)` answers and is declared without a type, so no affinity converts
/// what it holds: the renderer reads it wherever it would call that function on the path
/// (`jxp_query`'s SQLite dialect), and a scan that filters or sorts on the field reads a small
/// value from the row instead of looking into every document.
fn table_columns(model: &str, generated: &[GeneratedColumn]) -> Result<String, StoreError> {
    let mut columns = String::from(
        "rid INTEGER PRIMARY KEY,
         _id TEXT NOT NULL UNIQUE,
         doc BLOB NOT NULL,
         _owner_id TEXT,
         _deleted INTEGER NOT NULL DEFAULT 0,
         createdAt TEXT,
         updatedAt TEXT",
    );
    for g in generated {
        let path = json_path(&g.path)
            .ok()
            .filter(|_| is_ident(&g.column))
            .ok_or_else(|| migration_error(model)(format!("bad field path \"{}\"", g.path)))?;
        columns.push_str(&format!(
            ",\n         \"{}\" GENERATED ALWAYS AS (json_extract(doc, '{path}')) STORED",
            g.column
        ));
    }
    Ok(columns)
}

/// The name of a model's scan index: a narrow copy of what a scan of the fields with
/// generated columns reads, `(rid, _deleted, _id, json_extract(doc, '$.f'), …)`. A page whose
/// filter and sort read nothing else picks its rows' ids from it first (`read::find_sql`):
/// about 40 bytes a row, where the row holds the document.
/// - It holds the fields' expressions rather than their columns: SQLite reads an index as
///   covering only for the table's plain columns and for the expressions it is on, never for a
///   generated column (3.50), and without covering it would read every row besides.
/// - `rid` comes first, so that it is in the table's order: keyed on a field it would be that
///   field's index, which the model did not ask for, and led by `_deleted` the planner would
///   take it for any filter on live documents.
///
/// Made with the table's generated columns; a change to them makes the table again
/// ([`rebuild`]), and the index with it.
pub(crate) fn scan_index_name(model: &str) -> String {
    format!("sc_{model}")
}

/// The scan index's columns, for the table's `generated` columns.
fn scan_index_columns(model: &str, generated: &[GeneratedColumn]) -> Result<String, StoreError> {
    let mut columns = String::from("rid, _deleted, _id");
    for g in generated {
        let path = json_path(&g.path)
            .map_err(|_| migration_error(model)(format!("bad field path \"{}\"", g.path)))?;
        columns.push_str(&format!(", json_extract(doc, '{path}')"));
    }
    Ok(columns)
}

/// The stored generated columns `model`'s table has, in order.
fn stored_columns(conn: &Connection, model: &str) -> Result<Vec<String>, StoreError> {
    // `hidden` is 3 for a stored generated column.
    let names = conn
        .prepare("SELECT name FROM pragma_table_xinfo(?1) WHERE hidden = 3 ORDER BY cid")?
        .query_map([format!("m_{model}")], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(names)
}

/// Makes `model`'s table again with `columns` (SQLite adds only virtual generated columns to
/// a table): its rows are copied, row ids and all, into a new table that then takes the
/// table's name. Its indexes go with the old table; the migration makes them again after.
/// The full-text table is keyed by row id, which the copy keeps.
fn rebuild(conn: &Connection, model: &str, columns: &str) -> Result<(), StoreError> {
    let table = table_name(model);
    tracing::info!(
        %model,
        "the table's generated columns change: it is written anew, which takes a while for a large one"
    );
    let system = "rid, _id, doc, _owner_id, _deleted, createdAt, updatedAt";
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS jxp_rebuild;
         CREATE TABLE jxp_rebuild ({columns});
         INSERT INTO jxp_rebuild ({system}) SELECT {system} FROM {table};
         DROP TABLE {table};
         ALTER TABLE jxp_rebuild RENAME TO {table};"
    ))?;
    Ok(())
}

fn migrate_one(conn: &Connection, spec: &TableSpec) -> Result<TableInfo, StoreError> {
    let model = spec.model.as_str();
    let fail = migration_error(model);
    check_model_name(model)?;
    let table = table_name(model);
    let existed: bool = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [format!("m_{model}")],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    let generated = number_columns(spec, &[]);
    let columns = table_columns(model, &generated)?;
    conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {table} ({columns});"))?;
    let wanted_columns: Vec<&str> = generated.iter().map(|g| g.column.as_str()).collect();
    if existed && stored_columns(conn, model)? != wanted_columns {
        rebuild(conn, model, &columns)?;
    }
    conn.execute_batch(&format!(
        "CREATE INDEX IF NOT EXISTS \"sx_{model}__owner\" ON {table} (_owner_id);
         CREATE INDEX IF NOT EXISTS \"sx_{model}__created\" ON {table} (createdAt);"
    ))?;
    if !generated.is_empty() {
        conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS \"{}\" ON {table} ({})",
            scan_index_name(model),
            scan_index_columns(model, &generated)?
        ))?;
    }
    // Documents are stored as SQLite's binary JSON, which its JSON functions read without
    // parsing text; documents written as text by earlier versions are converted once.
    let jsonb_key = format!("jsonb:{model}");
    if meta_get(conn, &jsonb_key)?.is_none() {
        conn.execute_batch(&format!(
            "UPDATE {table} SET doc = jsonb(doc) WHERE typeof(doc) = 'text'"
        ))?;
        meta_set(conn, &jsonb_key, "1")?;
    }

    // Indexes asked for by the model; ours that it no longer asks for are dropped. (Those
    // named `ix_` held the field only, before `iy_`; they go as indexes no longer asked for.)
    let mut info = TableInfo::default();
    if !generated.is_empty() {
        info.generated = Some(Arc::new(Generated(generated)));
    }
    let mut wanted = HashSet::new();
    for index in declared(spec, Flavor::Sqlite) {
        create_index(conn, model, &index, true)?;
        if index.unique {
            info.unique_indexes
                .insert(index.name.clone(), index.path.clone());
        }
        wanted.insert(index.name);
    }
    let existing: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1")?
        .query_map([format!("m_{model}")], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for name in existing {
        if is_managed(Flavor::Sqlite, model, &name) && !wanted.contains(&name) {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS \"{name}\""))?;
        }
    }

    // The full-text table is rebuilt whenever its set of fields changes.
    for f in &spec.text_fields {
        json_path(f).map_err(|_| fail(format!("bad text index path \"{f}\"")))?;
    }
    let fts_key = text_fields_key(model);
    let fts_now = spec.text_fields.join(",");
    let fts_before = meta_get(conn, &fts_key)?.unwrap_or_default();
    if fts_now != fts_before {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", fts_name(model)))?;
        if !spec.text_fields.is_empty() {
            let cols: Vec<String> = (0..spec.text_fields.len())
                .map(|i| format!("c{i}"))
                .collect();
            conn.execute_batch(&format!(
                "CREATE VIRTUAL TABLE {} USING fts5({})",
                fts_name(model),
                cols.join(", ")
            ))?;
            conn.execute(&fts_insert_sql(model, &spec.text_fields, ""), [])?;
        }
        meta_set(conn, &fts_key, &fts_now)?;
    }
    info.text_fields = spec.text_fields.clone();

    // Fields new since the last start get their default in existing documents.
    let fields_key = fields_key(model);
    if existed {
        let known = meta_get(conn, &fields_key)?;
        for (field, value) in new_defaults(spec, known.as_deref()) {
            let path = json_path(field).map_err(|_| fail(format!("bad field \"{field}\"")))?;
            conn.execute(
                &format!(
                    "UPDATE {table} SET doc = jsonb_set(doc, '{path}', json(?1)) WHERE json_type(doc, '{path}') IS NULL"
                ),
                [serde_json::to_string(value)?],
            )?;
        }
    }
    meta_set(conn, &fields_key, &fields_value(spec))?;
    Ok(info)
}

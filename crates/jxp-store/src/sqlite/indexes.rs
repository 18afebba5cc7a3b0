//! `jxp indexes` on SQLite: the declared indexes compared with those in the file, read on a
//! read-only connection (so a server may be running), and the sync, which takes the store's
//! lock like any open store (a running server already made its indexes when it started).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::lock::StoreLock;
use super::migrate::{create_index, create_index_sql};
use crate::error::StoreError;
use crate::indexes::{Flavor, IndexReport, IndexSync, compare, declared, in_model_order, squeeze};
use crate::spec::TableSpec;

fn open(db: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    // Without SQLITE_OPEN_CREATE a missing file is an error, not a new empty store.
    if !db.exists() {
        return Err(StoreError::Database(format!(
            "no database at {}: start a server on it first, which creates it",
            db.display()
        )));
    }
    let conn = Connection::open_with_flags(db, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// Compares the indexes `specs` declare with those in the SQLite file `db`.
pub fn sqlite_index_report(db: &Path, specs: &[TableSpec]) -> Result<IndexReport, StoreError> {
    let conn = open(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.execute_batch("BEGIN")?;
    let report = report_on(&conn, specs);
    let _ = conn.execute_batch("ROLLBACK");
    report
}

fn report_on(conn: &Connection, specs: &[TableSpec]) -> Result<IndexReport, StoreError> {
    let mut report = IndexReport::default();
    for spec in in_model_order(specs)? {
        let model = spec.model.as_str();
        let table = format!("m_{model}");
        let exists = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [&table],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        let wanted = declared(spec, Flavor::Sqlite)
            .into_iter()
            .map(|d| {
                let sql = create_index_sql(model, &d, false)?;
                Ok((d, sql))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Indexes SQLite makes itself (the primary key's, `_id`'s) have no statement.
        let found: Vec<(String, String)> = conn
            .prepare(
                "SELECT name, sql FROM sqlite_master
                 WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL ORDER BY name",
            )?
            .query_map([&table], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        report.models.push(compare(
            Flavor::Sqlite,
            model,
            exists,
            wanted,
            &found,
            squeeze,
        ));
    }
    Ok(report)
}

/// Creates the missing indexes of `specs` in `db`, makes the different ones again as
/// declared, and drops the extra ones when `drop_extra`; all in one transaction. Refused while
/// a server has the store open.
pub fn sqlite_sync_indexes(
    db: &Path,
    specs: &[TableSpec],
    drop_extra: bool,
) -> Result<IndexSync, StoreError> {
    let conn = open(db, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let _lock = StoreLock::acquire(db)?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match apply(&conn, specs, drop_extra) {
        Ok(mut sync) => {
            conn.execute_batch("COMMIT")?;
            sync.after = report_on(&conn, specs)?;
            Ok(sync)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn apply(
    conn: &Connection,
    specs: &[TableSpec],
    drop_extra: bool,
) -> Result<IndexSync, StoreError> {
    let mut sync = IndexSync::default();
    for m in report_on(conn, specs)?.models {
        if !m.table_exists {
            sync.no_table.push(m.model);
            continue;
        }
        for index in &m.missing {
            create_index(conn, &m.model, index, false)?;
            sync.created.push(format!("{}/{}", m.model, index.name));
        }
        for d in &m.different {
            conn.execute_batch(&format!("DROP INDEX \"{}\"", d.declared.name))?;
            create_index(conn, &m.model, &d.declared, false)?;
            sync.recreated
                .push(format!("{}/{}", m.model, d.declared.name));
        }
        for extra in &m.extra {
            let named = format!("{}/{}", m.model, extra.name);
            if drop_extra {
                conn.execute_batch(&format!("DROP INDEX \"{}\"", extra.name))?;
                sync.dropped.push(named);
            } else {
                sync.kept.push(named);
            }
        }
    }
    Ok(sync)
}

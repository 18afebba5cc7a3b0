//! `jxp indexes`: the indexes the models declare compared with those in the database
//! `DATABASE_URL` names (missing, extra and different, per model), as a table or JSON, and the
//! sync that creates the missing ones, makes the different ones again and, only when
//! confirmed, drops the extra ones. The comparison itself is the store's, from the same
//! definition of a model's indexes its start-up migration creates.

use jxp_store::{IndexReport, IndexSync, ModelIndexes};
use serde_json::{Value, json};

use crate::{Config, Database, Error};

/// The word `--confirm` must carry before a sync drops extra indexes, as JXP's.
pub const DROP_CONFIRMATION: &str = "DROP_EXTRA_INDEXES";

fn specs(config: &Config) -> Result<Vec<jxp_store::TableSpec>, Error> {
    let schema = jxp_model::load_dir(&config.model_dir).map_err(Error::Models)?;
    Ok(jxp_core::table_specs(&schema))
}

/// Compares the models' declared indexes with the database's; changes nothing, and on
/// SQLite reads while a server may be running.
pub async fn index_report(config: &Config) -> Result<IndexReport, Error> {
    let specs = specs(config)?;
    match &config.database {
        Database::Sqlite(db) => jxp_store::sqlite_index_report(db, &specs).map_err(Error::Indexes),
        #[cfg(feature = "postgres")]
        Database::Postgres(url) => jxp_store::postgres_index_report(url, &specs)
            .await
            .map_err(Error::Indexes),
        #[cfg(not(feature = "postgres"))]
        Database::Postgres(_) => Err(Error::NoPostgres),
    }
}

/// Brings the database's indexes in line with the models: creates the missing, makes the
/// different again, and drops the extra only when `drop_extra`. On SQLite it is refused
/// while a server runs on the file (which made its indexes when it started).
pub async fn sync_indexes(config: &Config, drop_extra: bool) -> Result<IndexSync, Error> {
    let specs = specs(config)?;
    match &config.database {
        Database::Sqlite(db) => {
            jxp_store::sqlite_sync_indexes(db, &specs, drop_extra).map_err(Error::Indexes)
        }
        #[cfg(feature = "postgres")]
        Database::Postgres(url) => jxp_store::postgres_sync_indexes(url, &specs, drop_extra)
            .await
            .map_err(Error::Indexes),
        #[cfg(not(feature = "postgres"))]
        Database::Postgres(_) => Err(Error::NoPostgres),
    }
}

fn model_json(m: &ModelIndexes) -> Value {
    let declared = |d: &jxp_store::DeclaredIndex| json!({ "name": d.name, "field": d.path, "unique": d.unique });
    json!({
        "model": m.model,
        "table": m.table_exists,
        "ok": m.in_sync(),
        "present": m.present.iter().map(declared).collect::<Vec<_>>(),
        "missing": m.missing.iter().map(declared).collect::<Vec<_>>(),
        "different": m.different.iter().map(|d| json!({
            "name": d.declared.name,
            "field": d.declared.path,
            "unique": d.declared.unique,
            "expected": d.expected,
            "found": d.found,
        })).collect::<Vec<_>>(),
        "extra": m.extra.iter().map(|e| json!({ "name": e.name, "definition": e.definition }))
            .collect::<Vec<_>>(),
    })
}

/// The report as JSON: `{"ok", "models": [{"model", "table", "ok", "present", "missing",
/// "different", "extra"}]}`.
pub fn report_json(report: &IndexReport) -> Value {
    json!({
        "ok": report.in_sync(),
        "models": report.models.iter().map(model_json).collect::<Vec<_>>(),
    })
}

/// What a sync did, and the report afterwards, as JSON.
pub fn sync_json(sync: &IndexSync) -> Value {
    json!({
        "created": sync.created,
        "recreated": sync.recreated,
        "dropped": sync.dropped,
        "kept": sync.kept,
        "no_table": sync.no_table,
        "after": report_json(&sync.after),
    })
}

/// The report as a plain table: one line per model, then one per index that is not as
/// declared.
pub fn report_table(report: &IndexReport) -> String {
    let width = report
        .models
        .iter()
        .map(|m| m.model.len())
        .max()
        .unwrap_or(0)
        .max("model".len());
    let mut out = format!(
        "{:<width$}  {:>8}  {:>7}  {:>9}  {:>5}\n",
        "model", "declared", "missing", "different", "extra"
    );
    let mut details = String::new();
    for m in &report.models {
        let declared = m.present.len() + m.missing.len() + m.different.len();
        let note = if m.table_exists {
            ""
        } else {
            "  (no table yet: a server creates it when it starts)"
        };
        out.push_str(&format!(
            "{:<width$}  {declared:>8}  {:>7}  {:>9}  {:>5}{note}\n",
            m.model,
            m.missing.len(),
            m.different.len(),
            m.extra.len()
        ));
        for d in &m.missing {
            let kind = if d.unique { "unique index" } else { "index" };
            details.push_str(&format!(
                "missing    {}/{} ({kind} on {})\n",
                m.model, d.name, d.path
            ));
        }
        for d in &m.different {
            details.push_str(&format!(
                "different  {}/{}\n  declared: {}\n  found:    {}\n",
                m.model, d.declared.name, d.expected, d.found
            ));
        }
        for e in &m.extra {
            details.push_str(&format!("extra      {}/{}\n", m.model, e.name));
        }
    }
    if !details.is_empty() {
        out.push('\n');
        out.push_str(&details);
    }
    let to_make = report
        .models
        .iter()
        .any(|m| !m.missing.is_empty() || !m.different.is_empty());
    let to_drop = report.models.iter().any(|m| !m.extra.is_empty());
    if !to_make && !to_drop {
        out.push_str("\nevery model's indexes are as declared\n");
    }
    if to_make {
        out.push_str(
            "\n`jxp indexes --sync` creates the missing indexes and makes the different ones again\n",
        );
    }
    if to_drop {
        out.push_str(&format!(
            "\n`jxp indexes --sync --confirm {DROP_CONFIRMATION}` drops the extra ones\n"
        ));
    }
    out
}

/// What a sync did, as lines, followed by the report afterwards.
pub fn sync_table(sync: &IndexSync) -> String {
    let mut out = String::new();
    for (what, names) in [
        ("created", &sync.created),
        ("recreated", &sync.recreated),
        ("dropped", &sync.dropped),
    ] {
        for name in names {
            out.push_str(&format!("{what} {name}\n"));
        }
    }
    for name in &sync.kept {
        out.push_str(&format!(
            "kept {name} (extra: pass --confirm {DROP_CONFIRMATION} to drop it)\n"
        ));
    }
    for model in &sync.no_table {
        out.push_str(&format!(
            "skipped {model}: no table yet (a server creates it, with its indexes, when it starts)\n"
        ));
    }
    if out.is_empty() {
        out.push_str("nothing to do\n");
    }
    out.push('\n');
    out.push_str(&report_table(&sync.after));
    out
}

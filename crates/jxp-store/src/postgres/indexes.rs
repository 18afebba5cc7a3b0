//! `jxp indexes` on PostgreSQL: the declared indexes compared with the schema's, on a
//! connection of its own (opening the store would migrate, which syncs them). PostgreSQL
//! writes an index's definition in its own words, so the definition each declared index
//! should have is learnt the same way: by creating it on an empty temporary table, inside
//! the transaction, which is then rolled back. The sync runs under the migrations' advisory
//! lock, so it takes turns with servers starting.

use tokio_postgres::Transaction;

use super::migrate::{LOCK_KEY, add_generated, create_index, create_index_sql};
use super::tls;
use crate::error::StoreError;
use crate::indexes::{Flavor, IndexReport, IndexSync, compare, declared, in_model_order, squeeze};
use crate::spec::TableSpec;

/// The temporary table the expected definitions are learnt on.
const PROBE: &str = "jxp_index_probe";

/// What of a definition is compared: uniqueness and everything from `USING` on (the method,
/// the expression, its collation); the name and the table differ by construction.
fn shape(def: &str) -> String {
    let def = squeeze(def);
    let unique = def.starts_with("CREATE UNIQUE ");
    let using = def.split_once(" USING ").map_or(def.as_str(), |(_, r)| r);
    format!("{}USING {using}", if unique { "UNIQUE " } else { "" })
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let (mut config, tls) = tls::connect_config(url)?;
    super::session_settings(&mut config);
    let (client, conn) = config.connect(tls).await?;
    // The driver ends when the client is dropped.
    tokio::spawn(conn);
    Ok(client)
}

/// Compares the indexes `specs` declare with those of the schema the URL `url` works in.
pub async fn postgres_index_report(
    url: &str,
    specs: &[TableSpec],
) -> Result<IndexReport, StoreError> {
    let mut client = connect(url).await?;
    let tx = client.transaction().await?;
    let report = report_in(&tx, specs).await;
    tx.rollback().await?;
    report
}

async fn report_in(tx: &Transaction<'_>, specs: &[TableSpec]) -> Result<IndexReport, StoreError> {
    let mut report = IndexReport::default();
    for spec in in_model_order(specs)? {
        let model = spec.model.as_str();
        let table = format!("m_{model}");
        let exists = tx
            .query_opt(
                "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1::text",
                &[&table],
            )
            .await?
            .is_some();
        let declared = declared(spec, Flavor::Postgres);
        let mut found = Vec::new();
        let mut expected = Vec::new();
        if exists {
            for row in tx
                .query(
                    "SELECT indexname::text, indexdef FROM pg_indexes
                     WHERE schemaname = current_schema() AND tablename = $1::text
                     ORDER BY indexname",
                    &[&table],
                )
                .await?
            {
                found.push((row.try_get::<_, String>(0)?, row.try_get::<_, String>(1)?));
            }
            expected = expected_definitions(tx, model, &declared).await?;
        }
        let wanted = declared
            .into_iter()
            .map(|d| {
                let def = expected
                    .iter()
                    .find(|(name, _)| *name == d.name)
                    .map(|(_, def)| def.clone())
                    .unwrap_or_default();
                (d, def)
            })
            .collect();
        report.models.push(compare(
            Flavor::Postgres,
            model,
            exists,
            wanted,
            &found,
            shape,
        ));
    }
    Ok(report)
}

/// The definitions PostgreSQL gives the declared indexes of `model`, learnt on an empty
/// temporary table with the model table's columns.
async fn expected_definitions(
    tx: &Transaction<'_>,
    model: &str,
    declared: &[crate::indexes::DeclaredIndex],
) -> Result<Vec<(String, String)>, StoreError> {
    if declared.is_empty() {
        return Ok(Vec::new());
    }
    tx.batch_execute(&format!(
        "DROP TABLE IF EXISTS pg_temp.{PROBE};
         CREATE TEMPORARY TABLE {PROBE} (LIKE \"m_{model}\")"
    ))
    .await?;
    let probe = format!("pg_temp.{PROBE}");
    let generated: Vec<_> = declared
        .iter()
        .filter_map(|d| d.generated.as_ref())
        .collect();
    add_generated(tx, model, &probe, &generated).await?;
    for index in declared {
        tx.batch_execute(&create_index_sql(model, &probe, index, false)?)
            .await?;
    }
    let rows = tx
        .query(
            &format!(
                "SELECT c.relname::text, pg_get_indexdef(c.oid) FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indexrelid
                 WHERE i.indrelid = 'pg_temp.{PROBE}'::regclass"
            ),
            &[],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push((row.try_get(0)?, row.try_get(1)?));
    }
    tx.batch_execute(&format!("DROP TABLE pg_temp.{PROBE}"))
        .await?;
    Ok(out)
}

/// Creates the missing indexes of `specs`, makes the different ones again as declared, and
/// drops the extra ones when `drop_extra`; all in one transaction.
pub async fn postgres_sync_indexes(
    url: &str,
    specs: &[TableSpec],
    drop_extra: bool,
) -> Result<IndexSync, StoreError> {
    let mut client = connect(url).await?;
    let tx = client.transaction().await?;
    tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({LOCK_KEY})"))
        .await?;
    let mut sync = IndexSync::default();
    for m in report_in(&tx, specs).await?.models {
        if !m.table_exists {
            sync.no_table.push(m.model);
            continue;
        }
        for index in &m.missing {
            create_index(&tx, &m.model, index, false).await?;
            sync.created.push(format!("{}/{}", m.model, index.name));
        }
        for d in &m.different {
            tx.batch_execute(&format!("DROP INDEX \"{}\"", d.declared.name))
                .await?;
            create_index(&tx, &m.model, &d.declared, false).await?;
            sync.recreated
                .push(format!("{}/{}", m.model, d.declared.name));
        }
        for extra in &m.extra {
            let named = format!("{}/{}", m.model, extra.name);
            if drop_extra {
                tx.batch_execute(&format!("DROP INDEX \"{}\"", extra.name))
                    .await?;
                sync.dropped.push(named);
            } else {
                sync.kept.push(named);
            }
        }
    }
    tx.commit().await?;
    sync.after = postgres_index_report(url, specs).await?;
    Ok(sync)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_compare_by_uniqueness_and_what_follows_using() {
        let a = "CREATE UNIQUE INDEX ux_t__a ON public.m_t USING btree (((doc ->> 'a'::text)) COLLATE \"C\")";
        let b = "CREATE UNIQUE INDEX ux_t__a ON pg_temp_3.jxp_index_probe USING btree (((doc ->> 'a'::text)) COLLATE \"C\")";
        assert_eq!(shape(a), shape(b));
        assert_ne!(shape(a), shape(&a.replace("UNIQUE ", "")));
        assert_ne!(shape(a), shape(&a.replace("'a'", "'b'")));
    }
}

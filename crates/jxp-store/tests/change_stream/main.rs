//! The store contract, driven directly, on SQLite and (when `JXP_TEST_DATABASE_URL` names a
//! server) on PostgreSQL, each test in a fresh schema there: every committed write appends
//! exactly one change per operation and publishes it in commit order; a failed transaction
//! writes and publishes nothing; seq survives a restart; migrations evolve tables without
//! losing data.
//!
//! This file holds the models and helpers every test shares; the tests live in `writes`
//! (what one write stores and publishes), `concurrency` (writes racing each other),
//! `persistence` (what survives a restart, a migration or an upgrade) and `imports` (bulk
//! imports, all or nothing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail the test loudly; that is their job.

mod concurrency;
mod imports;
mod persistence;
mod writes;

use jxp_query::GeneratedKind;
use std::sync::Arc;
use std::time::Duration;

use jxp_store::{
    Change, Document, IndexSpec, SqliteOptions, SqliteStore, Store, TableSpec, WriteOp, WriteTx,
};
#[cfg(feature = "postgres")]
use jxp_store::{PostgresOptions, PostgresStore, postgres_schema_url};
use serde_json::json;
use tokio::sync::broadcast;

fn spec() -> Vec<TableSpec> {
    vec![
        TableSpec {
            model: "test".into(),
            indexes: vec![
                IndexSpec {
                    path: "bar".into(),
                    unique: true,
                    kind: Some(GeneratedKind::Text),
                },
                IndexSpec {
                    path: "n".into(),
                    unique: false,
                    kind: Some(GeneratedKind::Number),
                },
            ],
            text_fields: vec!["fulltext".into()],
            defaults: vec![],
            fields: vec![
                "foo".into(),
                "bar".into(),
                "n".into(),
                "fulltext".into(),
                "link_id".into(),
            ],
            numbers: vec![],
        },
        TableSpec {
            model: "link".into(),
            fields: vec!["name".into()],
            ..TableSpec::default()
        },
    ]
}

fn doc(id: &str, bar: &str, n: i64) -> Document {
    json!({"_id": id, "foo": "f", "bar": bar, "n": n, "_deleted": false, "__v": 0,
           "createdAt": "2020-01-01T00:00:00.000Z", "updatedAt": "2020-01-01T00:00:00.000Z",
           "fulltext": "In Xanadu did Kubla Khan"})
    .as_object()
    .cloned()
    .unwrap()
}

fn id(i: u32) -> String {
    format!("{i:024x}")
}

/// A test's database: a SQLite file in a temporary directory, or a fresh schema on the
/// PostgreSQL server `JXP_TEST_DATABASE_URL` names (in a build with the `postgres` feature;
/// without it, the tests run on SQLite whatever the variable says).
struct Db {
    dir: tempfile::TempDir,
    #[cfg(feature = "postgres")]
    pg_url: Option<String>,
}

impl Db {
    async fn new() -> Db {
        let dir = tempfile::tempdir().unwrap();
        Db {
            #[cfg(feature = "postgres")]
            pg_url: Db::pg_url(&dir).await,
            dir,
        }
    }

    #[cfg(feature = "postgres")]
    async fn pg_url(dir: &tempfile::TempDir) -> Option<String> {
        match std::env::var("JXP_TEST_DATABASE_URL") {
            Ok(base) => {
                let name = dir
                    .path()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_lowercase()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
                Some(
                    postgres_schema_url(&base, &format!("store_{name}"))
                        .await
                        .unwrap(),
                )
            }
            Err(_) => None,
        }
    }

    /// Opens the store without migrating.
    async fn connect(&self) -> Arc<dyn Store> {
        #[cfg(feature = "postgres")]
        if let Some(url) = &self.pg_url {
            return Arc::new(
                PostgresStore::connect(PostgresOptions::new(url.clone()))
                    .await
                    .unwrap(),
            );
        }
        Arc::new(SqliteStore::open(SqliteOptions::new(self.dir.path().join("jxp.db"))).unwrap())
    }

    /// Opens the store on the test's models.
    async fn open(&self) -> Arc<dyn Store> {
        let store = self.connect().await;
        store.migrate(&spec()).await.unwrap();
        store
    }
}

fn insert(model: &str, d: Document) -> WriteTx {
    WriteTx {
        ops: vec![WriteOp::Insert {
            model: model.into(),
            doc: d,
        }],
        actor: Some("u1".into()),
        silent: false,
    }
}

async fn next(rx: &mut broadcast::Receiver<Arc<Change>>) -> Arc<Change> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

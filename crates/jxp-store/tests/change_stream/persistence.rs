//! What the store keeps across restarts: data and seq, migrations that evolve tables
//! without losing data, the full-text index following writes, and the upgrade of SQLite's
//! earlier storage format.

use jxp_query::{Filter, Find, GeneratedKind, Op, Path};
use jxp_store::{IndexSpec, SqliteOptions, SqliteStore, Store, StoreError, WriteOp, WriteTx};
use serde_json::json;

use crate::{Db, doc, id, insert, spec};

#[tokio::test]
async fn data_and_seq_survive_restart_and_migrations_keep_data() {
    let db = Db::new().await;
    {
        let store = db.open().await;
        store
            .write(insert("test", doc(&id(1), "a", 1)))
            .await
            .unwrap();
        store
            .write(insert("test", doc(&id(2), "b", 2)))
            .await
            .unwrap();
    }
    // Reopen with an evolved model: a new field with a default and a new index.
    let store = db.connect().await;
    let mut evolved = spec();
    evolved[0].fields.push("colour".into());
    evolved[0].defaults.push(("colour".into(), json!("blue")));
    evolved[0].indexes.push(IndexSpec {
        path: "colour".into(),
        unique: false,
        kind: Some(GeneratedKind::Text),
    });
    store.migrate(&evolved).await.unwrap();
    let got = store.get("test", &id(2)).await.unwrap().unwrap();
    assert_eq!(got["bar"], "b");
    assert_eq!(got["colour"], "blue");
    let changes = store
        .write(insert("test", doc(&id(3), "c", 3)))
        .await
        .unwrap();
    assert_eq!(changes[0].seq, 3, "seq continues after restart");

    let find = Find {
        filter: Filter::cond(Path::plain("colour"), Op::Eq, json!("blue")),
        ..Find::default()
    };
    assert_eq!(store.find("test", &find).await.unwrap().len(), 2);

    // A unique index that existing data violates stops the migration and changes nothing.
    store
        .write(insert("test", doc(&id(4), "d", 3)))
        .await
        .unwrap();
    let mut clash = evolved.clone();
    clash[0].indexes.push(IndexSpec {
        path: "n".into(),
        unique: true,
        kind: Some(GeneratedKind::Number),
    });
    let err = store.migrate(&clash).await.unwrap_err();
    assert!(matches!(err, StoreError::Migration { .. }), "{err:?}");
    assert_eq!(store.count("test", &Filter::All).await.unwrap(), 4);
}

#[tokio::test]
async fn full_text_index_follows_writes() {
    let db = Db::new().await;
    let store = db.open().await;
    store
        .write(insert("test", doc(&id(1), "a", 1)))
        .await
        .unwrap();
    let mut other = doc(&id(2), "b", 2);
    other.insert("fulltext".into(), json!("Something else entirely"));
    store.write(insert("test", other)).await.unwrap();
    let hits = |q: &'static str| {
        let store = store.clone();
        async move {
            let find = Find {
                text: Some(q.into()),
                ..Find::default()
            };
            let found = store.find("test", &find).await.unwrap();
            assert!(found.iter().all(|d| d["score"].as_f64().unwrap() > 0.0));
            assert_eq!(
                store.count_find("test", &find).await.unwrap(),
                found.len() as u64
            );
            found.len()
        }
    };
    assert_eq!(hits("xanadu").await, 1);
    assert_eq!(hits("XANADU kubla").await, 1);
    store
        .write(WriteTx {
            ops: vec![WriteOp::Remove {
                model: "test".into(),
                id: id(1),
            }],
            ..WriteTx::default()
        })
        .await
        .unwrap();
    assert_eq!(hits("xanadu").await, 0);
    assert_eq!(hits("entirely").await, 1);
}

/// A SQLite store in `dir`, for the tests of SQLite's own storage format.
async fn open_sqlite(dir: &tempfile::TempDir) -> SqliteStore {
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("jxp.db"))).unwrap();
    store.migrate(&spec()).await.unwrap();
    store
}

/// SQLite only: the upgrade of SQLite's earlier storage format.
#[tokio::test]
async fn documents_and_indexes_of_an_earlier_version_are_upgraded_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jxp.db");
    {
        let store = open_sqlite(&dir).await;
        for i in 1..=3 {
            store
                .write(insert("test", doc(&id(i), &format!("b{i}"), i64::from(i))))
                .await
                .unwrap();
        }
    }
    // As an earlier version left it: text documents and a field-only index.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "UPDATE m_test SET doc = json(doc);
             DELETE FROM jxp_meta WHERE key = 'jsonb:test';
             DROP INDEX iy_test__n;
             CREATE INDEX ix_test__n ON m_test (json_extract(doc, '$.n'));",
        )
        .unwrap();
        let texts: i64 = conn
            .query_row(
                "SELECT count(*) FROM m_test WHERE typeof(doc) = 'text'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(texts, 3);
    }
    let store = open_sqlite(&dir).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let kinds: Vec<String> = conn
        .prepare("SELECT DISTINCT typeof(doc) FROM m_test")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, ["blob"], "every document is binary JSON now");
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%test__n'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes, ["iy_test__n"], "the old index is replaced");
    let got = store.get("test", &id(2)).await.unwrap().unwrap();
    assert_eq!(
        (got["bar"].clone(), got["n"].clone()),
        (json!("b2"), json!(2))
    );
    let find = Find {
        filter: Filter::cond(Path::plain("n"), Op::Gte, json!(2)),
        ..Find::default()
    };
    assert_eq!(store.find("test", &find).await.unwrap().len(), 2);
}

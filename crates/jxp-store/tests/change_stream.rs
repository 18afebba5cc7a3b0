//! The store contract, driven directly, on SQLite and (when `JXP_TEST_DATABASE_URL` names a
//! server) on PostgreSQL, each test in a fresh schema there: every committed write appends
//! exactly one change per operation and publishes it in commit order; a failed transaction
//! writes and publishes nothing; seq survives a restart; migrations evolve tables without
//! losing data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail the test loudly; that is their job.

use std::sync::Arc;
use std::time::Duration;

use jxp_query::{Filter, Find, Op, Path};
use jxp_store::{
    Change, ChangeOp, Document, Guard, IndexSpec, RefSpec, SqliteOptions, SqliteStore, Store,
    StoreError, TableSpec, WriteOp, WriteTx,
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
                },
                IndexSpec {
                    path: "n".into(),
                    unique: false,
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

/// Eight tasks write thirty transactions each at once, `make(task, step, n)` making each with
/// a distinct `n`; answers every `(task, step, n, outcome)`.
async fn write_concurrently(
    store: &Arc<dyn Store>,
    make: impl Fn(u32, u32, u32) -> WriteTx + Clone + Send + 'static,
) -> Vec<(u32, u32, u32, Result<Vec<Arc<Change>>, StoreError>)> {
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let (store, make) = (store.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..30u32 {
                let n = 100 + t * 1000 + i;
                outcomes.push((t, i, n, store.write(make(t, i, n)).await));
            }
            outcomes
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

async fn next(rx: &mut broadcast::Receiver<Arc<Change>>) -> Arc<Change> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn each_operation_yields_one_change_in_order() {
    let db = Db::new().await;
    let store = db.open().await;
    let mut rx = store.subscribe();

    let changes = store
        .write(insert("test", doc(&id(1), "a", 1)))
        .await
        .unwrap();
    assert_eq!(changes.len(), 1);
    let mut updated = doc(&id(1), "a", 2);
    updated.insert("__v".into(), json!(1));
    store
        .write(WriteTx {
            ops: vec![WriteOp::Replace {
                model: "test".into(),
                id: id(1),
                doc: updated,
                expect_version: Some(0),
                op: ChangeOp::Update,
            }],
            ..WriteTx::default()
        })
        .await
        .unwrap();
    store
        .write(WriteTx {
            ops: vec![WriteOp::Remove {
                model: "test".into(),
                id: id(1),
            }],
            silent: true,
            ..WriteTx::default()
        })
        .await
        .unwrap();

    let got: Vec<(u64, ChangeOp, i64, bool)> = [
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ]
    .iter()
    .map(|c| (c.seq, c.op, c.doc["n"].as_i64().unwrap(), c.silent))
    .collect();
    assert_eq!(
        got,
        vec![
            (1, ChangeOp::Create, 1, false),
            (2, ChangeOp::Update, 2, false),
            (3, ChangeOp::Delete, 2, true)
        ]
    );
    assert!(rx.try_recv().is_err(), "no extra change");
    assert_eq!(store.get("test", &id(1)).await.unwrap(), None);

    let logged = store.changes_since("test", 0, 100).await.unwrap();
    assert_eq!(
        logged.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(logged[0].actor.as_deref(), Some("u1"));
    assert_eq!(store.last_seq("test").await.unwrap(), 3);
    assert_eq!(store.last_seq("link").await.unwrap(), 0);
}

#[tokio::test]
async fn failed_transactions_write_and_publish_nothing() {
    let db = Db::new().await;
    let store = db.open().await;
    store
        .write(insert("test", doc(&id(1), "dup", 1)))
        .await
        .unwrap();
    let mut rx = store.subscribe();

    // Second op violates the unique index: the first op of the same transaction rolls back too.
    let err = store
        .write(WriteTx {
            ops: vec![
                WriteOp::Insert {
                    model: "link".into(),
                    doc: json!({"_id": id(9), "name": "x"})
                        .as_object()
                        .cloned()
                        .unwrap(),
                },
                WriteOp::Insert {
                    model: "test".into(),
                    doc: doc(&id(2), "dup", 2),
                },
            ],
            ..WriteTx::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Unique {
            model: "test".into(),
            field: "bar".into()
        }
    );
    assert_eq!(store.get("link", &id(9)).await.unwrap(), None);

    // A stale version is refused.
    let err = store
        .write(WriteTx {
            ops: vec![WriteOp::Replace {
                model: "test".into(),
                id: id(1),
                doc: doc(&id(1), "dup", 5),
                expect_version: Some(7),
                op: ChangeOp::Update,
            }],
            ..WriteTx::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict { .. }), "{err:?}");

    // A guard on referrers.
    store
        .write(insert(
            "link",
            json!({"_id": id(3), "name": "l"})
                .as_object()
                .cloned()
                .unwrap(),
        ))
        .await
        .unwrap();
    let mut referrer = doc(&id(4), "b4", 4);
    referrer.insert("link_id".into(), json!(id(3)));
    store.write(insert("test", referrer)).await.unwrap();
    let err = store
        .write(WriteTx {
            ops: vec![
                WriteOp::Guard(Guard::NotReferenced {
                    model: "link".into(),
                    id: id(3),
                    by: vec![RefSpec {
                        model: "test".into(),
                        path: "link_id".into(),
                        filter: Filter::cond(Path::plain("link_id"), Op::Eq, json!(id(3)))
                            .and(Filter::live()),
                    }],
                }),
                WriteOp::Remove {
                    model: "link".into(),
                    id: id(3),
                },
            ],
            ..WriteTx::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Referenced { .. }), "{err:?}");
    assert!(store.get("link", &id(3)).await.unwrap().is_some());

    // Only the two successful inserts were published; the failures consumed no seq.
    let a = next(&mut rx).await;
    let b = next(&mut rx).await;
    assert_eq!(
        (a.model.as_str(), a.seq, b.model.as_str(), b.seq),
        ("link", 1, "test", 2)
    );
    assert!(rx.try_recv().is_err());
    assert_eq!(store.count("test", &Filter::All).await.unwrap(), 2);
}

/// A guard that no live document of `test` refers to `link/target` through `path`.
fn not_referenced(target: &str, path: Path) -> WriteOp {
    let dotted = path.dotted();
    WriteOp::Guard(Guard::NotReferenced {
        model: "link".into(),
        id: target.to_owned(),
        by: vec![RefSpec {
            model: "test".into(),
            path: dotted,
            filter: Filter::cond(path, Op::Eq, json!(target)).and(Filter::live()),
        }],
    })
}

#[tokio::test]
async fn a_guard_finds_referrers_in_arrays_and_nested_fields_but_not_deleted_ones() {
    let db = Db::new().await;
    let store = db.open().await;
    let mut referrer = doc(&id(10), "b10", 10);
    referrer.insert("links".into(), json!([id(1), id(2)]));
    referrer.insert("parts".into(), json!([{"to": id(3)}, "loose"]));
    referrer.insert("meta".into(), json!({"link_id": id(4)}));
    store.write(insert("test", referrer)).await.unwrap();
    let mut gone = doc(&id(11), "b11", 11);
    gone.insert("_deleted".into(), json!(true));
    gone.insert("meta".into(), json!({"link_id": id(5)}));
    store.write(insert("test", gone)).await.unwrap();

    let refused = [
        (id(2), Path::new("links", Some(0))),
        (id(3), Path::new("parts.to", Some(0))),
        (id(4), Path::plain("meta.link_id")),
    ];
    for (target, path) in refused {
        let err = store
            .write(WriteTx {
                ops: vec![not_referenced(&target, path.clone())],
                ..WriteTx::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::Referenced {
                model: "link".into(),
                id: target,
                by_model: "test".into(),
                by_field: path.dotted(),
            }
        );
    }
    let allowed = [
        (id(3), Path::new("links", Some(0))),
        (id(1), Path::new("parts.to", Some(0))),
        (id(5), Path::plain("meta.link_id")),
    ];
    for (target, path) in allowed {
        store
            .write(WriteTx {
                ops: vec![not_referenced(&target, path)],
                ..WriteTx::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{target}: {e}"));
    }
}

#[tokio::test]
async fn a_text_search_needs_a_text_index() {
    let db = Db::new().await;
    let store = db.open().await;
    let find = Find {
        text: Some("kubla".into()),
        ..Find::default()
    };
    let no_index = StoreError::NoTextIndex {
        model: "link".into(),
    };
    assert_eq!(store.find("link", &find).await.unwrap_err(), no_index);
    assert_eq!(store.count_find("link", &find).await.unwrap_err(), no_index);
    assert_eq!(
        store.explain("link", &find, false).await.unwrap_err(),
        no_index
    );
    assert!(store.find("test", &find).await.is_ok());
}

#[tokio::test]
async fn concurrent_writers_see_commit_order_without_gaps() {
    let db = Db::new().await;
    let store = db.open().await;
    let mut rx = store.subscribe();
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..50u32 {
                let n = t * 1000 + i;
                let changes = store
                    .write(insert(
                        "test",
                        doc(&id(n + 1), &format!("b{n}"), i64::from(n)),
                    ))
                    .await
                    .unwrap();
                seqs.push(changes[0].seq);
            }
            seqs
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let mut streamed = Vec::new();
    for _ in 0..400 {
        streamed.push(next(&mut rx).await.seq);
    }
    assert_eq!(
        streamed,
        (1..=400).collect::<Vec<u64>>(),
        "stream order is seq order, no gap"
    );
    acked.sort_unstable();
    assert_eq!(
        acked, streamed,
        "each acknowledged write was published once"
    );
    let logged: Vec<u64> = store
        .changes_since("test", 0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(logged, streamed);
}

/// Writes that fail beside concurrent ones that succeed (the writes a store commits together)
/// take back only their own operations: the others are stored with gapless seqs.
#[tokio::test]
async fn a_failing_write_among_concurrent_ones_takes_back_only_its_own() {
    let db = Db::new().await;
    let store = db.open().await;
    store
        .write(insert("test", doc(&id(1), "taken", 0)))
        .await
        .unwrap();
    let outcomes = write_concurrently(&store, |_, i, n| {
        // Every third write is two inserts, the second of which clashes.
        if i % 3 == 0 {
            WriteTx {
                ops: vec![
                    WriteOp::Insert {
                        model: "test".into(),
                        doc: doc(&id(n), &format!("b{n}"), i64::from(n)),
                    },
                    WriteOp::Insert {
                        model: "test".into(),
                        doc: doc(&id(n + 500), "taken", 0),
                    },
                ],
                ..WriteTx::default()
            }
        } else {
            insert("test", doc(&id(n), &format!("b{n}"), i64::from(n)))
        }
    })
    .await;
    let mut stored = 0;
    for (_, _, n, outcome) in outcomes {
        let there = store.get("test", &id(n)).await.unwrap().is_some();
        match outcome {
            Ok(changes) => {
                assert_eq!(changes.len(), 1);
                assert!(there, "{n} acknowledged and stored");
                stored += 1;
            }
            Err(e) => {
                assert!(matches!(e, StoreError::Unique { .. }), "{n}: {e:?}");
                assert!(!there, "{n}: its first insert was taken back too");
            }
        }
    }
    assert_eq!(stored, 8 * 20);
    let logged: Vec<u64> = store
        .changes_since("test", 0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(logged, (1..=1 + 8 * 20).collect::<Vec<u64>>(), "gapless");
    assert_eq!(store.count("test", &Filter::All).await.unwrap(), 1 + 8 * 20);
}

/// Single inserts clashing on a unique field or on `_id` — with a stored document or with
/// each other, within one commit or across two — fail alone, with the field named, beside
/// concurrent ones that succeed; the stream carries each success once, in seq order.
#[tokio::test]
async fn single_inserts_in_conflict_fail_alone_and_name_the_field() {
    let db = Db::new().await;
    let store = db.open().await;
    let mut rx = store.subscribe();
    store
        .write(insert("test", doc(&id(1), "taken", 0)))
        .await
        .unwrap();
    let outcomes = write_concurrently(&store, |t, i, n| {
        let d = match i % 5 {
            0 => doc(&id(n), "taken", 0),
            // Tasks 2k and 2k+1 write the same value at the same step.
            1 => doc(&id(n), &format!("pair{i}-{}", t / 2), 0),
            2 => doc(&id(1), &format!("b{n}"), 0),
            _ => doc(&id(n), &format!("b{n}"), 0),
        };
        insert("test", d)
    })
    .await;
    let mut stored = 0;
    let mut pairs_won = std::collections::HashMap::new();
    for (t, i, n, outcome) in outcomes {
        let there = store.get("test", &id(n)).await.unwrap().is_some();
        match (i % 5, outcome) {
            (0, Err(StoreError::Unique { field, .. })) => {
                assert_eq!(field, "bar");
                assert!(!there);
            }
            (2, Err(StoreError::Unique { field, .. })) => assert_eq!(field, "_id"),
            (1, Ok(_)) => {
                assert!(there);
                *pairs_won.entry((i, t / 2)).or_insert(0) += 1;
                stored += 1;
            }
            (1, Err(StoreError::Unique { field, .. })) => {
                assert_eq!(field, "bar");
                assert!(!there);
                pairs_won.entry((i, t / 2)).or_insert(0);
            }
            (3 | 4, Ok(changes)) => {
                assert_eq!(changes.len(), 1);
                assert!(there);
                stored += 1;
            }
            (k, other) => panic!("write {n} (kind {k}): {other:?}"),
        }
    }
    assert_eq!(pairs_won.len(), 4 * 6);
    assert!(pairs_won.values().all(|won| *won == 1), "{pairs_won:?}");
    assert_eq!(stored, 8 * 12 + 4 * 6);
    let first = store.get("test", &id(1)).await.unwrap().unwrap();
    assert_eq!(first.get("bar"), Some(&json!("taken")), "not overwritten");
    let mut streamed = Vec::new();
    for _ in 0..=stored {
        streamed.push(next(&mut rx).await.seq);
    }
    assert_eq!(streamed, (1..=1 + stored).collect::<Vec<u64>>());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err(),
        "nothing more published"
    );
    let logged = store.changes_since("test", 0, 1000).await.unwrap();
    assert_eq!(logged.len(), 1 + stored as usize);
    assert_eq!(store.count("test", &Filter::All).await.unwrap(), 1 + stored);
}

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

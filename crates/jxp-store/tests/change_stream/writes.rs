//! One write at a time: each operation yields one change, in order; a failed transaction
//! writes and publishes nothing; guards find referrers; a text search needs a text index.

use jxp_query::{Filter, Find, Op, Path};
use jxp_store::{ChangeOp, Guard, RefSpec, StoreError, WriteOp, WriteTx};
use serde_json::json;

use crate::{Db, doc, id, insert, next};

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
                prev: None,
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
                prev: None,
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

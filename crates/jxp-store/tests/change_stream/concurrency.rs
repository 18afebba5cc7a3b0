//! Writes racing each other: commit order without gaps, and a failing write among
//! concurrent ones taking back only its own operations.

use std::sync::Arc;
use std::time::Duration;

use jxp_query::Filter;
use jxp_store::{Change, Store, StoreError, WriteOp, WriteTx};
use serde_json::json;

use crate::{Db, doc, id, insert, next};

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

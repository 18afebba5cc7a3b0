//! Imports: documents fed in batches are written in one transaction once the feed says
//! `Commit`, with their full-text entries and the change log moved on by their number; a
//! feed that closes first, or a unique value taken, writes nothing.

use jxp_query::{Filter, Find};
use jxp_store::{
    ChangeOp, Document, ImportDoc, ImportError, ImportStep, Imported, Store, StoreError,
};
use tokio::sync::mpsc;

use crate::{Db, doc, id, insert};

/// Runs an import of `batches`, ending with `Commit` when `commit`.
async fn import(
    store: &dyn Store,
    batches: Vec<Vec<Document>>,
    commit: bool,
) -> Result<Imported, ImportError> {
    let (feed, steps) = mpsc::channel(4);
    let fed = async move {
        for batch in batches {
            let docs = batch
                .iter()
                .map(|d| ImportDoc::new("test", d).unwrap())
                .collect();
            if feed.send(ImportStep::Docs(docs)).await.is_err() {
                return;
            }
        }
        if commit {
            let _ = feed.send(ImportStep::Commit).await;
        }
    };
    let (written, ()) = tokio::join!(store.import("test", steps), fed);
    written
}

#[tokio::test]
async fn an_import_is_written_with_its_text_index_and_logged_as_creates() {
    let db = Db::new().await;
    let store = db.open().await;
    store
        .write(insert("test", doc(&id(1), "a", 1)))
        .await
        .unwrap();
    let done = import(
        &*store,
        vec![
            vec![doc(&id(2), "b", 2), doc(&id(3), "c", 3)],
            vec![doc(&id(4), "d", 4)],
        ],
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        done,
        Imported {
            count: 3,
            last_seq: 4
        }
    );
    assert_eq!(store.count("test", &Filter::All).await.unwrap(), 4);
    let stored = store.get("test", &id(3)).await.unwrap().unwrap();
    assert_eq!(stored, doc(&id(3), "c", 3));
    let find = Find {
        text: Some("kubla".into()),
        ..Find::default()
    };
    assert_eq!(store.count_find("test", &find).await.unwrap(), 4);
    let logged = store.changes_since("test", 1, 10).await.unwrap();
    let seqs: Vec<(u64, ChangeOp, &str)> = logged
        .iter()
        .map(|c| (c.seq, c.op, c.id.as_str()))
        .collect();
    assert_eq!(
        seqs,
        [
            (2, ChangeOp::Create, id(2).as_str()),
            (3, ChangeOp::Create, id(3).as_str()),
            (4, ChangeOp::Create, id(4).as_str()),
        ]
    );
    assert_eq!(*logged[0].doc, doc(&id(2), "b", 2));
    // Writes go on from the import's last seq.
    let after = store
        .write(insert("test", doc(&id(5), "e", 5)))
        .await
        .unwrap();
    assert_eq!(after[0].seq, 5);
    assert_eq!(store.last_seq("test").await.unwrap(), 5);
}

#[tokio::test]
async fn a_feed_that_ends_without_commit_writes_nothing() {
    let db = Db::new().await;
    let store = db.open().await;
    let abandoned = import(&*store, vec![vec![doc(&id(1), "a", 1)]], false).await;
    assert_eq!(abandoned, Err(ImportError::Abandoned));
    assert_eq!(store.count("test", &Filter::All).await.unwrap(), 0);
    assert_eq!(store.last_seq("test").await.unwrap(), 0);
    // The store writes on as before.
    let done = import(&*store, vec![vec![doc(&id(1), "a", 1)]], true)
        .await
        .unwrap();
    assert_eq!(done.count, 1);
}

#[tokio::test]
async fn a_taken_unique_value_names_the_document_and_writes_nothing() {
    let db = Db::new().await;
    let store = db.open().await;
    store
        .write(insert("test", doc(&id(1), "a", 1)))
        .await
        .unwrap();
    let unique = StoreError::Unique {
        model: "test".into(),
        field: "bar".into(),
    };
    // Taken by a stored document.
    let refused = import(
        &*store,
        vec![vec![doc(&id(2), "b", 2)], vec![doc(&id(3), "a", 3)]],
        true,
    )
    .await;
    assert_eq!(
        refused,
        Err(ImportError::Refused {
            at: 1,
            error: unique.clone()
        })
    );
    // Taken earlier in the import.
    let refused = import(
        &*store,
        vec![vec![
            doc(&id(2), "b", 2),
            doc(&id(3), "c", 3),
            doc(&id(4), "b", 4),
        ]],
        true,
    )
    .await;
    assert_eq!(
        refused,
        Err(ImportError::Refused {
            at: 2,
            error: unique
        })
    );
    assert_eq!(store.count("test", &Filter::All).await.unwrap(), 1);
    assert_eq!(store.last_seq("test").await.unwrap(), 1);
    assert!(store.get("test", &id(2)).await.unwrap().is_none());
}

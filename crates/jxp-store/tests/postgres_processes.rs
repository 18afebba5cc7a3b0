//! PostgreSQL only (skipped with a note unless `JXP_TEST_DATABASE_URL` is set): two stores on
//! one database, as two processes would have them. Each one's change stream carries every
//! change, whichever store wrote it, in seq order, without gaps and exactly once, also while
//! both write at once and after the listener's connection is killed.
//! Built only with the `postgres` feature.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code fails loudly.

use std::sync::Arc;
use std::time::Duration;

use jxp_store::{
    Change, Document, PostgresOptions, PostgresStore, Store, TableSpec, WriteOp, WriteTx,
    postgres_schema_url,
};
use serde_json::json;
use tokio::sync::broadcast;

fn base_url() -> Option<String> {
    let url = std::env::var("JXP_TEST_DATABASE_URL").ok();
    if url.is_none() {
        eprintln!("note: JXP_TEST_DATABASE_URL is not set; PostgreSQL process tests skipped");
    }
    url
}

async fn schema_url(base: &str, tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    postgres_schema_url(base, &format!("proc_{tag}_{}_{nanos}", std::process::id()))
        .await
        .unwrap()
}

async fn open(url: &str) -> Arc<PostgresStore> {
    let store = PostgresStore::connect(PostgresOptions::new(url.to_owned()))
        .await
        .unwrap();
    store
        .migrate(&[TableSpec {
            model: "test".into(),
            fields: vec!["n".into()],
            ..TableSpec::default()
        }])
        .await
        .unwrap();
    Arc::new(store)
}

fn doc(n: u64) -> Document {
    json!({"_id": format!("{n:024x}"), "n": n, "_deleted": false, "__v": 0})
        .as_object()
        .cloned()
        .unwrap()
}

fn insert(n: u64) -> WriteTx {
    WriteTx {
        ops: vec![WriteOp::Insert {
            model: "test".into(),
            doc: doc(n),
        }],
        ..WriteTx::default()
    }
}

/// The next `count` changes on a stream (each within 10 s).
async fn take(rx: &mut broadcast::Receiver<Arc<Change>>, count: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let change = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a change within 10 s")
            .expect("no lag");
        out.push(change.seq);
    }
    out
}

/// Writes `per_task` documents from each of `tasks` tasks on each store, numbered from
/// `start`, and answers the acknowledged seqs.
async fn write_load(
    stores: &[Arc<PostgresStore>],
    tasks: u64,
    per_task: u64,
    start: u64,
) -> Vec<u64> {
    let mut handles = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..tasks {
            let store = store.clone();
            let base = start + (s as u64 * tasks + t) * per_task;
            handles.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..per_task {
                    seqs.push(store.write(insert(base + i)).await.unwrap()[0].seq);
                }
                seqs
            }));
        }
    }
    let mut acked = Vec::new();
    for h in handles {
        acked.extend(h.await.unwrap());
    }
    acked.sort_unstable();
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_streams_carry_every_write_in_seq_order_while_both_write() {
    let Some(base) = base_url() else { return };
    let url = schema_url(&base, "both").await;
    let a = open(&url).await;
    let b = open(&url).await;
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();

    let acked = write_load(&[a.clone(), b.clone()], 4, 25, 1).await;
    let all: Vec<u64> = (1..=200).collect();
    assert_eq!(
        acked, all,
        "every acknowledged write has its own seq, no gap"
    );
    assert_eq!(
        take(&mut on_a, 200).await,
        all,
        "A's stream: seq order, no gap"
    );
    assert_eq!(
        take(&mut on_b, 200).await,
        all,
        "B's stream: seq order, no gap"
    );
    assert!(
        on_a.try_recv().is_err() && on_b.try_recv().is_err(),
        "each change once"
    );

    // Replay on B covers what A wrote.
    let replay: Vec<u64> = b
        .changes_since("test", 150, 1000)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(replay, (151..=200).collect::<Vec<_>>());
    assert_eq!(b.last_seq("test").await.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_connection_loses_nothing() {
    let Some(base) = base_url() else { return };
    let url = schema_url(&base, "kill").await;
    let a = open(&url).await;
    let b = open(&url).await;
    let mut on_b = b.subscribe();
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let channel: String = admin
        .query_one("SELECT 'jxp_' || current_schema()", &[])
        .await
        .unwrap()
        .get(0);

    // A writes while B's listener connection is killed again and again.
    let writer = {
        let a = a.clone();
        tokio::spawn(async move { write_load(&[a], 2, 60, 1).await })
    };
    let mut killed = 0;
    for _ in 0..5 {
        let n: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = 'jxp-listener ' || $1::text",
                &[&channel],
            )
            .await
            .unwrap()
            .get(0);
        killed += n;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(
        killed > 0,
        "the listeners' connections were found and killed"
    );
    let acked = writer.await.unwrap();
    assert_eq!(acked, (1..=120).collect::<Vec<u64>>());
    assert_eq!(
        take(&mut on_b, 120).await,
        acked,
        "B's stream lost nothing and repeated nothing across reconnects"
    );
    // And B's own writes still reach B's stream after all that.
    let seq = b.write(insert(1000)).await.unwrap()[0].seq;
    assert_eq!(take(&mut on_b, 1).await, vec![seq]);
}

#[tokio::test]
async fn a_regex_postgres_cannot_compile_is_a_bad_query_not_a_fault() {
    let Some(base) = base_url() else { return };
    let store = open(&schema_url(&base, "regex").await).await;
    store.write(insert(1)).await.unwrap();
    let find = |pattern: &str| jxp_query::Find {
        filter: jxp_query::Filter::cond(
            jxp_query::Path::plain("_id"),
            jxp_query::Op::Regex,
            json!(pattern),
        ),
        ..jxp_query::Find::default()
    };
    assert_eq!(store.find("test", &find("^0+1$")).await.unwrap().len(), 1);
    let err = store.find("test", &find(r"\p{L}")).await.unwrap_err();
    assert!(matches!(err, jxp_store::StoreError::BadQuery(_)), "{err:?}");
}

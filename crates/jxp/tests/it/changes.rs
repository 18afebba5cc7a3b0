//! Every write route produces exactly one committed change per document it writes, in commit
//! order, and a rejected write produces none: watched on the store's change stream itself.

use std::sync::Arc;
use std::time::Duration;

use jxp_store::{Change, ChangeOp};
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::broadcast;

use crate::harness::TestServer;

async fn next(rx: &mut broadcast::Receiver<Arc<Change>>) -> Arc<Change> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a change in time")
        .expect("stream open")
}

fn assert_quiet(rx: &mut broadcast::Receiver<Arc<Change>>) {
    assert!(rx.try_recv().is_err(), "no further change expected");
}

#[tokio::test]
async fn each_write_route_yields_exactly_its_changes() {
    let s = TestServer::open().await;
    let mut rx = s.app().changes();

    let link = s.create("link", json!({"name": "L"})).await;
    let c = next(&mut rx).await;
    assert_eq!(
        (c.model.as_str(), c.op, c.seq, c.id.as_str()),
        ("link", ChangeOp::Create, 1, link.as_str())
    );
    assert_quiet(&mut rx);

    let id = s
        .create("test", json!({"foo": "a", "bar": "b1", "ref_id": link}))
        .await;
    let c = next(&mut rx).await;
    assert_eq!(
        (c.model.as_str(), c.op, c.seq),
        ("test", ChangeOp::Create, 1)
    );

    assert_eq!(
        s.put(&format!("/api/test/{id}"), json!({"foo": "b"}))
            .await
            .0,
        StatusCode::OK
    );
    let c = next(&mut rx).await;
    assert_eq!(
        (c.op, c.seq, c.doc["foo"].as_str()),
        (ChangeOp::Update, 2, Some("b"))
    );

    assert_eq!(
        s.post(&format!("/update/test/{id}"), json!({"foo": "c"}))
            .await
            .0,
        StatusCode::OK
    );
    let c = next(&mut rx).await;
    assert_eq!(
        (c.op, c.seq, c.doc["foo"].as_str()),
        (ChangeOp::Update, 3, Some("c"))
    );
    assert_quiet(&mut rx);

    // Rejected writes: validation, unique clash, referrers without cascade. No change, no seq.
    assert_eq!(
        s.post("/api/test", json!({"n": -5})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.post("/api/test", json!({"bar": "b1"})).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.delete(&format!("/api/link/{link}")).await.0,
        StatusCode::CONFLICT
    );
    assert_quiet(&mut rx);

    // A silenced write is logged and flagged.
    assert_eq!(
        s.put(
            &format!("/api/test/{id}?_silence=true"),
            json!({"foo": "quiet"})
        )
        .await
        .0,
        StatusCode::OK
    );
    let c = next(&mut rx).await;
    assert_eq!((c.op, c.seq, c.silent), (ChangeOp::Update, 4, true));

    // A cascade: the referrer and the target, in one transaction, referrer first.
    assert_eq!(
        s.delete(&format!("/api/link/{link}?_cascade=1")).await.0,
        StatusCode::OK
    );
    let a = next(&mut rx).await;
    let b = next(&mut rx).await;
    assert_eq!(
        (a.model.as_str(), a.op, a.seq, a.id.as_str()),
        ("test", ChangeOp::Delete, 5, id.as_str())
    );
    assert_eq!(
        (b.model.as_str(), b.op, b.seq, b.id.as_str()),
        ("link", ChangeOp::Delete, 2, link.as_str())
    );
    assert_eq!(a.doc["_deleted"], true);
    assert_quiet(&mut rx);

    // Undelete and permanent delete.
    assert_eq!(
        s.put(&format!("/api/test/{id}"), json!({"_deleted": false}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(next(&mut rx).await.op, ChangeOp::Update);
    assert_eq!(
        s.delete(&format!("/api/test/{id}?_permaDelete=1")).await.0,
        StatusCode::OK
    );
    let c = next(&mut rx).await;
    assert_eq!((c.op, c.seq), (ChangeOp::Delete, 7));
    assert_quiet(&mut rx);
}

//! `resources/subscribe`: a change the subscriber may read arrives as
//! `notifications/resources/updated` naming the document; one it may not read (someone
//! else's document on an owner-only model) never does; a model it may not read, or a hidden
//! one, refuses the subscription.

use std::time::Duration;

use serde_json::json;

use super::client::Mcp;
use crate::aggregate::{CLOSED, OWNED, TAG};
use crate::harness::{World, create_as, login_as, update_as};

const WAIT: Duration = Duration::from_secs(10);
/// How long a notification that must not come is waited for, after a later one came.
const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn subscribers_are_told_of_changes_they_may_read_only() {
    let models = [("owned", OWNED), ("tag", TAG), ("closed", CLOSED)];
    let mut w = World::start(&models, &[], ["alice", "bob"]).await;
    let key = login_as(&w.s, &w.alice).await.key();
    let mut alice = Mcp::connect(&w.s, &key).await;
    alice.subscribe("jxp://owned").await.unwrap();

    // Bob's document first: were it delivered, it would come before Alice's.
    create_as(&w.s, &w.bob, "owned", json!({"title": "bob's"})).await;
    let mine = create_as(&w.s, &w.alice, "owned", json!({"title": "alice's"})).await;
    assert_eq!(
        alice.next_update(WAIT).await.as_deref(),
        Some(format!("jxp://owned/{mine}").as_str())
    );
    update_as(&w.s, &w.alice, "owned", &mine, json!({"title": "changed"})).await;
    assert_eq!(
        alice.next_update(WAIT).await.as_deref(),
        Some(format!("jxp://owned/{mine}").as_str())
    );
    assert_eq!(alice.next_update(QUIET).await, None);

    // A subscription to one document hears of that document only.
    let mut one = Mcp::connect(&w.s, &w.alice.basic()).await;
    let other = create_as(&w.s, &w.alice, "owned", json!({"title": "other"})).await;
    one.subscribe(&format!("jxp://owned/{mine}")).await.unwrap();
    update_as(&w.s, &w.alice, "owned", &other, json!({"title": "x"})).await;
    update_as(&w.s, &w.alice, "owned", &mine, json!({"title": "y"})).await;
    assert_eq!(
        one.next_update(WAIT).await.as_deref(),
        Some(format!("jxp://owned/{mine}").as_str())
    );
    assert_eq!(one.next_update(QUIET).await, None);
    one.unsubscribe(&format!("jxp://owned/{mine}"))
        .await
        .unwrap();
    update_as(&w.s, &w.alice, "owned", &mine, json!({"title": "z"})).await;
    assert_eq!(one.next_update(QUIET).await, None);
    assert!(
        one.unsubscribe("jxp://owned").await.is_err(),
        "never subscribed"
    );

    // Alice may not read `closed`, and the auth models are hidden.
    for refused in ["jxp://closed", "jxp://user", "jxp://nosuch", "http://owned"] {
        assert!(alice.subscribe(refused).await.is_err(), "{refused}");
    }
    // The resource read answers as jxp_find does.
    let text = alice.read(&format!("jxp://owned/{mine}")).await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["data"]["title"], "z");
    assert!(alice.read(&format!("jxp://closed/{mine}")).await.is_err());

    // Open sessions and their event streams do not hold up a graceful shutdown.
    tokio::time::timeout(WAIT, w.s.stop())
        .await
        .expect("the server stops with MCP sessions open");
}

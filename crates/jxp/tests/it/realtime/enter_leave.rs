//! `enter` and `leave` events: a subscription that opts in with `enter_leave` hears when an
//! update takes a document out of its view (its filter, the owner rule) or brings one in;
//! one that does not sees what it always did.

use serde_json::json;

use super::client::{QUIET, WsClient};
use super::support::{change, seq, subscribed, world};
use crate::harness::{World, create_as, create_doc_as, update_as};

/// Only the owner reads; an admin may hand a document to another user.
const HANDED: &str = r#"
name = "Handed"
[fields]
name = "String"
[perms]
owner = "crud"
user = "c"
admin = "crud"
"#;

/// Bob subscribed to the items tagged `a`, with `enter_leave` as given.
async fn bob_on_tag_a(w: &World, enter_leave: bool) -> WsClient {
    let sub = json!({"model": "item", "filter": {"tag": "a"}, "enter_leave": enter_leave});
    subscribed(&w.s, &w.bob, sub).await
}

#[tokio::test]
async fn an_update_out_of_the_filter_is_a_leave_and_back_in_an_enter() {
    let w = world(&[]).await;
    let mut c = bob_on_tag_a(&w, true).await;
    let id = create_as(&w.s, &w.alice, "item", json!({"tag": "a", "n": 1})).await;
    change(&c.event().await, "post", "item", &id);
    // Still in view: a plain put, no enter.
    update_as(&w.s, &w.alice, "item", &id, json!({"n": 2})).await;
    let put = c.event().await;
    assert_eq!(change(&put, "put", "item", &id)["item"]["n"], 2);

    update_as(
        &w.s,
        &w.alice,
        "item",
        &id,
        json!({"tag": "b", "secret": "s"}),
    )
    .await;
    let leave = c.event().await;
    let data = change(&leave, "leave", "item", &id);
    // The item is the id alone; the rest of the event has the shape of every other.
    assert_eq!(data["item"], json!({"_id": id}), "{leave}");
    assert_eq!(data["user_id"], w.alice.id.as_str(), "{leave}");
    assert_eq!(data["user_name"], w.alice.name.as_str(), "{leave}");
    assert!(seq(&leave) > seq(&put));

    // Out of view, an update is not heard.
    update_as(&w.s, &w.alice, "item", &id, json!({"n": 3})).await;
    c.expect_no_event(QUIET).await;

    update_as(&w.s, &w.alice, "item", &id, json!({"tag": "a"})).await;
    let enter = c.event().await;
    let data = change(&enter, "enter", "item", &id);
    // The document as a put carries it: the public view, as it is now.
    assert_eq!(data["item"]["n"], 3, "{enter}");
    assert_eq!(data["item"]["tag"], "a", "{enter}");
    assert!(data["item"].get("secret").is_none(), "{enter}");
    assert!(seq(&enter) > seq(&leave));

    // Documents never in view stay unheard; one created in view is a post, not an enter.
    create_doc_as(&w.s, &w.alice, "item", json!({"tag": "z"})).await;
    let other = create_as(&w.s, &w.alice, "item", json!({"tag": "a"})).await;
    change(&c.event().await, "post", "item", &other);
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn without_the_flag_an_update_out_of_the_filter_is_not_heard() {
    let w = world(&[]).await;
    let mut c = bob_on_tag_a(&w, false).await;
    let id = create_as(&w.s, &w.alice, "item", json!({"tag": "a"})).await;
    change(&c.event().await, "post", "item", &id);
    update_as(&w.s, &w.alice, "item", &id, json!({"tag": "b"})).await;
    c.expect_no_event(QUIET).await;
    // Coming back into the filter is a plain put.
    update_as(&w.s, &w.alice, "item", &id, json!({"tag": "a"})).await;
    change(&c.event().await, "put", "item", &id);
    c.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn an_owner_change_is_a_leave_for_the_old_owner_and_an_enter_for_the_new() {
    let w = World::start(&[("handed", HANDED)], &[], ["Alice", "Bob"]).await;
    let flags = json!({"model": "handed", "enter_leave": true});
    let mut a = subscribed(&w.s, &w.alice, flags.clone()).await;
    let mut b = subscribed(&w.s, &w.bob, flags).await;
    let mut plain = subscribed(&w.s, &w.alice, json!({"model": "handed"})).await;

    let id = create_as(&w.s, &w.alice, "handed", json!({"name": "n"})).await;
    change(&a.event().await, "post", "handed", &id);
    change(&plain.event().await, "post", "handed", &id);

    update_as(
        &w.s,
        &w.admin,
        "handed",
        &id,
        json!({"_owner_id": w.bob.id}),
    )
    .await;
    let leave = a.event().await;
    // Alice no longer reads the document: she learns its id, nothing of what it now holds.
    assert_eq!(
        change(&leave, "leave", "handed", &id)["item"],
        json!({"_id": id})
    );
    let enter = b.event().await;
    let data = change(&enter, "enter", "handed", &id);
    assert_eq!(data["item"]["name"], "n", "{enter}");
    assert_eq!(data["item"]["_owner_id"], w.bob.id.as_str(), "{enter}");
    assert_eq!(seq(&enter), seq(&leave));
    // Without the flag the old owner hears nothing.
    plain.expect_no_event(QUIET).await;

    update_as(&w.s, &w.bob, "handed", &id, json!({"name": "m"})).await;
    change(&b.event().await, "put", "handed", &id);
    a.expect_no_event(QUIET).await;
}

#[tokio::test]
async fn a_connection_gets_one_event_per_change_whatever_its_subscriptions_say() {
    let w = world(&[]).await;
    let mut c = bob_on_tag_a(&w, true).await;
    c.subscribe_ok(json!({"model": "item", "filter": {"n": 1}, "enter_leave": true}))
        .await;
    let id = create_as(&w.s, &w.alice, "item", json!({"tag": "a", "n": 1})).await;
    change(&c.event().await, "post", "item", &id);
    // Out of one filter, still in the other: the document is still in view.
    update_as(&w.s, &w.alice, "item", &id, json!({"tag": "b"})).await;
    change(&c.event().await, "put", "item", &id);
    // Out of both: one leave.
    update_as(&w.s, &w.alice, "item", &id, json!({"n": 2})).await;
    change(&c.event().await, "leave", "item", &id);
    // Into both: one enter.
    update_as(&w.s, &w.alice, "item", &id, json!({"tag": "a", "n": 1})).await;
    change(&c.event().await, "enter", "item", &id);
    c.expect_no_event(QUIET).await;
}

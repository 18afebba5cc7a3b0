//! The realtime tests' models and world, sockets authenticated and subscribed as a user, and
//! what a pushed event must look like.

use serde_json::Value;

use super::client::WsClient;
use crate::harness::{Account, TestServer, World};

/// A model any logged-in user may read and write, with private fields and a link.
pub const ITEM: &str = r#"
name = "Item"
[fields]
name = "String"
tag = "String"
n = "Number"
s = "String"
secret = { type = "String", private = true }
password = "String"
parent_id = { type = "ObjectId", link = "Parent" }
[perms]
user = "crud"
"#;

/// What `item` links to.
pub const PARENT: &str = r#"
name = "Parent"
[fields]
name = "String"
[perms]
user = "crud"
"#;

/// Users may create; only the owner may read, update and delete.
pub const OWNED: &str = r#"
name = "Owned"
[fields]
name = "String"
[perms]
owner = "crud"
user = "c"
"#;

/// Only the custom group `editors` may read; only admins write.
pub const BOARD: &str = r#"
name = "Board"
[fields]
name = "String"
[perms]
editors = "r"
admin = "crud"
"#;

/// A server with the realtime models, an admin and two users, Alice and Bob.
pub async fn world(env: &[(&str, &str)]) -> World {
    World::start(
        &[
            ("item", ITEM),
            ("parent", PARENT),
            ("owned", OWNED),
            ("board", BOARD),
        ],
        env,
        ["Alice", "Bob"],
    )
    .await
}

/// A socket authenticated as `who`.
pub async fn client_as(s: &TestServer, who: &Account) -> WsClient {
    let mut c = WsClient::connect(s).await;
    c.auth_ok(who.creds()).await;
    c
}

/// A socket authenticated as `who` and subscribed with `sub`.
pub async fn subscribed(s: &TestServer, who: &Account, sub: Value) -> WsClient {
    let mut c = client_as(s, who).await;
    c.subscribe_ok(sub).await;
    c
}

/// Asserts a pushed change event and answers its `data`.
#[track_caller]
pub fn change<'a>(frame: &'a Value, event: &str, model: &str, id: &str) -> &'a Value {
    let data = &frame["data"];
    assert_eq!(data["event"], event, "{frame}");
    assert_eq!(data["modelname"], model, "{frame}");
    assert_eq!(data["item"]["_id"], id, "{frame}");
    data
}

/// The `seq` of a pushed event.
#[track_caller]
pub fn seq(frame: &Value) -> u64 {
    frame["data"]["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer seq: {frame}"))
}

/// Asserts a `{client_id, data: {event: "deauth", reason}}` frame.
#[track_caller]
pub fn assert_deauth(frame: &Value, client_id: Option<&str>) {
    assert_eq!(frame["data"]["event"], "deauth", "{frame}");
    assert!(
        frame["data"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "a deauth names a reason: {frame}"
    );
    if let Some(id) = client_id {
        assert_eq!(frame["client_id"], id, "{frame}");
    }
    let keys: Vec<&String> = frame.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2, "only client_id and data: {frame}");
}

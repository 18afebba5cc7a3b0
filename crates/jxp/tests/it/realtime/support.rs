//! Servers, accounts and REST writes for the realtime tests.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::client::WsClient;
use crate::harness::TestServer;

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

/// A user and the password they log in with.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

impl Account {
    /// `Authorization: Basic …`.
    pub fn basic(&self) -> String {
        basic(&self.email, &self.password)
    }

    /// `{email, password}` for a WebSocket `auth`.
    pub fn creds(&self) -> Value {
        json!({"email": self.email, "password": self.password})
    }
}

pub fn basic(email: &str, password: &str) -> String {
    use base64::Engine as _;
    let raw = format!("{email}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A server with the realtime models, an admin and two users.
pub struct World {
    pub s: TestServer,
    pub admin: Account,
    pub alice: Account,
    pub bob: Account,
}

/// Starts a server on `models` with `env`; the login rate limit (which also guards WebSocket
/// `auth`) is off unless `env` turns it on.
pub async fn start(models: &[(&str, &str)], env: &[(&str, &str)]) -> TestServer {
    let mut all = vec![("LOGIN_RATE_LIMIT_ENABLED", "false")];
    all.extend_from_slice(env);
    TestServer::start(models, &all).await
}

pub async fn world(env: &[(&str, &str)]) -> World {
    let s = start(
        &[
            ("item", ITEM),
            ("parent", PARENT),
            ("owned", OWNED),
            ("board", BOARD),
        ],
        env,
    )
    .await;
    let admin_email = "admin@example.com";
    let admin_password = "admin-secret-1";
    let (status, body) = call(
        &s,
        Method::POST,
        "/setup",
        None,
        Some(json!({"email": admin_email, "password": admin_password, "name": "Admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let admin = Account {
        id: body["user_id"].as_str().unwrap().to_owned(),
        name: "Admin".into(),
        email: admin_email.into(),
        password: admin_password.into(),
    };
    let alice = create_user(&s, &admin, "Alice").await;
    let bob = create_user(&s, &admin, "Bob").await;
    World {
        s,
        admin,
        alice,
        bob,
    }
}

/// Creates a non-admin user through `POST /api/user` as `admin`.
pub async fn create_user(s: &TestServer, admin: &Account, name: &str) -> Account {
    let lower = name.to_lowercase();
    let email = format!("{lower}@example.com");
    let password = format!("{lower}-password");
    let (status, body) = call(
        s,
        Method::POST,
        "/api/user",
        Some(admin),
        Some(json!({"name": name, "email": email, "password": password})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Account {
        id: body["data"]["_id"].as_str().unwrap().to_owned(),
        name: name.to_owned(),
        email,
        password,
    }
}

/// A request as `who` (Basic auth), answering `(status, json)`.
pub async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    who: Option<&Account>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call_with(s, method, path, who.map(Account::basic), body).await
}

/// A request with a raw `Authorization` header value.
pub async fn call_with(
    s: &TestServer,
    method: Method,
    path: &str,
    authorization: Option<String>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = s.client.request(method, format!("{}{path}", s.base));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// A write as `who` that must succeed; answers the body.
pub async fn write(
    s: &TestServer,
    who: &Account,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, resp) = call(s, method.clone(), path, Some(who), body).await;
    assert_eq!(status, StatusCode::OK, "{method} {path}: {resp}");
    resp
}

/// Creates a document as `who`; answers the created document.
pub async fn create(s: &TestServer, who: &Account, model: &str, body: Value) -> Value {
    write(s, who, Method::POST, &format!("/api/{model}"), Some(body)).await["data"].clone()
}

/// Creates a document as `who`; answers its `_id`.
pub async fn create_id(s: &TestServer, who: &Account, model: &str, body: Value) -> String {
    id_of(&create(s, who, model, body).await)
}

/// `PUT /api/:model/:id` as `who`; answers the updated document.
pub async fn update(s: &TestServer, who: &Account, model: &str, id: &str, body: Value) -> Value {
    write(
        s,
        who,
        Method::PUT,
        &format!("/api/{model}/{id}"),
        Some(body),
    )
    .await["data"]
        .clone()
}

/// `DELETE /api/:model/:id{query}` as `who`.
pub async fn delete(s: &TestServer, who: &Account, model: &str, id: &str, query: &str) {
    write(
        s,
        who,
        Method::DELETE,
        &format!("/api/{model}/{id}{query}"),
        None,
    )
    .await;
}

/// `POST /login`: answers `{token, apikey, …}`.
pub async fn login(s: &TestServer, who: &Account) -> Value {
    let (status, body) = call(
        s,
        Method::POST,
        "/login",
        None,
        Some(json!({"email": who.email, "password": who.password})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "login {}: {body}", who.email);
    body
}

pub fn id_of(doc: &Value) -> String {
    doc["_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no _id: {doc}"))
        .to_owned()
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

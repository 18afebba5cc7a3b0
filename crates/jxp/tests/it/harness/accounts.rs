//! Accounts for tests: the first admin through `POST /setup`, users the admin creates, logins
//! and what they answer, custom groups, the server-with-three-people most access tests start
//! from, and writes made as one of those people.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::http::{Auth, Reply, basic_header, call_ok, post, send};
use super::server::{TestServer, start};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-secret-1";

/// A user and the password they log in with.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

impl Account {
    /// Basic credentials.
    pub fn basic(&self) -> Auth {
        Auth::basic(&self.email, &self.password)
    }

    /// The `Authorization` header value of `basic()`, for requests built by hand.
    pub fn authorization(&self) -> String {
        basic_header(&self.email, &self.password)
    }

    /// `{email, password}`, as `/login` and a WebSocket `auth` take them.
    pub fn creds(&self) -> Value {
        json!({"email": self.email, "password": self.password})
    }
}

impl Auth {
    /// Basic credentials of `who`, or none.
    pub fn of(who: Option<&Account>) -> Self {
        who.map_or(Auth::None, Account::basic)
    }
}

/// Creates the first admin through `POST /setup`.
pub async fn setup_admin(s: &TestServer) -> Account {
    let (status, body) = post(
        s,
        "/setup",
        &Auth::None,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "name": "Admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Account {
        id: body["user_id"].as_str().unwrap().to_owned(),
        name: "Admin".to_owned(),
        email: ADMIN_EMAIL.to_owned(),
        password: ADMIN_PASSWORD.to_owned(),
    }
}

/// Creates a non-admin user through `POST /api/user` as `admin`; the email and password are
/// made from the name in lower case.
pub async fn create_user(s: &TestServer, admin: &Auth, name: &str) -> Account {
    let lower = name.to_lowercase();
    let email = format!("{lower}@example.com");
    let password = format!("{lower}-password");
    let (status, body) = post(
        s,
        "/api/user",
        admin,
        json!({"name": name, "email": email, "password": password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["admin"], false, "{body}");
    Account {
        id: body["data"]["_id"].as_str().unwrap().to_owned(),
        name: name.to_owned(),
        email,
        password,
    }
}

/// A server with its first admin and two users the admin created.
pub struct World {
    pub s: TestServer,
    pub admin: Account,
    pub alice: Account,
    pub bob: Account,
}

impl World {
    /// Starts a server on `models` with `env` (the login rate limit off unless `env` turns it
    /// on), then sets up the admin and creates two users named `names`.
    pub async fn start(models: &[(&str, &str)], env: &[(&str, &str)], names: [&str; 2]) -> Self {
        let s = start(models, env).await;
        let admin = setup_admin(&s).await;
        let alice = create_user(&s, &admin.basic(), names[0]).await;
        let bob = create_user(&s, &admin.basic(), names[1]).await;
        World {
            s,
            admin,
            alice,
            bob,
        }
    }
}

/// What `/login` (or `/refresh`) answered.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub token: String,
    pub apikey: Option<String>,
    pub refresh: String,
    pub body: Value,
}

impl Session {
    pub fn bearer(&self) -> Auth {
        Auth::bearer(&self.token)
    }

    pub fn key(&self) -> Auth {
        Auth::key(self.apikey.as_deref().unwrap())
    }

    fn from_body(body: Value) -> Self {
        let text = |k: &str| {
            body[k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k}: {body}"))
                .to_owned()
        };
        Session {
            user_id: text("user_id"),
            token: text("token"),
            apikey: body["apikey"].as_str().map(str::to_owned),
            refresh: text("refresh_token"),
            body,
        }
    }
}

/// `POST /login` as the answer came.
pub async fn try_login(s: &TestServer, email: &str, password: &str) -> Reply {
    send(
        s,
        Method::POST,
        "/login",
        &Auth::None,
        Some(&json!({"email": email, "password": password})),
    )
    .await
}

/// Logs in; fails the test if that does not work.
pub async fn login(s: &TestServer, email: &str, password: &str) -> Session {
    let r = try_login(s, email, password).await;
    assert_eq!(r.status, StatusCode::OK, "login {email}: {}", r.body);
    Session::from_body(r.body)
}

pub async fn login_as(s: &TestServer, account: &Account) -> Session {
    login(s, &account.email, &account.password).await
}

/// `POST <route>` with `Authorization: Bearer <refresh token>`.
pub async fn refresh(s: &TestServer, route: &str, refresh_token: &str) -> (StatusCode, Value) {
    post(s, route, &Auth::bearer(refresh_token), json!({})).await
}

pub fn session_of(body: Value) -> Session {
    Session::from_body(body)
}

/// Sets a user's custom groups (replacing them) as `admin`.
pub async fn set_groups(s: &TestServer, admin: &Auth, user_id: &str, groups: &[&str]) {
    let (status, body) = post(
        s,
        &format!("/groups/{user_id}"),
        admin,
        json!({"group": groups}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["groups"], json!(groups), "{body}");
}

/// A request as `who` that must succeed; answers the body.
pub async fn write_as(
    s: &TestServer,
    who: &Account,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    call_ok(s, method, path, &who.basic(), body).await
}

/// Creates a document as `who`; answers the created document.
pub async fn create_doc_as(s: &TestServer, who: &Account, model: &str, body: Value) -> Value {
    let path = format!("/api/{model}");
    write_as(s, who, Method::POST, &path, Some(body)).await["data"].clone()
}

/// Creates a document as `who`; answers its `_id`.
pub async fn create_as(s: &TestServer, who: &Account, model: &str, body: Value) -> String {
    id_of(&create_doc_as(s, who, model, body).await)
}

/// `PUT /api/:model/:id` as `who`; answers the updated document.
pub async fn update_as(s: &TestServer, who: &Account, model: &str, id: &str, body: Value) -> Value {
    let path = format!("/api/{model}/{id}");
    write_as(s, who, Method::PUT, &path, Some(body)).await["data"].clone()
}

/// `DELETE /api/:model/:id{query}` as `who`.
pub async fn delete_as(s: &TestServer, who: &Account, model: &str, id: &str, query: &str) {
    let path = format!("/api/{model}/{id}{query}");
    write_as(s, who, Method::DELETE, &path, None).await;
}

/// The `_id` of a document.
pub fn id_of(doc: &Value) -> String {
    doc["_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no _id: {doc}"))
        .to_owned()
}

//! `POST /setup` (the first admin), `jxp::add_admin`, and `POST /login/getjwt`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{
    NOTES, Oracle, SECRET, assert_forbidden, assert_login_failed, b64url, jwt_payload, unix_now,
};
use crate::harness::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Account, Auth, TestServer, create_user, get, keys_of, login,
    login_as, post, setup_admin, start, try_login,
};

/// Whether `auth` carries admin rights (only admins may list tokens).
async fn is_admin(s: &TestServer, auth: &Auth) -> bool {
    let (status, body) = get(s, "/api/token", auth).await;
    match status {
        StatusCode::OK => true,
        StatusCode::FORBIDDEN => false,
        other => panic!("/api/token: {other} {body}"),
    }
}

#[tokio::test]
async fn setup_creates_the_first_admin_once() {
    let s = start(&[], &[]).await;
    let oracle = Oracle::open(&s).await;
    // Refused input creates nothing.
    let (status, body) = post(&s, "/setup", &Auth::None, json!({"email": "x@example.com"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(oracle.count("user").await, 0);

    let (status, body) = post(
        &s,
        "/setup",
        &Auth::None,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "name": "Admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["email"], ADMIN_EMAIL, "{body}");
    assert_eq!(body["name"], "Admin", "{body}");
    let id = body["user_id"].as_str().unwrap().to_owned();
    let session = login(&s, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(session.user_id, id);
    assert!(
        is_admin(&s, &session.bearer()).await,
        "the first user is an admin"
    );
    let (status, me) = get(&s, &format!("/api/user/{id}"), &session.bearer()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["data"]["admin"], true);

    // A second setup is refused and creates nobody.
    let again = post(
        &s,
        "/setup",
        &Auth::None,
        json!({"email": "second@example.com", "password": "second-pw", "name": "Second"}),
    )
    .await;
    assert_forbidden(&again, "second /setup");
    assert_eq!(oracle.count("user").await, 1);
    let r = try_login(&s, "second@example.com", "second-pw").await;
    assert_login_failed(&(r.status, r.body), "the refused setup's user");
    // Not even with admin credentials: setup is for an empty server only.
    let again = post(
        &s,
        "/setup",
        &session.bearer(),
        json!({"email": "third@example.com", "password": "third-pw"}),
    )
    .await;
    assert_forbidden(&again, "third /setup");
    assert_eq!(oracle.count("user").await, 1);
}

#[tokio::test]
async fn setup_is_refused_once_any_user_exists() {
    let mut s = start(&[], &[]).await;
    let id = s.add_admin("root@example.com", "root-pw", "Root").await;
    assert_eq!(id.len(), 24);
    let session = login(&s, "ROOT@example.com", "root-pw").await;
    assert_eq!(session.user_id, id);
    assert!(
        is_admin(&s, &session.bearer()).await,
        "add_admin makes an admin"
    );
    let again = post(
        &s,
        "/setup",
        &Auth::None,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_forbidden(&again, "/setup after add_admin");
    let r = try_login(&s, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_login_failed(&(r.status, r.body), "the refused setup's user");
    // add_admin works next to an existing admin too.
    s.add_admin("root2@example.com", "root2-pw", "Root 2").await;
    let second = login(&s, "root2@example.com", "root2-pw").await;
    assert!(is_admin(&s, &second.bearer()).await);
}

struct World {
    s: TestServer,
    admin: Account,
    alice: Account,
}

async fn world(env: &[(&str, &str)]) -> World {
    let s = start(&[("notes", NOTES)], env).await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    World { s, admin, alice }
}

/// `POST /login/getjwt` for `email`, as `auth`.
async fn getjwt(s: &TestServer, auth: &Auth, email: &str) -> (StatusCode, Value) {
    post(s, "/login/getjwt", auth, json!({"email": email})).await
}

fn header_of(jwt: &str) -> Value {
    let head = jwt.split('.').next().unwrap();
    serde_json::from_slice(&super::support::b64_decode(head)).unwrap()
}

#[tokio::test]
async fn an_admin_gets_a_jwt_that_logs_the_user_in() {
    let w = world(&[("SHARED_SECRET", SECRET)]).await;
    let alice_session = login_as(&w.s, &w.alice).await;
    let apikey = alice_session.apikey.clone().unwrap();
    let admin = login_as(&w.s, &w.admin).await;
    let (status, body) = getjwt(&w.s, &admin.bearer(), "Alice@Example.com").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(keys_of(&body), ["email", "token"], "{body}");
    assert_eq!(body["email"], w.alice.email.as_str());
    let jwt = body["token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&jwt)["alg"], "HS256");
    let payload = jwt_payload(&jwt);
    assert_eq!(payload["id"], w.alice.id.as_str(), "{payload}");
    assert_eq!(payload["email"], w.alice.email.as_str(), "{payload}");
    assert!(payload["purpose"].is_string(), "{payload}");
    let exp = payload["exp"].as_i64().unwrap();
    let left = exp - unix_now();
    assert!(
        (2 * 86_400 - 120..=2 * 86_400 + 120).contains(&left),
        "a JWT lives two days: {left} s"
    );
    assert!(
        payload.get("apikey").is_none(),
        "the API key is not in the JWT: {payload}"
    );
    assert!(
        !payload.to_string().contains(&apikey),
        "the API key is not in the JWT: {payload}"
    );

    // The JWT works as a Bearer credential, as alice.
    let (status, note) = post(
        &w.s,
        "/api/notes",
        &Auth::bearer(&jwt),
        json!({"text": "jwt"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{note}");
    assert_eq!(note["data"]["_owner_id"], w.alice.id.as_str());
    let (status, body) = get(
        &w.s,
        &format!("/api/user/{}", w.alice.id),
        &Auth::bearer(&jwt),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !is_admin(&w.s, &Auth::bearer(&jwt)).await,
        "alice's JWT has alice's rights"
    );

    // Basic auth as admin works for getjwt too.
    let (status, body) = getjwt(&w.s, &w.admin.basic(), &w.admin.email).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(is_admin(&w.s, &Auth::bearer(body["token"].as_str().unwrap())).await);
}

#[tokio::test]
async fn forged_jwts_are_refused() {
    let w = world(&[("SHARED_SECRET", SECRET)]).await;
    let (status, body) = getjwt(&w.s, &w.admin.basic(), &w.alice.email).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jwt = body["token"].as_str().unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut payload = jwt_payload(jwt);
    // The same signature over a payload that names the admin instead.
    payload["id"] = json!(w.admin.id);
    payload["email"] = json!(w.admin.email);
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        b64url(payload.to_string().as_bytes()),
        parts[2]
    );
    // No signature at all.
    let none_header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", b64url(payload.to_string().as_bytes()));
    // A broken signature.
    let mut bad_sig = jwt.to_owned();
    let last = bad_sig.pop().unwrap();
    bad_sig.push(if last == 'A' { 'B' } else { 'A' });
    for (name, token) in [
        ("swapped payload", swapped),
        ("alg none", unsigned),
        ("bad signature", bad_sig),
    ] {
        assert_forbidden(&get(&w.s, "/api/notes", &Auth::bearer(&token)).await, name);
        assert_forbidden(
            &post(
                &w.s,
                "/api/notes",
                &Auth::bearer(&token),
                json!({"text": "x"}),
            )
            .await,
            name,
        );
    }
    let oracle = Oracle::open(&w.s).await;
    assert_eq!(oracle.count("notes").await, 0);
}

#[tokio::test]
async fn only_admins_get_jwts() {
    let w = world(&[("SHARED_SECRET", SECRET)]).await;
    let alice = login_as(&w.s, &w.alice).await;
    for (who, auth) in [("alice", alice.bearer()), ("alice's key", alice.key())] {
        let got = getjwt(&w.s, &auth, &w.alice.email).await;
        assert_forbidden(&got, who);
        assert!(got.1.get("token").is_none());
        let got = getjwt(&w.s, &auth, &w.admin.email).await;
        assert_forbidden(&got, &format!("{who} for the admin"));
    }
    let got = getjwt(&w.s, &Auth::None, &w.alice.email).await;
    assert_forbidden(&got, "anonymous");
    // An unknown email is a 404 for the admin.
    let (status, body) = getjwt(&w.s, &w.admin.basic(), "nobody@example.com").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.get("token").is_none());
}

#[tokio::test]
async fn no_jwts_without_a_shared_secret() {
    let w = world(&[]).await;
    let (status, body) = getjwt(&w.s, &w.admin.basic(), &w.alice.email).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["code"].is_string() && body["message"].is_string(),
        "{body}"
    );
    assert!(body.get("token").is_none());
}

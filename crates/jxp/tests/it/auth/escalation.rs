//! Privilege escalation by a non-admin: `admin`, `_owner_id`, other users' passwords, groups
//! and `password_override`; and that an admin may do each of these.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{MEMBERS, NOTES, OPEN, OWNED, Oracle, assert_forbidden, assert_login_failed};
use crate::harness::{
    self, Account, Auth, TestServer, delete, get, login, login_as, post, put, set_groups, try_login,
};

/// bcrypt (cost 4) of `OVERRIDE_PASSWORD`, for `password_override`.
const OVERRIDE_HASH: &str = "$2b$04$bc1uP1LoEgrop8CZvnEieORf6AEmd.WGFJM03u515wRWX2anGmY1C";
const OVERRIDE_PASSWORD: &str = "override-pass";

/// The built-in user model, but with self sign-up (`all = "c"`), so a create by a non-admin
/// reaches the `admin` check.
const SIGNUP_USER: &str = r#"
name = "User"
[fields]
name = "String"
email = { type = "String", unique = true, index = true, lowercase = true, trim = true }
password = "String"
admin = { type = "Boolean", default = false }
urlid = { type = "String", index = true }
temp_hash = { type = "String", private = true }
[perms]
admin = "crud"
owner = "ru"
user = "r"
all = "c"
"#;

struct World {
    s: TestServer,
    oracle: Oracle,
    admin: Account,
    alice: Account,
    bob: Account,
    /// Alice's bearer token.
    a: Auth,
}

async fn world(extra: &[(&str, &str)]) -> World {
    let mut models = vec![
        ("owned", OWNED),
        ("open", OPEN),
        ("members", MEMBERS),
        ("notes", NOTES),
    ];
    models.extend_from_slice(extra);
    let harness::World {
        s,
        admin,
        alice,
        bob,
    } = harness::World::start(&models, &[], ["alice", "bob"]).await;
    let a = login_as(&s, &alice).await.bearer();
    let oracle = Oracle::open(&s).await;
    World {
        s,
        oracle,
        admin,
        alice,
        bob,
        a,
    }
}

impl World {
    async fn user(&self, id: &str) -> Value {
        self.oracle.doc("user", id).await.unwrap()
    }

    /// `PUT {_owner_id: bob}` on `model/id` as `auth`.
    async fn give_to_bob(&self, model: &str, id: &str, auth: &Auth) -> (StatusCode, Value) {
        let path = format!("/api/{model}/{id}");
        put(&self.s, &path, auth, json!({"_owner_id": self.bob.id})).await
    }

    /// Asserts that `model/id` is still alice's.
    async fn assert_alices(&self, model: &str, id: &str) {
        assert_eq!(
            self.oracle.doc(model, id).await.unwrap()["_owner_id"],
            self.alice.id.as_str()
        );
    }
}

/// Asserts a write that may be refused or may succeed without doing what was asked.
#[track_caller]
fn assert_refused_or_ignored(got: &(StatusCode, Value)) {
    assert!(
        got.0 == StatusCode::OK || got.0 == StatusCode::FORBIDDEN,
        "{}",
        got.1
    );
}

#[tokio::test]
async fn a_non_admin_cannot_create_an_admin() {
    let w = world(&[]).await;
    let users = w.oracle.count("user").await;
    for admin in [json!(true), json!("true"), json!(1), json!(false)] {
        let got = post(
            &w.s,
            "/api/user",
            &w.a,
            json!({"name": "Mallory", "email": "mallory@example.com", "password": "m-pw", "admin": admin}),
        )
        .await;
        assert_forbidden(&got, &format!("create with admin={admin}"));
    }
    assert_eq!(w.oracle.count("user").await, users, "no user was created");
    assert_login_failed(
        &{
            let r = try_login(&w.s, "mallory@example.com", "m-pw").await;
            (r.status, r.body)
        },
        "the refused user",
    );
    // An admin can.
    let (status, body) = post(
        &w.s,
        "/api/user",
        &w.admin.basic(),
        json!({"name": "Root2", "email": "root2@example.com", "password": "r2-pw", "admin": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["admin"], true);
    let root2 = login(&w.s, "root2@example.com", "r2-pw").await;
    assert_eq!(
        get(&w.s, "/api/token", &root2.bearer()).await.0,
        StatusCode::OK,
        "the new admin has admin rights"
    );
}

#[tokio::test]
async fn self_sign_up_cannot_choose_admin() {
    let w = world(&[("user", SIGNUP_USER)]).await;
    let users = w.oracle.count("user").await;
    for (who, auth) in [("anonymous", Auth::None), ("alice", w.a.clone())] {
        for admin in [json!(true), json!("true"), json!(1), json!("yes")] {
            let got = post(
                &w.s,
                "/api/user",
                &auth,
                json!({"name": "Mallory", "email": "mallory@example.com", "password": "m-pw", "admin": admin}),
            )
            .await;
            assert_forbidden(&got, &format!("{who} sign-up with admin={admin}"));
        }
    }
    assert_eq!(w.oracle.count("user").await, users, "no user was created");
    // Without `admin`, or with `admin: false`, sign-up works and makes a plain user.
    for (i, extra) in [json!({}), json!({"admin": false})].into_iter().enumerate() {
        let mut body =
            json!({"name": "New", "email": format!("new{i}@example.com"), "password": "n-pw"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, created) = post(&w.s, "/api/user", &Auth::None, body).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        assert_eq!(created["data"]["admin"], false, "{created}");
        let id = created["data"]["_id"].as_str().unwrap();
        assert_eq!(w.user(id).await["admin"], false);
        let session = login(&w.s, &format!("new{i}@example.com"), "n-pw").await;
        assert_forbidden(
            &get(&w.s, "/api/token", &session.bearer()).await,
            "a signed-up user is no admin",
        );
    }
}

#[tokio::test]
async fn a_non_admin_cannot_make_themself_admin() {
    let w = world(&[]).await;
    let path = format!("/api/user/{}", w.alice.id);
    let before = w.user(&w.alice.id).await;
    for admin in [json!(true), json!("true"), json!(1)] {
        assert_forbidden(
            &put(&w.s, &path, &w.a, json!({"admin": admin})).await,
            &format!("PUT admin={admin}"),
        );
        assert_forbidden(
            &post(
                &w.s,
                &format!("/update/user/{}", w.alice.id),
                &w.a,
                json!({"name": "Alice", "admin": admin}),
            )
            .await,
            &format!("/update admin={admin}"),
        );
    }
    assert_eq!(
        w.user(&w.alice.id).await,
        before,
        "alice's record is unchanged"
    );
    assert_forbidden(
        &get(&w.s, "/api/token", &w.a).await,
        "alice is still no admin",
    );
    // Nor can she make bob an admin.
    assert_forbidden(
        &put(
            &w.s,
            &format!("/api/user/{}", w.bob.id),
            &w.a,
            json!({"admin": true}),
        )
        .await,
        "PUT admin on bob",
    );
    assert_eq!(w.user(&w.bob.id).await["admin"], false);
    // An admin can, and it applies to alice's current token at once.
    let (status, body) = put(&w.s, &path, &w.admin.basic(), json!({"admin": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["admin"], true);
    assert_eq!(get(&w.s, "/api/token", &w.a).await.0, StatusCode::OK);
}

/// A user may save their own record with `admin: false` in it (as a client that echoes the
/// record back does); that is no escalation.
#[tokio::test]
async fn admin_false_echoed_back_is_fine() {
    let w = world(&[]).await;
    let path = format!("/api/user/{}", w.alice.id);
    let (status, body) = put(
        &w.s,
        &path,
        &w.a,
        json!({"name": "Alice B", "admin": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "Alice B");
    assert_eq!(body["data"]["admin"], false);
    // The whole record as read back, system fields and all.
    let (status, got) = get(&w.s, &path, &w.a).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let (status, body) = put(&w.s, &path, &w.a, got["data"].clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored = w.user(&w.alice.id).await;
    assert_eq!(stored["admin"], false);
    assert_eq!(stored["name"], "Alice B");
}

#[tokio::test]
async fn a_non_admin_cannot_choose_or_change_the_owner() {
    let w = world(&[]).await;
    let b = login_as(&w.s, &w.bob).await.bearer();
    // On create, `_owner_id` is ignored: the owner is the creator.
    let (status, created) = post(
        &w.s,
        "/api/owned",
        &w.a,
        json!({"title": "mine", "_owner_id": w.bob.id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["data"]["_owner_id"], w.alice.id.as_str());
    let id = created["data"]["_id"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&w.s, &format!("/api/owned/{id}"), &b).await.0,
        StatusCode::NOT_FOUND
    );
    // Nor can the owner hand the document over with a PUT.
    let got = w.give_to_bob("owned", &id, &w.a).await;
    assert_refused_or_ignored(&got);
    w.assert_alices("owned", &id).await;
    // And bob cannot take it: a document he may not read is absent to him, as on GET.
    let got = w.give_to_bob("owned", &id, &b).await;
    assert_eq!(
        got.0,
        StatusCode::NOT_FOUND,
        "bob takes alice's document: {}",
        got.1
    );
    w.assert_alices("owned", &id).await;
    // On a model anyone may update, a PUT still cannot move the owner.
    let (status, open) = post(&w.s, "/api/open", &w.a, json!({"title": "o"})).await;
    assert_eq!(status, StatusCode::OK, "{open}");
    let open_id = open["data"]["_id"].as_str().unwrap().to_owned();
    let got = w.give_to_bob("open", &open_id, &b).await;
    assert_refused_or_ignored(&got);
    w.assert_alices("open", &open_id).await;

    // An admin may set and change `_owner_id`.
    let (status, by_admin) = post(
        &w.s,
        "/api/owned",
        &w.admin.basic(),
        json!({"title": "for bob", "_owner_id": w.bob.id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{by_admin}");
    assert_eq!(by_admin["data"]["_owner_id"], w.bob.id.as_str());
    let for_bob = by_admin["data"]["_id"].as_str().unwrap();
    assert_eq!(
        get(&w.s, &format!("/api/owned/{for_bob}"), &b).await.0,
        StatusCode::OK
    );
    let (status, moved) = put(
        &w.s,
        &format!("/api/open/{open_id}"),
        &w.admin.basic(),
        json!({"_owner_id": w.bob.id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        w.oracle.doc("open", &open_id).await.unwrap()["_owner_id"],
        w.bob.id.as_str()
    );
}

#[tokio::test]
async fn a_non_admin_cannot_change_another_users_password() {
    let w = world(&[]).await;
    let before = w.user(&w.bob.id).await;
    assert_forbidden(
        &put(
            &w.s,
            &format!("/api/user/{}", w.bob.id),
            &w.a,
            json!({"password": "hijacked"}),
        )
        .await,
        "PUT bob's password",
    );
    assert_forbidden(
        &post(
            &w.s,
            &format!("/update/user/{}", w.bob.id),
            &w.a,
            json!({"password": "hijacked"}),
        )
        .await,
        "/update bob's password",
    );
    assert_eq!(w.user(&w.bob.id).await, before);
    login_as(&w.s, &w.bob).await;
    let r = try_login(&w.s, &w.bob.email, "hijacked").await;
    assert_login_failed(&(r.status, r.body), "the refused password");
    // An admin can.
    let (status, body) = put(
        &w.s,
        &format!("/api/user/{}", w.bob.id),
        &w.admin.basic(),
        json!({"password": "bob-new-pw"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    login(&w.s, &w.bob.email, "bob-new-pw").await;
    let r = try_login(&w.s, &w.bob.email, &w.bob.password).await;
    assert_login_failed(&(r.status, r.body), "the old password");
}

#[tokio::test]
async fn a_non_admin_cannot_change_their_groups() {
    let w = world(&[]).await;
    let groups = format!("/groups/{}", w.alice.id);
    assert_forbidden(
        &put(&w.s, &groups, &w.a, json!({"group": "editors"})).await,
        "PUT /groups",
    );
    assert_forbidden(
        &post(&w.s, &groups, &w.a, json!({"group": ["editors"]})).await,
        "POST /groups",
    );
    assert_forbidden(
        &delete(&w.s, &format!("{groups}?group=editors"), &w.a).await,
        "DELETE /groups",
    );
    assert_eq!(
        w.oracle.count("usergroups").await,
        0,
        "no groups document was made"
    );
    assert_forbidden(
        &post(
            &w.s,
            "/api/usergroups",
            &w.a,
            json!({"user_id": w.alice.id, "groups": ["editors"]}),
        )
        .await,
        "POST /api/usergroups",
    );
    assert_eq!(
        w.oracle.count("usergroups").await,
        0,
        "no groups document was made"
    );
    assert_forbidden(&get(&w.s, "/api/members", &w.a).await, "alice is no editor");

    // With a groups document in place (the admin's doing), alice still cannot edit it.
    set_groups(&w.s, &w.admin.basic(), &w.alice.id, &["readers"]).await;
    let (status, doc) = get(&w.s, &groups, &w.a).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let doc_id = doc["_id"].as_str().unwrap().to_owned();
    let before = w.oracle.doc("usergroups", &doc_id).await.unwrap();
    let path = format!("/api/usergroups/{doc_id}");
    assert_forbidden(
        &put(&w.s, &path, &w.a, json!({"groups": ["readers", "editors"]})).await,
        "PUT /api/usergroups",
    );
    assert_forbidden(
        &post(
            &w.s,
            &format!("/update/usergroups/{doc_id}"),
            &w.a,
            json!({"groups": ["editors"]}),
        )
        .await,
        "/update/usergroups",
    );
    assert_forbidden(&delete(&w.s, &path, &w.a).await, "DELETE /api/usergroups");
    assert_forbidden(
        &put(&w.s, &groups, &w.a, json!({"group": "editors"})).await,
        "PUT /groups",
    );
    assert_eq!(w.oracle.doc("usergroups", &doc_id).await.unwrap(), before);
    assert_forbidden(
        &get(&w.s, "/api/members", &w.a).await,
        "alice is still no editor",
    );
    // Nor bob's.
    assert_forbidden(
        &put(
            &w.s,
            &format!("/groups/{}", w.bob.id),
            &w.a,
            json!({"group": "editors"}),
        )
        .await,
        "PUT bob's groups",
    );

    // An admin can, through either route.
    let (status, body) = put(
        &w.s,
        &path,
        &w.admin.basic(),
        json!({"groups": ["readers", "editors"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(get(&w.s, "/api/members", &w.a).await.0, StatusCode::OK);
}

#[tokio::test]
async fn password_override_needs_an_admin() {
    let w = world(&[]).await;
    let before = w.user(&w.alice.id).await;
    for path in [
        format!("/api/user/{}?password_override=1", w.alice.id),
        format!("/api/user/{}?password_override=true", w.bob.id),
    ] {
        assert_forbidden(
            &put(&w.s, &path, &w.a, json!({"password": OVERRIDE_HASH})).await,
            &path,
        );
    }
    let notes = w.oracle.count("notes").await;
    assert_forbidden(
        &post(
            &w.s,
            "/api/notes?password_override=1",
            &w.a,
            json!({"text": "x"}),
        )
        .await,
        "create with password_override",
    );
    assert_eq!(w.oracle.count("notes").await, notes);
    assert_eq!(w.user(&w.alice.id).await, before);
    login_as(&w.s, &w.alice).await;
    let r = try_login(&w.s, &w.alice.email, OVERRIDE_PASSWORD).await;
    assert_login_failed(&(r.status, r.body), "the refused override");
    // An admin may store a ready-made hash.
    let (status, body) = put(
        &w.s,
        &format!("/api/user/{}?password_override=1", w.bob.id),
        &w.admin.basic(),
        json!({"password": OVERRIDE_HASH}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["data"].get("password").is_none());
    login(&w.s, &w.bob.email, OVERRIDE_PASSWORD).await;
}

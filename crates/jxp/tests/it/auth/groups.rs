//! `/groups/:user_id`: GET (the user themself or an admin), PUT adds, POST replaces, DELETE
//! removes; JSON and form bodies; changes apply to permissions at once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{MEMBERS, Oracle, assert_forbidden};
use crate::harness::{
    self, Account, Auth, TestServer, delete, get, login_as, post, put, send_form,
};

struct World {
    s: TestServer,
    admin: Auth,
    alice: Account,
    bob: Account,
}

async fn world() -> World {
    let harness::World {
        s,
        admin,
        alice,
        bob,
    } = harness::World::start(&[("members", MEMBERS)], &[], ["alice", "bob"]).await;
    World {
        s,
        admin: admin.basic(),
        alice,
        bob,
    }
}

#[track_caller]
fn assert_groups(got: &(StatusCode, Value), user_id: &str, want: &[&str], context: &str) {
    assert_eq!(got.0, StatusCode::OK, "{context}: {}", got.1);
    assert_eq!(got.1["groups"], json!(want), "{context}: {}", got.1);
    assert_eq!(got.1["user_id"], user_id, "{context}: {}", got.1);
    assert!(
        got.1["_id"].as_str().is_some_and(|id| id.len() == 24),
        "{context}: {}",
        got.1
    );
}

#[tokio::test]
async fn an_admin_adds_replaces_and_removes_groups() {
    let w = world().await;
    let uid = &w.alice.id;
    let path = format!("/groups/{uid}");
    // No groups yet.
    let (status, body) = get(&w.s, &path, &w.admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["groups"], json!([]), "{body}");

    // PUT adds: a string, an array, a form with group[i]; duplicates are skipped.
    let got = put(&w.s, &path, &w.admin, json!({"group": "a"})).await;
    assert_groups(&got, uid, &["a"], "PUT string");
    let got = put(&w.s, &path, &w.admin, json!({"group": ["b", "c"]})).await;
    assert_groups(&got, uid, &["a", "b", "c"], "PUT array");
    let got = send_form(
        &w.s,
        Method::PUT,
        &path,
        &w.admin,
        "group%5B0%5D=d&group%5B1%5D=e",
    )
    .await;
    assert_groups(&got, uid, &["a", "b", "c", "d", "e"], "PUT form");
    let got = put(&w.s, &path, &w.admin, json!({"group": ["a", "e"]})).await;
    assert_groups(&got, uid, &["a", "b", "c", "d", "e"], "PUT duplicates");
    let got = get(&w.s, &path, &w.admin).await;
    assert_groups(&got, uid, &["a", "b", "c", "d", "e"], "GET after PUTs");

    // POST replaces.
    let got = post(&w.s, &path, &w.admin, json!({"group": ["x", "y"]})).await;
    assert_groups(&got, uid, &["x", "y"], "POST array");
    let got = send_form(&w.s, Method::POST, &path, &w.admin, "group=z").await;
    assert_groups(&got, uid, &["z"], "POST form");
    let got = post(&w.s, &path, &w.admin, json!({"group": ["a", "b", "c"]})).await;
    assert_groups(&got, uid, &["a", "b", "c"], "POST again");

    // DELETE removes what `?group=` names.
    let got = delete(&w.s, &format!("{path}?group=a"), &w.admin).await;
    assert_groups(&got, uid, &["b", "c"], "DELETE a");
    let got = delete(&w.s, &format!("{path}?group=nope"), &w.admin).await;
    assert_groups(&got, uid, &["b", "c"], "DELETE a group she is not in");
    let got = get(&w.s, &path, &w.admin).await;
    assert_groups(&got, uid, &["b", "c"], "GET at the end");

    // Only alice's groups changed, in one document.
    let got = get(&w.s, &format!("/groups/{}", w.bob.id), &w.admin).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["groups"], json!([]), "{}", got.1);
    let oracle = Oracle::open(&w.s).await;
    assert_eq!(oracle.count("usergroups").await, 1);
}

#[tokio::test]
async fn bad_group_requests_change_nothing() {
    let w = world().await;
    let path = format!("/groups/{}", w.alice.id);
    let got = put(&w.s, &path, &w.admin, json!({"group": "editors"})).await;
    assert_groups(&got, &w.alice.id, &["editors"], "setup");
    for (method, body) in [
        (Method::PUT, json!({})),
        (Method::PUT, json!({"group": 5})),
        (Method::POST, json!({"group": [true]})),
        (Method::PUT, json!({"group": "bad name!"})),
    ] {
        let r = crate::harness::send(&w.s, method.clone(), &path, &w.admin, Some(&body)).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {body}: {}",
            r.body
        );
        assert!(
            r.body["code"].is_string() && r.body["message"].is_string(),
            "{}",
            r.body
        );
    }
    let r = delete(&w.s, &path, &w.admin).await;
    assert_eq!(
        r.0,
        StatusCode::BAD_REQUEST,
        "DELETE without a group: {}",
        r.1
    );
    let got = get(&w.s, &path, &w.admin).await;
    assert_groups(&got, &w.alice.id, &["editors"], "unchanged");
}

#[tokio::test]
async fn who_may_read_and_change_groups() {
    let w = world().await;
    let path = format!("/groups/{}", w.alice.id);
    let got = put(&w.s, &path, &w.admin, json!({"group": "editors"})).await;
    assert_groups(&got, &w.alice.id, &["editors"], "setup");
    let a = login_as(&w.s, &w.alice).await;
    let b = login_as(&w.s, &w.bob).await;
    // The user themself may read, any way they authenticate.
    for auth in [a.bearer(), a.key(), w.alice.basic()] {
        let got = get(&w.s, &path, &auth).await;
        assert_groups(&got, &w.alice.id, &["editors"], "alice reads her own");
    }
    // Another non-admin and anonymous callers may not.
    assert_forbidden(
        &get(&w.s, &path, &b.bearer()).await,
        "bob reads alice's groups",
    );
    assert_forbidden(
        &get(&w.s, &path, &Auth::None).await,
        "anonymous reads alice's groups",
    );
    // Nor may anyone but an admin change them.
    for (who, auth) in [
        ("alice", a.bearer()),
        ("bob", b.bearer()),
        ("anonymous", Auth::None),
    ] {
        assert_forbidden(
            &put(&w.s, &path, &auth, json!({"group": "x"})).await,
            &format!("{who} PUT"),
        );
        assert_forbidden(
            &post(&w.s, &path, &auth, json!({"group": ["x"]})).await,
            &format!("{who} POST"),
        );
        assert_forbidden(
            &delete(&w.s, &format!("{path}?group=editors"), &auth).await,
            &format!("{who} DELETE"),
        );
    }
    let got = get(&w.s, &path, &w.admin).await;
    assert_groups(&got, &w.alice.id, &["editors"], "unchanged");
    // An unknown user is a 404.
    let got = get(&w.s, "/groups/0123456789abcdef01234567", &w.admin).await;
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{}", got.1);
}

#[tokio::test]
async fn group_changes_apply_at_once() {
    let w = world().await;
    let oracle = Oracle::open(&w.s).await;
    let (status, created) = post(&w.s, "/api/members", &w.admin, json!({"title": "t"})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let doc = format!("/api/members/{}", created["data"]["_id"].as_str().unwrap());
    let id = created["data"]["_id"].as_str().unwrap().to_owned();
    let session = login_as(&w.s, &w.alice).await;
    let ways = [session.bearer(), session.key(), w.alice.basic()];
    for auth in &ways {
        assert_forbidden(&get(&w.s, "/api/members", auth).await, "before: list");
        assert_forbidden(&get(&w.s, &doc, auth).await, "before: one");
    }
    // Joining `editors` gives read and update, on the same token, at once.
    let path = format!("/groups/{}", w.alice.id);
    let got = put(&w.s, &path, &w.admin, json!({"group": "editors"})).await;
    assert_groups(&got, &w.alice.id, &["editors"], "join");
    for auth in &ways {
        let (status, body) = get(&w.s, "/api/members", auth).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"].as_array().unwrap().len(), 1);
        assert_eq!(get(&w.s, &doc, auth).await.0, StatusCode::OK);
    }
    let (status, body) = put(&w.s, &doc, &session.bearer(), json!({"title": "edited"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // `editors` has no `d`.
    assert_forbidden(
        &delete(&w.s, &doc, &session.bearer()).await,
        "editor delete",
    );
    // Leaving stops it at once.
    let got = delete(&w.s, &format!("{path}?group=editors"), &w.admin).await;
    assert_groups(&got, &w.alice.id, &[], "leave");
    for auth in &ways {
        assert_forbidden(&get(&w.s, "/api/members", auth).await, "after: list");
        assert_forbidden(&get(&w.s, &doc, auth).await, "after: one");
        assert_forbidden(
            &put(&w.s, &doc, auth, json!({"title": "late"})).await,
            "after: update",
        );
    }
    assert_eq!(oracle.doc("members", &id).await.unwrap()["title"], "edited");
    // POST (replace) works the same way in both directions.
    let got = post(&w.s, &path, &w.admin, json!({"group": ["editors"]})).await;
    assert_groups(&got, &w.alice.id, &["editors"], "replace in");
    assert_eq!(get(&w.s, &doc, &session.bearer()).await.0, StatusCode::OK);
    let got = post(&w.s, &path, &w.admin, json!({"group": ["others"]})).await;
    assert_groups(&got, &w.alice.id, &["others"], "replace out");
    assert_forbidden(&get(&w.s, &doc, &session.bearer()).await, "replaced out");
}

//! The permission matrix: models with different `[perms]` × callers × c/r/u/d, owner-narrowed
//! lists and counts, and models without perms.
//!
//! What a refusal looks like, from `crates/jxp-core/src/{read,write}.rs`:
//! - a caller with no right at all on the model gets 403 for every verb;
//! - a caller whose only read right is `owner` gets **404** on GET one of someone else's
//!   document (`get_one`: "someone else's document is as good as absent to an owner-only
//!   reader"), and lists and counts narrowed to their own documents;
//! - update and delete check `owner` against the stored document's `_owner_id`: a caller who
//!   may not read the document gets the 404 of a missing one (no existence oracle), one who
//!   may read it but not change it a 403.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{MEMBERS, OPEN, OWNED, Oracle, assert_forbidden};
use crate::harness::{
    self, Account, Auth, TestServer, create_user, delete, get, login_as, post, put, set_groups,
};

const READONLY: &str = r#"
name = "Readonly"
[fields]
title = "String"
[perms]
all = "r"
admin = "crud"
"#;

const PRIVATE: &str = r#"
name = "Private"
[fields]
title = "String"
"#;

/// Everyone reads; users create; only the owner updates and deletes.
const SHARED: &str = r#"
name = "Shared"
[fields]
title = "String"
[perms]
all = "r"
user = "c"
owner = "ud"
"#;

const MODELS: &[(&str, &str)] = &[
    ("open", OPEN),
    ("shared", SHARED),
    ("readonly", READONLY),
    ("owned", OWNED),
    ("members", MEMBERS),
    ("private", PRIVATE),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anon,
    /// Alice: the owner of the documents under test in `open` and `owned`.
    A,
    /// Bob: another user.
    B,
    /// Ed: a user in the custom group `editors`.
    Editor,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    C,
    R,
    U,
    D,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Allow,
    Forbidden,
    /// Owner-only readers do not see someone else's document.
    NotFound,
}

use Caller::{A, Admin, Anon, B, Editor};
use Verb::{C, D, R, U};
use Want::{Allow, Forbidden as No, NotFound as Hidden};

/// `(model, caller, [c, r, u, d])`.
const MATRIX: &[(&str, Caller, [Want; 4])] = &[
    ("open", Anon, [Allow, Allow, Allow, Allow]),
    ("open", A, [Allow, Allow, Allow, Allow]),
    ("open", B, [Allow, Allow, Allow, Allow]),
    ("open", Editor, [Allow, Allow, Allow, Allow]),
    ("open", Admin, [Allow, Allow, Allow, Allow]),
    ("readonly", Anon, [No, Allow, No, No]),
    ("readonly", A, [No, Allow, No, No]),
    ("readonly", B, [No, Allow, No, No]),
    ("readonly", Editor, [No, Allow, No, No]),
    ("readonly", Admin, [Allow, Allow, Allow, Allow]),
    // The document under test belongs to A.
    ("owned", Anon, [No, No, No, No]),
    ("owned", A, [Allow, Allow, Allow, Allow]),
    // Someone else's document is absent to them for every verb, as for GET.
    ("owned", B, [Allow, Hidden, Hidden, Hidden]),
    ("owned", Editor, [Allow, Hidden, Hidden, Hidden]),
    // `admin` has no letters on `owned`: an admin is just another user there.
    ("owned", Admin, [Allow, Hidden, Hidden, Hidden]),
    // The document under test belongs to A; others may read it, so they are told 403.
    ("shared", Anon, [No, Allow, No, No]),
    ("shared", A, [Allow, Allow, Allow, Allow]),
    ("shared", B, [Allow, Allow, No, No]),
    ("shared", Admin, [Allow, Allow, No, No]),
    ("members", Anon, [No, No, No, No]),
    ("members", A, [No, No, No, No]),
    ("members", B, [No, No, No, No]),
    ("members", Editor, [No, Allow, Allow, No]),
    ("members", Admin, [Allow, Allow, Allow, Allow]),
    ("private", Anon, [No, No, No, No]),
    ("private", A, [No, No, No, No]),
    ("private", B, [No, No, No, No]),
    ("private", Editor, [No, No, No, No]),
    ("private", Admin, [No, No, No, No]),
];

struct World {
    s: TestServer,
    oracle: Oracle,
    admin: Account,
    alice: Account,
    bob: Account,
    ed: Account,
    /// Bearer tokens; the admin uses Basic, Bob an API key, to mix the ways in.
    auths: Vec<(Caller, Auth)>,
}

impl World {
    async fn new() -> Self {
        let harness::World {
            s,
            admin,
            alice,
            bob,
        } = harness::World::start(MODELS, &[], ["alice", "bob"]).await;
        let ed = create_user(&s, &admin.basic(), "ed").await;
        set_groups(&s, &admin.basic(), &ed.id, &["editors"]).await;
        let auths = vec![
            (Anon, Auth::None),
            (A, login_as(&s, &alice).await.bearer()),
            (B, login_as(&s, &bob).await.key()),
            (Editor, login_as(&s, &ed).await.bearer()),
            (Admin, admin.basic()),
        ];
        let oracle = Oracle::open(&s).await;
        World {
            s,
            oracle,
            admin,
            alice,
            bob,
            ed,
            auths,
        }
    }

    fn auth(&self, who: Caller) -> &Auth {
        &self.auths.iter().find(|(c, _)| *c == who).unwrap().1
    }

    /// A fresh document to act on: A's where A may create, the admin's where only the admin
    /// may, and the server's own in `private`.
    async fn target(&self, model: &str) -> String {
        let body = json!({"title": "original"});
        let creator = match model {
            "open" | "owned" | "shared" => A,
            "readonly" | "members" => Admin,
            _ => return self.oracle.create(model, body).await,
        };
        let (status, created) =
            post(&self.s, &format!("/api/{model}"), self.auth(creator), body).await;
        assert_eq!(status, StatusCode::OK, "{model}: {created}");
        let doc = &created["data"];
        let owner = if creator == A {
            &self.alice.id
        } else {
            &self.admin.id
        };
        assert_eq!(doc["_owner_id"], owner.as_str(), "{model}: {created}");
        doc["_id"].as_str().unwrap().to_owned()
    }
}

#[track_caller]
fn check(got: &(StatusCode, Value), want: Want, context: &str) {
    match want {
        Allow => assert!(
            got.0.is_success(),
            "{context}: want 2xx: {} {}",
            got.0,
            got.1
        ),
        No => assert_forbidden(got, context),
        Hidden => {
            assert_eq!(got.0, StatusCode::NOT_FOUND, "{context}: {}", got.1);
            assert!(got.1["code"].is_string(), "{context}: {}", got.1);
        }
    }
}

#[tokio::test]
async fn permission_matrix() {
    let w = World::new().await;
    for (model, caller, wants) in MATRIX {
        let auth = w.auth(*caller);
        for (verb, want) in [C, R, U, D].into_iter().zip(*wants) {
            let context = format!("{model} {caller:?} {verb:?}");
            let id = w.target(model).await;
            let before = w.oracle.doc(model, &id).await.unwrap();
            let count_before = w.oracle.count(model).await;
            let path = format!("/api/{model}/{id}");
            let got = match verb {
                C => {
                    post(
                        &w.s,
                        &format!("/api/{model}"),
                        auth,
                        json!({"title": "new"}),
                    )
                    .await
                }
                R => get(&w.s, &path, auth).await,
                U => put(&w.s, &path, auth, json!({"title": "changed"})).await,
                D => delete(&w.s, &path, auth).await,
            };
            check(&got, want, &context);
            let after = w.oracle.doc(model, &id).await.unwrap();
            let count_after = w.oracle.count(model).await;
            match (verb, want) {
                (C, Allow) => {
                    assert_eq!(count_after, count_before + 1, "{context}");
                    assert_eq!(got.1["data"]["title"], "new", "{context}");
                }
                (R, Allow) => {
                    assert_eq!(got.1["data"]["_id"], id.as_str(), "{context}");
                    assert_eq!(got.1["data"]["title"], "original", "{context}");
                }
                (U, Allow) => {
                    assert_eq!(after["title"], "changed", "{context}");
                    assert_eq!(got.1["data"]["title"], "changed", "{context}");
                }
                (D, Allow) => assert_eq!(after["_deleted"], true, "{context}"),
                _ => {
                    assert_eq!(
                        after, before,
                        "{context}: a refused request changed the document"
                    );
                    assert_eq!(
                        count_after, count_before,
                        "{context}: a refused request created"
                    );
                    let text = got.1.to_string();
                    assert!(
                        !text.contains("original"),
                        "{context}: the refusal shows the document: {text}"
                    );
                }
            }
        }
    }
}

/// PUT and DELETE on someone else's owner-only document answer exactly what they answer on a
/// missing one, as GET does: status and body alike, the id aside.
#[tokio::test]
async fn writes_to_a_hidden_document_look_like_writes_to_a_missing_one() {
    let w = World::new().await;
    let id = w.target("owned").await;
    let missing = "0123456789abcdef01234567";
    let bob = w.auth(B);
    for (verb, hidden, absent) in [
        (
            "PUT",
            put(
                &w.s,
                &format!("/api/owned/{id}"),
                bob,
                json!({"title": "x"}),
            )
            .await,
            put(
                &w.s,
                &format!("/api/owned/{missing}"),
                bob,
                json!({"title": "x"}),
            )
            .await,
        ),
        (
            "DELETE",
            delete(&w.s, &format!("/api/owned/{id}"), bob).await,
            delete(&w.s, &format!("/api/owned/{missing}"), bob).await,
        ),
        (
            "GET",
            get(&w.s, &format!("/api/owned/{id}"), bob).await,
            get(&w.s, &format!("/api/owned/{missing}"), bob).await,
        ),
    ] {
        assert_eq!(hidden.0, StatusCode::NOT_FOUND, "{verb}: {}", hidden.1);
        assert_eq!(absent.0, StatusCode::NOT_FOUND, "{verb}: {}", absent.1);
        let hidden = hidden.1.to_string().replace(&id, "ID");
        let absent = absent.1.to_string().replace(missing, "ID");
        assert_eq!(hidden, absent, "{verb}");
    }
    assert_eq!(
        w.oracle.doc("owned", &id).await.unwrap()["title"],
        "original"
    );
}

/// `POST /update/:model/:id` is an update like PUT and obeys the same rights.
#[tokio::test]
async fn update_route_obeys_the_same_rights() {
    let w = World::new().await;
    for (model, caller, wants) in MATRIX {
        let want = wants[2];
        let id = w.target(model).await;
        let before = w.oracle.doc(model, &id).await.unwrap();
        let got = post(
            &w.s,
            &format!("/update/{model}/{id}"),
            w.auth(*caller),
            json!({"title": "changed"}),
        )
        .await;
        let context = format!("/update {model} {caller:?}");
        check(&got, want, &context);
        let after = w.oracle.doc(model, &id).await.unwrap();
        if want == Allow {
            assert_eq!(after["title"], "changed", "{context}");
        } else {
            assert_eq!(after, before, "{context}");
        }
    }
}

/// Where a user's only read right is `owner`, lists and counts hold exactly their own
/// documents, whatever filter they add.
#[tokio::test]
async fn owner_only_readers_list_and_count_their_own() {
    let w = World::new().await;
    let mut mine = Vec::new();
    for _ in 0..2 {
        mine.push(w.target("owned").await);
    }
    let (status, by_bob) = post(&w.s, "/api/owned", w.auth(B), json!({"title": "bob's"})).await;
    assert_eq!(status, StatusCode::OK, "{by_bob}");
    let bobs = by_bob["data"]["_id"].as_str().unwrap().to_owned();
    assert_eq!(w.oracle.count("owned").await, 3);
    let cases: [(Caller, &str, &[&String]); 4] = [
        (A, &w.alice.id, &[&mine[0], &mine[1]]),
        (B, &w.bob.id, &[&bobs]),
        (Editor, &w.ed.id, &[]),
        (Admin, &w.admin.id, &[]),
    ];
    for (caller, uid, want) in cases {
        let auth = w.auth(caller);
        for path in [
            "/api/owned".to_owned(),
            "/api/owned?limit=10&page=1".to_owned(),
            format!("/api/owned?filter[_owner_id]={}", w.alice.id),
            format!("/api/owned?filter[_owner_id]=$ne:{uid}"),
        ] {
            let (status, body) = get(&w.s, &path, auth).await;
            assert_eq!(status, StatusCode::OK, "{caller:?} {path}: {body}");
            let data = body["data"].as_array().unwrap();
            for doc in data {
                assert_eq!(doc["_owner_id"], uid, "{caller:?} {path}: {body}");
            }
            if path == "/api/owned" {
                let mut got: Vec<&str> = data.iter().map(|d| d["_id"].as_str().unwrap()).collect();
                let mut expected: Vec<&str> = want.iter().map(|s| s.as_str()).collect();
                got.sort_unstable();
                expected.sort_unstable();
                assert_eq!(got, expected, "{caller:?}");
            }
            if let Some(count) = body.get("count") {
                assert_eq!(
                    count.as_u64().unwrap(),
                    data.len() as u64,
                    "{caller:?} {path}: {body}"
                );
            }
        }
        let (status, body) = get(&w.s, "/count/owned", auth).await;
        assert_eq!(status, StatusCode::OK, "{caller:?}: {body}");
        assert_eq!(body, json!({"count": want.len()}), "{caller:?}");
        let (status, body) = get(
            &w.s,
            &format!("/count/owned?filter[_owner_id]=$ne:{uid}"),
            auth,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{caller:?}: {body}");
        assert_eq!(
            body,
            json!({"count": 0}),
            "{caller:?}: others' documents counted"
        );
    }
    // Anonymous callers have no read right at all here.
    assert_forbidden(
        &get(&w.s, "/api/owned", &Auth::None).await,
        "anonymous list",
    );
    assert_forbidden(
        &get(&w.s, "/count/owned", &Auth::None).await,
        "anonymous count",
    );
}

/// A model without perms is not served, to anyone, on any route.
#[tokio::test]
async fn a_model_without_perms_is_not_served() {
    let w = World::new().await;
    let id = w.target("private").await;
    for (caller, auth) in &w.auths {
        for path in [
            "/api/private".to_owned(),
            "/count/private".to_owned(),
            format!("/api/private/{id}"),
        ] {
            assert_forbidden(
                &get(&w.s, &path, auth).await,
                &format!("{caller:?} GET {path}"),
            );
        }
        assert_forbidden(
            &post(&w.s, "/api/private", auth, json!({"title": "x"})).await,
            &format!("{caller:?} create"),
        );
        assert_forbidden(
            &put(
                &w.s,
                &format!("/api/private/{id}"),
                auth,
                json!({"title": "x"}),
            )
            .await,
            &format!("{caller:?} update"),
        );
        assert_forbidden(
            &delete(&w.s, &format!("/api/private/{id}?_permaDelete=1"), auth).await,
            &format!("{caller:?} perma delete"),
        );
    }
    assert_eq!(w.oracle.count("private").await, 1);
    assert_eq!(
        w.oracle.doc("private", &id).await.unwrap()["title"],
        "original"
    );
}

/// JXP's `/model` leaves out models whose perms are all empty; where SPEC is silent, JXP's
/// behaviour is the default.
#[tokio::test]
async fn a_model_without_perms_is_not_listed() {
    let w = World::new().await;
    let (status, body) = get(&w.s, "/model", w.auth(A)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !body.to_string().contains("\"private\""),
        "a model nobody may use is listed: {body}"
    );
}

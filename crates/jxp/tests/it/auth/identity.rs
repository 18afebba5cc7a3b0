//! Who a request is: Basic, Bearer, `X-API-Key`, `?apikey=`; anonymous without credentials;
//! 403 for wrong, expired or revoked ones; secrets long, distinct and never returned.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{NOTES, Oracle, assert_forbidden, eventually, is_long_hex};
use crate::harness::{Auth, Session, TestServer, World, get, login_as, post, send};

async fn world(env: &[(&str, &str)]) -> World {
    World::start(&[("notes", NOTES)], env, ["alice", "bob"]).await
}

/// Creates a note as `auth` and answers its `_owner_id`, which says who the server took the
/// caller to be.
async fn owner_of_new_note(s: &TestServer, auth: &Auth) -> String {
    let (status, body) = post(s, "/api/notes", auth, json!({"text": "hello"})).await;
    assert_eq!(status, StatusCode::OK, "{auth:?}: {body}");
    body["data"]["_owner_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn all_four_ways_identify_the_user() {
    let w = world(&[]).await;
    let session = login_as(&w.s, &w.alice).await;
    let key = session.apikey.clone().unwrap();
    let ways = [
        ("basic", w.alice.basic()),
        ("bearer", session.bearer()),
        ("x-api-key", Auth::key(&key)),
        ("?apikey=", Auth::QueryKey(key.clone())),
        (
            "lower-case scheme",
            Auth::Raw(format!("bearer {}", session.token)),
        ),
    ];
    for (name, auth) in &ways {
        assert_eq!(
            owner_of_new_note(&w.s, auth).await,
            w.alice.id,
            "{name} identifies alice"
        );
        // And a route that needs a logged-in user answers.
        let (status, body) = get(&w.s, &format!("/api/user/{}", w.alice.id), auth).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
    }
    // Bob's credentials are bob.
    let bob = login_as(&w.s, &w.bob).await;
    assert_eq!(owner_of_new_note(&w.s, &bob.key()).await, w.bob.id);
}

#[tokio::test]
async fn no_credentials_is_anonymous() {
    let w = world(&[]).await;
    let oracle = Oracle::open(&w.s).await;
    // `all = "r"` lets anonymous callers read notes …
    owner_of_new_note(&w.s, &w.alice.basic()).await;
    let (status, body) = get(&w.s, "/api/notes", &Auth::None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    // … but nothing else.
    assert_forbidden(
        &post(&w.s, "/api/notes", &Auth::None, json!({"text": "anon"})).await,
        "anonymous create",
    );
    assert_eq!(
        oracle.count("notes").await,
        1,
        "the refused create wrote nothing"
    );
    assert_forbidden(
        &get(&w.s, "/api/user", &Auth::None).await,
        "anonymous user list",
    );
    assert_forbidden(
        &get(&w.s, &format!("/api/user/{}", w.alice.id), &Auth::None).await,
        "anonymous user read",
    );
}

/// Every bad credential is a 403 `{code, message}` even where anonymous callers would be let
/// in: a wrong credential never falls back to anonymous.
#[tokio::test]
async fn wrong_credentials_are_forbidden() {
    let w = world(&[]).await;
    let oracle = Oracle::open(&w.s).await;
    let session = login_as(&w.s, &w.alice).await;
    let bad = [
        ("wrong Basic password", Auth::basic(&w.alice.email, "nope")),
        (
            "unknown Basic email",
            Auth::basic("nobody@example.com", "x"),
        ),
        (
            "Basic without a colon",
            Auth::Raw(format!("Basic {}", STANDARD.encode(b"alice@example.com"))),
        ),
        ("Basic that is not base64", Auth::Raw("Basic !!!".into())),
        ("unknown token", Auth::bearer(&"0f".repeat(32))),
        ("a token with a character changed", {
            let mut t = session.token.clone();
            let last = if t.ends_with('0') { "1" } else { "0" };
            t.pop();
            t.push_str(last);
            Auth::bearer(&t)
        }),
        (
            "the API key used as a token",
            Auth::bearer(session.apikey.as_deref().unwrap()),
        ),
        ("the token used as an API key", Auth::key(&session.token)),
        ("unknown X-API-Key", Auth::key(&"ab".repeat(32))),
        ("unknown ?apikey=", Auth::QueryKey("cd".repeat(32))),
        ("empty X-API-Key", Auth::key("")),
        (
            "garbage scheme",
            Auth::Raw("Digest username=\"alice\"".into()),
        ),
        ("bare word", Auth::Raw("letmein".into())),
        (
            "a JWT on a server without SHARED_SECRET",
            Auth::bearer("eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IngifQ.c2ln"),
        ),
    ];
    for (name, auth) in &bad {
        // A readable-by-anyone list …
        assert_forbidden(&get(&w.s, "/api/notes", auth).await, name);
        // … a user-only read, and a create.
        assert_forbidden(
            &get(&w.s, &format!("/api/user/{}", w.alice.id), auth).await,
            name,
        );
        assert_forbidden(
            &post(&w.s, "/api/notes", auth, json!({"text": "x"})).await,
            name,
        );
    }
    assert_eq!(
        oracle.count("notes").await,
        0,
        "no refused create wrote anything"
    );
    // A good credential next to a bad one: the Authorization header is what counts.
    let mixed = send(
        &w.s,
        Method::GET,
        &format!("/api/notes?apikey={}", session.apikey.as_deref().unwrap()),
        &Auth::bearer(&"0f".repeat(32)),
        None,
    )
    .await;
    assert_forbidden(
        &(mixed.status, mixed.body),
        "bad bearer with a good ?apikey=",
    );
}

#[tokio::test]
async fn revoked_credentials_are_forbidden() {
    let w = world(&[]).await;
    let session = login_as(&w.s, &w.alice).await;
    let (status, body) = get(&w.s, "/logout", &session.bearer()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_forbidden(
        &get(&w.s, "/api/notes", &session.bearer()).await,
        "revoked token",
    );
    // A deleted user's credentials stop working too. (Their API key and tokens refer to the
    // user, so the delete cascades to them.)
    let bob = login_as(&w.s, &w.bob).await;
    let (status, body) = crate::harness::delete(
        &w.s,
        &format!("/api/user/{}?_cascade=1", w.bob.id),
        &w.admin.basic(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (name, auth) in [
        ("token", bob.bearer()),
        ("api key", bob.key()),
        ("basic", w.bob.basic()),
    ] {
        assert_forbidden(
            &get(&w.s, "/api/notes", &auth).await,
            &format!("deleted user's {name}"),
        );
    }
}

#[tokio::test]
async fn expired_tokens_are_forbidden() {
    let w = world(&[("TOKEN_EXPIRY", "1")]).await;
    let session = login_as(&w.s, &w.alice).await;
    assert_eq!(owner_of_new_note(&w.s, &session.bearer()).await, w.alice.id);
    let expired = eventually(Duration::from_secs(5), || async {
        get(&w.s, "/api/notes", &session.bearer()).await.0 == StatusCode::FORBIDDEN
    })
    .await;
    assert!(expired, "the token still works 5 s after it expired");
    assert_forbidden(
        &post(
            &w.s,
            "/api/notes",
            &session.bearer(),
            json!({"text": "late"}),
        )
        .await,
        "expired token",
    );
    // The API key does not expire.
    assert_eq!(owner_of_new_note(&w.s, &session.key()).await, w.alice.id);
}

#[tokio::test]
async fn tokens_and_keys_are_long_random_and_per_user() {
    let w = world(&[]).await;
    let a: Session = login_as(&w.s, &w.alice).await;
    let b: Session = login_as(&w.s, &w.bob).await;
    let a2 = login_as(&w.s, &w.alice).await;
    let secrets = [
        &a.token,
        a.apikey.as_ref().unwrap(),
        &a.refresh,
        &b.token,
        b.apikey.as_ref().unwrap(),
        &b.refresh,
        &a2.token,
        &a2.refresh,
    ];
    for s in secrets {
        assert!(is_long_hex(s, 32), "not ≥128 bits of hex: {s}");
    }
    for (i, x) in secrets.iter().enumerate() {
        for y in &secrets[i + 1..] {
            assert_ne!(x, y, "two secrets are the same");
        }
    }
}

fn assert_no_secrets(doc: &Value, context: &str) {
    for key in ["password", "temp_hash"] {
        assert!(doc.get(key).is_none(), "{context}: {key} returned: {doc}");
    }
}

#[tokio::test]
async fn the_user_model_never_returns_secrets() {
    let w = world(&[]).await;
    let alice = login_as(&w.s, &w.alice).await;
    for (who, auth) in [("admin", w.admin.basic()), ("alice", alice.bearer())] {
        let (status, one) = get(&w.s, &format!("/api/user/{}", w.alice.id), &auth).await;
        assert_eq!(status, StatusCode::OK, "{who}: {one}");
        assert_no_secrets(&one["data"], &format!("{who} get one"));
        assert_eq!(one["data"]["email"], w.alice.email.as_str());
        for path in [
            "/api/user",
            "/api/user?fields=password,temp_hash,email",
            "/api/user?fields=password",
        ] {
            let (status, list) = get(&w.s, path, &auth).await;
            assert_eq!(status, StatusCode::OK, "{who} {path}: {list}");
            let data = list["data"].as_array().unwrap();
            assert_eq!(data.len(), 3, "{who} {path}: {list}");
            for doc in data {
                assert_no_secrets(doc, &format!("{who} {path}"));
            }
        }
    }
    // The create and update answers hide the password too.
    let (status, created) = post(
        &w.s,
        "/api/user",
        &w.admin.basic(),
        json!({"name": "Carol", "email": "carol@example.com", "password": "carol-pw"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_no_secrets(&created["data"], "create answer");
    let (status, updated) = crate::harness::put(
        &w.s,
        &format!("/api/user/{}", created["data"]["_id"].as_str().unwrap()),
        &w.admin.basic(),
        json!({"password": "carol-pw-2"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_no_secrets(&updated["data"], "update answer");
}

/// A filter on a private field must not let a reader learn its value: probing the bcrypt
/// hashes with a pattern that matches every hash and one that matches none must answer the
/// same (both refused, both ignored, or both as if the field did not exist).
#[tokio::test]
async fn private_fields_are_not_a_filter_oracle() {
    let w = world(&[]).await;
    let alice = login_as(&w.s, &w.alice).await;
    let probe = |path: String| {
        let s = &w.s;
        let auth = alice.bearer();
        async move {
            let (status, body) = get(s, &path, &auth).await;
            let n = body["count"]
                .as_u64()
                .or_else(|| body["data"].as_array().map(|d| d.len() as u64));
            (status, n)
        }
    };
    for route in ["/count/user", "/api/user"] {
        let hit = probe(format!("{route}?filter[password]=$regex:/^%5C$2/")).await;
        let miss = probe(format!("{route}?filter[password]=$regex:/^zzz/")).await;
        assert_eq!(
            hit, miss,
            "{route}: a regex on password hashes tells matching from not matching"
        );
        let hit = probe(format!("{route}?search[password]=%242")).await;
        let miss = probe(format!("{route}?search[password]=zzzz")).await;
        assert_eq!(
            hit, miss,
            "{route}: a search on password hashes tells matching from not matching"
        );
    }
}

#[tokio::test]
async fn non_admins_cannot_read_credential_models() {
    let w = world(&[]).await;
    let alice = login_as(&w.s, &w.alice).await;
    for model in ["token", "apikey", "refreshtoken"] {
        for auth in [alice.bearer(), alice.key(), w.alice.basic(), Auth::None] {
            assert_forbidden(
                &get(&w.s, &format!("/api/{model}"), &auth).await,
                &format!("{model} list as {auth:?}"),
            );
            assert_forbidden(
                &get(&w.s, &format!("/count/{model}"), &auth).await,
                &format!("{model} count as {auth:?}"),
            );
        }
        // An admin may list them, and still sees no secret.
        let (status, body) = get(&w.s, &format!("/api/{model}"), &w.admin.basic()).await;
        assert_eq!(status, StatusCode::OK, "{model}: {body}");
        let data = body["data"].as_array().unwrap();
        assert!(!data.is_empty(), "{model}: alice's login made one: {body}");
        let text = body.to_string();
        for secret in [&alice.token, alice.apikey.as_ref().unwrap(), &alice.refresh] {
            assert!(
                !text.contains(secret.as_str()),
                "{model} list shows a secret: {body}"
            );
        }
        // Reading one of them by id is refused as well.
        let id = data[0]["_id"].as_str().unwrap();
        assert_forbidden(
            &get(&w.s, &format!("/api/{model}/{id}"), &alice.bearer()).await,
            &format!("{model} by id"),
        );
    }
}

//! The response cache against every write path that exists (REST create, PUT, `/update`,
//! delete, cascade, a function's write): each makes the cached answers of the models it wrote
//! stale at once. Answers are kept per identity, so no user is served another's rows; models
//! with read hooks are not cached at all.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::World;
use crate::harness::{self, Account, Auth, TestServer};

const NOTE: &str = r#"
name = "Note"
[fields]
name = "String"
[perms]
all = "crud"
[options]
callable = ["add"]
"#;

const PIN: &str = r#"
name = "Pin"
[fields]
name = "String"
note_id = { type = "ObjectId", link = "Note" }
[perms]
all = "crud"
"#;

/// Each user reads only their own entries.
const DIARY: &str = r#"
name = "Diary"
[fields]
text = "String"
[perms]
owner = "crud"
user = "c"
"#;

/// `(status, jxp-cache, jxp-cache-key, body)`.
async fn cached_get(
    s: &TestServer,
    path: &str,
    who: &Auth,
) -> (StatusCode, Option<String>, Option<String>, Value) {
    let r = harness::send(s, Method::GET, path, who, None).await;
    let header = |name: &str| r.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    (
        r.status,
        header("jxp-cache"),
        header("jxp-cache-key"),
        r.body,
    )
}

/// Reads `path` until it is a hit, and answers the key.
async fn prime(s: &TestServer, path: &str, who: &Auth) -> String {
    cached_get(s, path, who).await;
    let (status, state, key, body) = cached_get(s, path, who).await;
    assert_eq!(
        (status, state.as_deref()),
        (StatusCode::OK, Some("hit")),
        "{path}: {body}"
    );
    key.unwrap()
}

/// The next read of `path` is a miss: answers its body.
async fn miss(s: &TestServer, path: &str, who: &Auth, why: &str) -> Value {
    let (status, state, _, body) = cached_get(s, path, who).await;
    assert_eq!(
        (status, state.as_deref()),
        (StatusCode::OK, Some("miss")),
        "{why}: {body}"
    );
    body
}

fn names(body: &Value) -> Vec<&str> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["name"]
                .as_str()
                .unwrap_or(d["text"].as_str().unwrap_or_default())
        })
        .collect()
}

async fn server() -> TestServer {
    let mut hooks = jxp::Hooks::new();
    hooks.function("note", "add", |ctx| async move {
        let mut doc = jxp::Document::new();
        doc.insert("name".into(), ctx.body["name"].clone());
        let created = ctx
            .app
            .create(&ctx.identity, "note", doc, Default::default())
            .await?;
        Ok(Value::Object(created))
    });
    TestServer::start_with_hooks(
        &[("note", NOTE), ("pin", PIN), ("diary", DIARY)],
        &[
            ("CACHE_ENABLED", "true"),
            ("CACHE_TTL", "600"),
            ("LOGIN_RATE_LIMIT_ENABLED", "false"),
        ],
        hooks,
    )
    .await
}

#[tokio::test]
async fn every_write_path_makes_cached_answers_stale() {
    let s = server().await;
    let anon = Auth::None;
    let list = "/api/note";
    let a = s.create("note", json!({"name": "a"})).await;

    prime(&s, list, &anon).await;
    s.create("note", json!({"name": "b"})).await;
    assert_eq!(
        names(&miss(&s, list, &anon, "after POST").await),
        ["a", "b"]
    );

    prime(&s, list, &anon).await;
    let one = format!("/api/note/{a}");
    prime(&s, &one, &anon).await;
    assert_eq!(s.put(&one, json!({"name": "a2"})).await.0, StatusCode::OK);
    assert_eq!(
        names(&miss(&s, list, &anon, "after PUT").await),
        ["a2", "b"]
    );
    assert_eq!(
        miss(&s, &one, &anon, "one after PUT").await["data"]["name"],
        "a2"
    );

    prime(&s, list, &anon).await;
    assert_eq!(
        s.post(&format!("/update/note/{a}"), json!({"name": "a3"}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        names(&miss(&s, list, &anon, "after /update").await),
        ["a3", "b"]
    );

    prime(&s, list, &anon).await;
    let (status, body) = s.post("/call/note/add", json!({"name": "c"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        names(&miss(&s, list, &anon, "after a function's write").await),
        ["a3", "b", "c"]
    );

    // A cascade writes the referrers' model too.
    let pin = s.create("pin", json!({"name": "p", "note_id": a})).await;
    prime(&s, "/api/pin", &anon).await;
    prime(&s, list, &anon).await;
    assert_eq!(
        s.delete(&format!("/api/note/{a}?_cascade=1")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        names(&miss(&s, list, &anon, "after DELETE").await),
        ["b", "c"]
    );
    let pins = miss(&s, "/api/pin", &anon, "the cascaded model after a cascade").await;
    assert_eq!(
        pins["data"],
        json!([]),
        "pin {pin} was deleted with its note"
    );

    // A silenced write still changes what a read answers.
    prime(&s, list, &anon).await;
    s.create("note", json!({"name": "d", "_silence": true}))
        .await;
    assert_eq!(
        names(&miss(&s, list, &anon, "after a silenced POST").await),
        ["b", "c", "d"]
    );
}

#[tokio::test]
async fn cached_answers_are_kept_per_identity() {
    let s = server().await;
    let admin = harness::setup_admin(&s).await;
    let carol: Account = harness::create_user(&s, &admin.basic(), "carol").await;
    let dave: Account = harness::create_user(&s, &admin.basic(), "dave").await;
    for (who, text) in [(&carol, "carol's"), (&dave, "dave's")] {
        let (status, body) =
            harness::post(&s, "/api/diary", &who.basic(), json!({"text": text})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let carol_key = prime(&s, "/api/diary", &carol.basic()).await;
    // Dave asks the same URL: his own rows, computed for him, under another key.
    let (status, state, dave_key, body) = cached_get(&s, "/api/diary", &dave.basic()).await;
    assert_eq!(
        (status, state.as_deref()),
        (StatusCode::OK, Some("miss")),
        "{body}"
    );
    assert_eq!(names(&body), ["dave's"]);
    assert_ne!(dave_key.unwrap(), carol_key);
    let (_, state, _, body) = cached_get(&s, "/api/diary", &carol.basic()).await;
    assert_eq!(
        (state.as_deref(), names(&body)),
        (Some("hit"), vec!["carol's"])
    );
    // Anonymous callers may not read diaries at all, cached or not.
    let (status, _, _, _) = cached_get(&s, "/api/diary", &Auth::None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn models_with_read_hooks_are_not_cached() {
    let w = World::start(&[("CACHE_ENABLED", "true")]).await;
    w.widget(json!({"name": "w"})).await;
    for _ in 0..2 {
        let (status, state, _, _) = cached_get(&w.s, "/api/widget", &Auth::None).await;
        assert_eq!((status, state), (StatusCode::OK, None));
    }
    assert_eq!(
        w.rec.take(),
        ["pre:get", "pre:get"],
        "the hook ran on every read"
    );
    // A model without read hooks on the same server is cached.
    prime(&w.s, "/api/ledger", &Auth::None).await;
}

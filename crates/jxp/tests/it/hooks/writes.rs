//! Write hooks, PocketBase-style: each scenario is a request, the status and body it gets, the
//! hooks that fired (exactly, in order) and what is stored afterwards.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use jxp::WriteEvent;

use super::support::World;
use crate::harness::{self, Auth};

struct Scenario {
    name: &'static str,
    method: Method,
    /// `{id}` is the widget the scenario starts with.
    path: &'static str,
    body: Option<Value>,
    /// Anonymous instead of the user.
    anonymous: bool,
    status: StatusCode,
    /// Fields the answer's `data` (or, on an error, the whole body) must hold.
    expect: Value,
    fired: &'static [&'static str],
    /// Fields the stored widget holds afterwards; `null` means it is gone or deleted.
    stored: Value,
}

fn scenarios() -> Vec<Scenario> {
    use Method as M;
    let s = |name,
             method,
             path,
             body: Option<Value>,
             status,
             expect: Value,
             fired: &'static [&'static str],
             stored: Value| Scenario {
        name,
        method,
        path,
        body,
        anonymous: false,
        status,
        expect,
        fired,
        stored,
    };
    vec![
        s(
            "PUT runs put and update pre-hooks, which change the patch, then the post-hook",
            M::PUT,
            "/api/widget/{id}",
            Some(json!({"tag": "blue"})),
            StatusCode::OK,
            json!({"tag": "BLUE", "name": "start"}),
            &["pre:put", "pre:update", "post:put:widget"],
            json!({"tag": "BLUE"}),
        ),
        s(
            "/update is the same update",
            M::POST,
            "/update/widget/{id}",
            Some(json!({"tag": "green"})),
            StatusCode::OK,
            json!({"tag": "GREEN"}),
            &["pre:put", "pre:update", "post:put:widget"],
            json!({"tag": "GREEN"}),
        ),
        s(
            "a rejecting put hook stops the update: later pre-hooks, the write and the post-hook do not happen",
            M::PUT,
            "/api/widget/{id}",
            Some(json!({"name": "reject", "tag": "red"})),
            StatusCode::FORBIDDEN,
            json!({"code": "Forbidden", "message": "renaming a widget to reject is not allowed"}),
            &["pre:put"],
            json!({"name": "start", "tag": "START"}),
        ),
        s(
            "an update the validator refuses after the hooks ran is not written",
            M::PUT,
            "/api/widget/{id}",
            Some(json!({"price": -3})),
            StatusCode::BAD_REQUEST,
            json!({"code": "BadRequest"}),
            &["pre:put", "pre:update"],
            json!({"price": 1}),
        ),
        s(
            "a post-hook that fails is logged; the update stands",
            M::PUT,
            "/api/widget/{id}",
            Some(json!({"name": "explode"})),
            StatusCode::OK,
            json!({"name": "explode"}),
            &["pre:put", "pre:update", "post:put:widget"],
            json!({"name": "explode"}),
        ),
        s(
            "_silence runs the pre-hooks but no post-hook",
            M::PUT,
            "/api/widget/{id}?_silence=true",
            Some(json!({"tag": "quiet"})),
            StatusCode::OK,
            json!({"tag": "QUIET"}),
            &["pre:put", "pre:update"],
            json!({"tag": "QUIET"}),
        ),
        s(
            "an update of a missing document fires nothing",
            M::PUT,
            "/api/widget/000000000000000000000000",
            Some(json!({"tag": "x"})),
            StatusCode::NOT_FOUND,
            json!({"code": "NotFound"}),
            &[],
            json!({"tag": "START"}),
        ),
        s(
            "a bad id fires nothing",
            M::PUT,
            "/api/widget/nope",
            Some(json!({"tag": "x"})),
            StatusCode::BAD_REQUEST,
            json!({"code": "BadRequest"}),
            &[],
            json!({"tag": "START"}),
        ),
        Scenario {
            anonymous: true,
            ..s(
                "an update the caller may not make fires nothing",
                M::PUT,
                "/api/widget/{id}",
                Some(json!({"tag": "x"})),
                StatusCode::FORBIDDEN,
                json!({"code": "Forbidden"}),
                &[],
                json!({"tag": "START"}),
            )
        },
        s(
            "DELETE runs the delete pre-hook (which sees the stored document) and post-hook",
            M::DELETE,
            "/api/widget/{id}",
            None,
            StatusCode::OK,
            json!({"status": "ok"}),
            &["pre:delete", "post:delete:widget"],
            Value::Null,
        ),
        s(
            "a permanent delete runs the same hooks",
            M::DELETE,
            "/api/widget/{id}?_permaDelete=1",
            None,
            StatusCode::OK,
            json!({"status": "ok"}),
            &["pre:delete", "post:delete:widget"],
            Value::Null,
        ),
        s(
            "a silenced delete runs no post-hook",
            M::DELETE,
            "/api/widget/{id}?_silence=1",
            None,
            StatusCode::OK,
            json!({"status": "ok"}),
            &["pre:delete"],
            Value::Null,
        ),
        Scenario {
            anonymous: true,
            ..s(
                "a delete the caller may not make fires nothing",
                M::DELETE,
                "/api/widget/{id}",
                None,
                StatusCode::FORBIDDEN,
                json!({"code": "Forbidden"}),
                &[],
                json!({"name": "start"}),
            )
        },
    ]
}

#[tokio::test]
async fn update_and_delete_scenarios() {
    let w = World::start(&[]).await;
    for sc in scenarios() {
        let id = w
            .widget(json!({"name": "start", "tag": "start", "price": 1}))
            .await;
        let path = sc.path.replace("{id}", &id);
        let who = if sc.anonymous {
            Auth::None
        } else {
            w.user_auth()
        };
        let (status, body) =
            harness::call(&w.s, sc.method.clone(), &path, &who, sc.body.clone()).await;
        assert_eq!(status, sc.status, "{}: {body}", sc.name);
        let got = if status.is_success() && body.get("data").is_some() {
            &body["data"]
        } else {
            &body
        };
        for (k, v) in sc.expect.as_object().unwrap() {
            assert_eq!(&got[k], v, "{}: {k} in {body}", sc.name);
        }
        assert_eq!(w.rec.take(), sc.fired, "{}: hooks fired", sc.name);
        let stored = w.stored("widget", &id).await;
        match sc.stored {
            Value::Null => assert!(
                stored.is_none() || stored.as_ref().unwrap()["_deleted"] == true,
                "{}: still there: {stored:?}",
                sc.name
            ),
            expect => {
                let stored = stored.unwrap_or_else(|| panic!("{}: widget gone", sc.name));
                assert_eq!(stored["_deleted"], false, "{}", sc.name);
                for (k, v) in expect.as_object().unwrap() {
                    assert_eq!(&stored[k], v, "{}: stored {k}", sc.name);
                }
            }
        }
    }
}

#[tokio::test]
async fn create_scenarios() {
    let w = World::start(&[]).await;
    let user = w.user_auth();
    let before =
        w.s.app()
            .reader()
            .count("widget", &jxp::Filter::All)
            .await
            .unwrap();

    // The pre-hooks change the document before validation, and see who is writing.
    let (status, body) =
        harness::post(&w.s, "/api/widget", &user, json!({"name": "a", "tag": "x"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["tag"], "X");
    assert_eq!(body["data"]["stamped"], w.user.email);
    assert_eq!(
        w.rec.take(),
        ["pre:post:*:widget", "pre:post", "post:post:widget"]
    );
    let id = body["data"]["_id"].as_str().unwrap();
    assert_eq!(w.stored("widget", id).await.unwrap()["tag"], "X");

    // A rejection answers the hook's status and message; nothing is written, no post-hook.
    let got = harness::post(&w.s, "/api/widget", &user, json!({"name": "reject"})).await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    assert_eq!(
        got.1,
        json!({"code": "UnprocessableEntity", "message": "widgets may not be called reject"})
    );
    assert_eq!(w.rec.take(), ["pre:post:*:widget", "pre:post"]);

    // What a hook sets is validated like the client's own input.
    let got = harness::post(&w.s, "/api/widget", &user, json!({"name": "negative"})).await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST, "{}", got.1);
    assert!(
        got.1["message"].as_str().unwrap().contains("price"),
        "{}",
        got.1
    );
    assert_eq!(w.rec.take(), ["pre:post:*:widget", "pre:post"]);

    // Refused by permissions: no hook sees it.
    let got = harness::post(&w.s, "/api/widget", &Auth::None, json!({"name": "b"})).await;
    assert_eq!(got.0, StatusCode::FORBIDDEN, "{}", got.1);
    assert_eq!(w.rec.take(), Vec::<String>::new());

    // Another model runs only the all-model hooks.
    let got = harness::post(&w.s, "/api/gadget", &Auth::None, json!({"name": "g"})).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(w.rec.take(), ["pre:post:*:gadget", "post:post:gadget"]);

    // `_silence` in the body: pre-hooks still guard the write, callbacks do not run.
    let got = harness::post(
        &w.s,
        "/api/widget",
        &user,
        json!({"name": "c", "_silence": true}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(w.rec.take(), ["pre:post:*:widget", "pre:post"]);

    // A post-hook failing does not undo the create.
    let got = harness::post(&w.s, "/api/widget", &user, json!({"name": "explode"})).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(
        w.rec.take(),
        ["pre:post:*:widget", "pre:post", "post:post:widget"]
    );

    let after =
        w.s.app()
            .reader()
            .count("widget", &jxp::Filter::All)
            .await
            .unwrap();
    assert_eq!(
        after,
        before + 3,
        "a, c and explode were written; reject and negative were not"
    );
}

#[tokio::test]
async fn a_rejected_delete_leaves_the_document_and_cascades_run_root_hooks_only() {
    let w = World::start(&[]).await;
    let user = w.user_auth();
    let keep = w.widget(json!({"name": "keep"})).await;
    let got = harness::delete(&w.s, &format!("/api/widget/{keep}"), &user).await;
    assert_eq!(
        got,
        (
            StatusCode::CONFLICT,
            json!({"code": "Conflict", "message": "this widget is kept"})
        )
    );
    assert_eq!(w.rec.take(), ["pre:delete"]);
    let (status, body) = harness::get(&w.s, &format!("/api/widget/{keep}"), &user).await;
    assert_eq!(
        (status, &body["data"]["name"]),
        (StatusCode::OK, &json!("keep"))
    );
    w.rec.take();

    // A cascade from a widget deletes its gadgets in the same transaction; the hooks are the
    // root's.
    let root = w.widget(json!({"name": "root"})).await;
    let child = harness::create_as(
        &w.s,
        &w.user,
        "gadget",
        json!({"name": "child", "widget_id": root}),
    )
    .await;
    w.rec.take();
    let got = harness::delete(&w.s, &format!("/api/widget/{root}?_cascade=1"), &user).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(w.rec.take(), ["pre:delete", "post:delete:widget"]);
    assert_eq!(w.stored("gadget", &child).await.unwrap()["_deleted"], true);
}

#[tokio::test]
async fn a_panicking_post_hook_is_contained() {
    let mut hooks = jxp::Hooks::new();
    hooks.post_write(WriteEvent::Post, "gadget", |ctx| async move {
        if ctx.doc.get("name") == Some(&json!("panic")) {
            panic!("a post-hook bug");
        }
        Ok(())
    });
    let s = super::support::gadgets_and_widgets(hooks).await;
    let (status, body) = s.post("/api/gadget", json!({"name": "panic"})).await;
    assert_eq!(status, StatusCode::OK, "the write stands: {body}");
    let id = body["data"]["_id"].as_str().unwrap();
    let (status, body) = s.get(&format!("/api/gadget/{id}")).await;
    assert_eq!(
        (status, &body["data"]["name"]),
        (StatusCode::OK, &json!("panic"))
    );
}

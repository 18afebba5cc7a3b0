//! Read hooks: a `get` hook narrows every list-shaped read (list, count, `/query`, `/csv`,
//! `/aggregate`) and a `get_one` hook every single read, to the rows this reader may see; a
//! hook may also refuse the read.

use std::sync::{Arc, OnceLock};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::World;
use crate::harness::{self, Auth};

fn names(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {body}"))
        .iter()
        .map(|d| d["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn read_hooks_narrow_every_read_to_what_the_reader_may_see() {
    let w = World::start(&[]).await;
    let shown = w.widget(json!({"name": "shown"})).await;
    let hidden = w.widget(json!({"name": "concealed", "hidden": true})).await;
    let admin = w.admin.basic();

    let anon = Auth::None;
    let (status, body) = harness::get(&w.s, "/api/widget", &anon).await;
    assert_eq!(
        (status, names(&body)),
        (StatusCode::OK, vec!["shown".to_owned()])
    );
    assert_eq!(w.rec.take(), ["pre:get"]);

    let (status, body) = harness::get(&w.s, "/api/widget", &admin).await;
    assert_eq!(
        (status, names(&body)),
        (
            StatusCode::OK,
            vec!["concealed".to_owned(), "shown".to_owned()]
        )
    );
    assert_eq!(w.rec.take(), ["pre:get"]);

    let (_, body) = harness::get(&w.s, "/count/widget", &anon).await;
    assert_eq!(body["count"], 1, "{body}");
    assert_eq!(w.rec.take(), ["pre:get"]);

    let (_, body) = harness::post(&w.s, "/query/widget", &anon, json!({"query": {}})).await;
    assert_eq!(names(&body), ["shown"]);
    assert_eq!(w.rec.take(), ["pre:get"]);

    let r = harness::send(&w.s, Method::GET, "/csv/widget", &anon, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let csv = r.body.as_str().unwrap().to_owned();
    assert!(csv.contains("shown") && !csv.contains("concealed"), "{csv}");
    assert_eq!(w.rec.take(), ["pre:get"]);

    let (status, body) =
        harness::post(&w.s, "/aggregate/widget", &anon, json!([{"$match": {}}])).await;
    assert_eq!(
        (status, names(&body)),
        (StatusCode::OK, vec!["shown".to_owned()]),
        "{body}"
    );
    assert_eq!(w.rec.take(), ["pre:get"]);

    let (status, _) = harness::get(&w.s, &format!("/api/widget/{shown}"), &anon).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(w.rec.take(), ["pre:get_one"]);

    let got = harness::get(&w.s, &format!("/api/widget/{hidden}"), &anon).await;
    assert_eq!(
        got.0,
        StatusCode::NOT_FOUND,
        "a row the hook hides is absent: {}",
        got.1
    );
    assert_eq!(w.rec.take(), ["pre:get_one"]);

    let (status, body) = harness::get(&w.s, &format!("/api/widget/{hidden}"), &admin).await;
    assert_eq!(
        (status, &body["data"]["name"]),
        (StatusCode::OK, &json!("concealed"))
    );
    assert_eq!(w.rec.take(), ["pre:get_one"]);

    // Reads of other models run no widget read hook.
    let (status, _) = harness::get(&w.s, "/api/ledger", &anon).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(w.rec.take(), Vec::<String>::new());
}

#[tokio::test]
async fn a_read_hook_may_refuse_the_read() {
    let w = World::start(&[]).await;
    let got = harness::get(&w.s, "/api/gadget", &Auth::None).await;
    assert_eq!(
        got,
        (
            StatusCode::UNAUTHORIZED,
            json!({"code": "Unauthorized", "message": "log in to list gadgets", "status": "fail"})
        )
    );
    assert_eq!(w.rec.take(), ["pre:get:gadget"]);
    let (status, body) = harness::get(&w.s, "/api/gadget", &w.user_auth()).await;
    assert_eq!((status, &body["data"]), (StatusCode::OK, &json!([])));
    assert_eq!(w.rec.take(), ["pre:get:gadget"]);
}

#[tokio::test]
async fn a_lookup_joins_only_what_the_read_hooks_show() {
    let w = World::start(&[]).await;
    let hidden = w.widget(json!({"name": "concealed", "hidden": true})).await;
    let user = w.user_auth();
    harness::create_as(
        &w.s,
        &w.user,
        "gadget",
        json!({"name": "g", "widget_id": hidden}),
    )
    .await;
    let pipeline = json!([{"$lookup": {"from": "widget", "localField": "widget_id", "foreignField": "_id", "as": "w"}}]);
    for (who, joined) in [(&user, 0), (&w.admin.basic(), 1)] {
        let (status, body) = harness::post(&w.s, "/aggregate/gadget", who, pipeline.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["data"][0]["w"].as_array().unwrap().len(),
            joined,
            "{who:?}: {body}"
        );
    }
}

#[tokio::test]
async fn populate_links_only_what_the_read_hooks_show() {
    let w = World::start(&[]).await;
    let hidden = w.widget(json!({"name": "concealed", "hidden": true})).await;
    let user = w.user_auth();
    let gadget = harness::create_as(
        &w.s,
        &w.user,
        "gadget",
        json!({"name": "g", "widget_id": hidden}),
    )
    .await;
    for path in [
        "/api/gadget?populate=widget_id".to_owned(),
        format!("/api/gadget/{gadget}?populate=widget_id"),
    ] {
        let (status, body) = harness::get(&w.s, &path, &w.admin.basic()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let doc = if body["data"].is_array() {
            &body["data"][0]
        } else {
            &body["data"]
        };
        assert_eq!(doc["widget"]["name"], "concealed", "admin, {path}: {body}");
        let (status, body) = harness::get(&w.s, &path, &user).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let doc = if body["data"].is_array() {
            &body["data"][0]
        } else {
            &body["data"]
        };
        assert!(doc["widget"].is_null(), "user, {path}: {body}");
    }
}

#[tokio::test]
async fn a_read_hook_sees_the_callers_own_filter() {
    let mut hooks = jxp::Hooks::new();
    hooks.pre_read(jxp::ReadEvent::Get, "gadget", |ctx| async move {
        match ctx.query {
            Some(f) if f != jxp::Filter::All => Ok(jxp::Filter::All),
            _ => Err(jxp::HookError::bad_request("list gadgets by a filter")),
        }
    });
    let s = super::support::gadgets_and_widgets(hooks).await;
    s.create("gadget", json!({"name": "x"})).await;
    // (request, status)
    for (method, path, body, status) in [
        (Method::GET, "/api/gadget", None, StatusCode::BAD_REQUEST),
        (Method::GET, "/count/gadget", None, StatusCode::BAD_REQUEST),
        (
            Method::GET,
            "/api/gadget?filter[name]=x",
            None,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/count/gadget?filter[name]=x",
            None,
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/query/gadget",
            Some(json!({"query": {"name": "x"}})),
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/query/gadget",
            Some(json!({"query": {}})),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, resp) = s.request(method.clone(), path, body.as_ref()).await;
        assert_eq!(got, status, "{method} {path}: {resp}");
    }
}

/// A hook registered with `pre_read_ref` borrows what it sees of the read: the caller's own
/// filter for a list, the model and the id for a single read; it narrows and refuses as an
/// owned one does.
#[tokio::test]
async fn a_read_hook_may_borrow_what_it_sees() {
    let hidden: Arc<OnceLock<String>> = Arc::default();
    let mut hooks = jxp::Hooks::new();
    hooks.pre_read_ref(
        jxp::ReadEvent::Get,
        "gadget",
        |ctx: jxp::ReadRef<'_>| -> jxp::RefFuture<'_, _> {
            Box::pin(async move {
                match ctx.query {
                    Some(f) if *f != jxp::Filter::All => Ok(Arc::new(jxp::Filter::All)),
                    _ => Err(jxp::HookError::bad_request("list gadgets by a filter")),
                }
            })
        },
    );
    let seen = hidden.clone();
    hooks.pre_read_ref(
        jxp::ReadEvent::GetOne,
        "gadget",
        move |ctx: jxp::ReadRef<'_>| -> jxp::RefFuture<'_, _> {
            let seen = seen.clone();
            Box::pin(async move {
                if ctx.model != "gadget" {
                    return Err(jxp::HookError::reject(500, "a read of another model"));
                }
                match (ctx.id, seen.get()) {
                    (Some(id), Some(hidden)) if id == hidden.as_str() => {
                        Err(jxp::HookError::forbidden("not this gadget"))
                    }
                    (Some(_), _) => Ok(Arc::new(jxp::Filter::All)),
                    (None, _) => Err(jxp::HookError::reject(500, "a single read without its id")),
                }
            })
        },
    );
    let s = super::support::gadgets_and_widgets(hooks).await;
    let shown = s.create("gadget", json!({"name": "x"})).await;
    let secret = s.create("gadget", json!({"name": "y"})).await;
    hidden.get_or_init(|| secret.clone());
    for (path, status) in [
        ("/api/gadget".to_owned(), StatusCode::BAD_REQUEST),
        ("/api/gadget?filter[name]=x".to_owned(), StatusCode::OK),
        (format!("/api/gadget/{shown}"), StatusCode::OK),
        (format!("/api/gadget/{secret}"), StatusCode::FORBIDDEN),
    ] {
        let (got, resp) = s.request(Method::GET, &path, None).await;
        assert_eq!(got, status, "GET {path}: {resp}");
    }
    let (_, resp) = s
        .request(Method::GET, &format!("/api/gadget/{shown}"), None)
        .await;
    assert_eq!(resp["data"]["name"], "x", "{resp}");
}

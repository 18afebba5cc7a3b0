//! The console at `/docs`: served from the binary with a policy that keeps the page at home,
//! `DOCS_ACCESS` obeyed, and, in a real headless Chromium, a user signs in, browses a model,
//! creates a document through the explorer and sees it arrive in the live view of a second
//! page, which resumes after a dropped connection without a gap; a user without the right
//! sees the API's refusal; the MCP page calls a tool; no request leaves the server's host and
//! the page logs no error.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::browser::{Chrome, Page};
use crate::harness::{Account, World, create_as, start};

/// How long one step in the browser may take (Chromium is slow to start on a busy machine).
const STEP: Duration = Duration::from_secs(60);

/// Users create and read.
const ITEM: &str = r#"
name = "Item"
[fields]
name = "String"
n = "Number"
[perms]
user = "crud"
"#;

/// Users only read.
const LOCKED: &str = r#"
name = "Locked"
[fields]
name = "String"
[perms]
user = "r"
admin = "crud"
"#;

async fn fetch(base: &str, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let res = reqwest::get(format!("{base}{path}")).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_policy_that_keeps_it_at_home() {
    let s = start(&[("item", ITEM)], &[]).await;
    for (path, kind) in [
        ("/docs", "text/html"),
        ("/docs/console.js", "text/javascript"),
        ("/docs/console.css", "text/css"),
    ] {
        let (status, headers, body) = fetch(&s.base, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let content_type = headers[reqwest::header::CONTENT_TYPE].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let policy = headers[reqwest::header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(policy.contains("default-src 'none'"), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        assert!(!body.is_empty());
    }
    let (_, _, config) = fetch(&s.base, "/docs/config.json").await;
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["access"], "protected", "the default: {config}");
}

#[tokio::test]
async fn docs_access_off_serves_no_console_and_public_says_so() {
    let off = start(&[("item", ITEM)], &[("DOCS_ACCESS", "off")]).await;
    for path in ["/docs", "/docs/console.js", "/docs/config.json"] {
        let (status, _, body) = fetch(&off.base, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let public = start(&[("item", ITEM)], &[("DOCS_ACCESS", "public")]).await;
    let (status, _, config) = fetch(&public.base, "/docs/config.json").await;
    assert_eq!(status, StatusCode::OK);
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["access"], "public");
}

/// Opens the console in a new tab and signs in as `who`; answers the tab once the models show.
async fn signed_in(chrome: &mut Chrome, base: &str, who: &Account) -> Page {
    let page = chrome.open(&format!("{base}/docs")).await;
    chrome
        .wait_for(&page, "document.querySelector('#signin-email')", STEP)
        .await;
    // Protected by default: nothing of the models before the sign-in.
    let models = chrome
        .eval(&page, "!!document.querySelector('#models')")
        .await;
    assert_eq!(models, false, "models shown before a sign-in");
    chrome.fill(&page, "#signin-email", &who.email).await;
    chrome.fill(&page, "#signin-password", &who.password).await;
    chrome.click(&page, "#signin-submit").await;
    chrome
        .wait_for(
            &page,
            "document.querySelector('#models tr[data-model=item]')",
            STEP,
        )
        .await;
    page
}

/// The seqs the live view shows, oldest first.
async fn live_seqs(chrome: &mut Chrome, page: &Page) -> Vec<u64> {
    let seqs = chrome
        .eval(
            page,
            "[...document.querySelectorAll('#live-events tr[data-seq]')].map(r => Number(r.dataset.seq)).reverse()",
        )
        .await;
    serde_json::from_value(seqs).unwrap()
}

#[tokio::test]
async fn a_user_signs_in_creates_through_the_explorer_and_watches_it_arrive_live() {
    let Some(mut chrome) = Chrome::launch().await else {
        return;
    };
    let w = World::start(&[("item", ITEM), ("locked", LOCKED)], &[], ["Alice", "Bob"]).await;
    let base = w.s.base.clone();

    // The live view, in a tab of its own (the token is kept per tab).
    let watcher = signed_in(&mut chrome, &base, &w.alice).await;
    chrome
        .eval(&watcher, "location.hash = '#/live/item'; true")
        .await;
    chrome
        .wait_for(
            &watcher,
            "document.querySelector('#live-status').textContent === 'live'",
            STEP,
        )
        .await;

    // The model's page: fields, permissions and routes with this server's URL.
    let editor = signed_in(&mut chrome, &base, &w.alice).await;
    chrome.click(&editor, "#models tr[data-model=item] a").await;
    let routes = chrome
        .wait_for(
            &editor,
            "document.querySelector('#routes') && document.querySelector('#routes').innerText",
            STEP,
        )
        .await;
    let routes = routes.as_str().unwrap();
    assert!(routes.contains(&format!("{base}/api/item")), "{routes}");
    let fields = chrome
        .eval(&editor, "document.querySelector('#fields').innerText")
        .await;
    assert!(fields.as_str().unwrap().contains("name"), "{fields}");
    let perms = chrome
        .eval(&editor, "document.querySelector('#perms').innerText")
        .await;
    assert!(perms.as_str().unwrap().contains("user"), "{perms}");

    // The explorer: create a document.
    chrome
        .eval(&editor, "location.hash = '#/explore/item'; true")
        .await;
    chrome
        .wait_for(&editor, "document.querySelector('#new')", STEP)
        .await;
    chrome.click(&editor, "#new").await;
    chrome
        .wait_for(&editor, "document.querySelector('#doc-json')", STEP)
        .await;
    chrome
        .fill(
            &editor,
            "#doc-json",
            r#"{"name": "from the console", "n": 7}"#,
        )
        .await;
    chrome.click(&editor, "#doc-save").await;
    chrome
        .wait_for(&editor, "document.querySelector('#write-ok')", STEP)
        .await;
    let id = chrome
        .wait_for(
            &editor,
            "[...document.querySelectorAll('#rows tr[data-id]')].map(r => r.dataset.id).find(id => document.querySelector(`#rows tr[data-id=\"${id}\"]`).innerText.includes('from the console'))",
            STEP,
        )
        .await;
    let id = id.as_str().unwrap().to_owned();
    // It is in the store, as the API answers it.
    let (status, got) =
        crate::harness::get(&w.s, &format!("/api/item/{id}"), &w.alice.basic()).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["data"]["n"], 7);

    // The live view saw it arrive, with its seq.
    let arrived = chrome
        .wait_for(
            &watcher,
            &format!("document.querySelector('#live-events tr[data-id=\"{id}\"].ev-post')"),
            STEP,
        )
        .await;
    assert!(!arrived.is_null());
    assert_eq!(live_seqs(&mut chrome, &watcher).await, vec![1]);

    // A dropped connection: what is written meanwhile arrives after the reconnect, once.
    chrome
        .eval(&watcher, "live.stopped = true; live.socket.close(); true")
        .await;
    chrome
        .wait_for(
            &watcher,
            "live.socket.readyState === WebSocket.CLOSED",
            STEP,
        )
        .await;
    let missed = create_as(&w.s, &w.alice, "item", json!({"name": "while away"})).await;
    chrome
        .eval(&watcher, "live.stopped = false; live.reconnect(); true")
        .await;
    chrome
        .wait_for(
            &watcher,
            &format!("document.querySelector('#live-events tr[data-id=\"{missed}\"]')"),
            STEP,
        )
        .await;
    let after = create_as(&w.s, &w.alice, "item", json!({"name": "back live"})).await;
    chrome
        .wait_for(
            &watcher,
            &format!("document.querySelector('#live-events tr[data-id=\"{after}\"]')"),
            STEP,
        )
        .await;
    assert_eq!(
        live_seqs(&mut chrome, &watcher).await,
        vec![1, 2, 3],
        "every change once, in order, across the reconnect"
    );

    // The MCP page: the tools as an AI client sees them, called as the signed-in user.
    chrome.eval(&editor, "location.hash = '#/mcp'; true").await;
    chrome
        .wait_for(
            &editor,
            "[...document.querySelectorAll('#mcp-tool option')].some(o => o.value === 'jxp_count')",
            STEP,
        )
        .await;
    chrome
        .eval(
            &editor,
            "const s = document.querySelector('#mcp-tool'); s.value = 'jxp_count'; s.dispatchEvent(new Event('change')); true",
        )
        .await;
    chrome
        .fill(&editor, "#mcp-args", r#"{"model": "item"}"#)
        .await;
    chrome.click(&editor, "#mcp-call").await;
    let output = chrome
        .wait_for(
            &editor,
            "document.querySelector('#mcp-output') && document.querySelector('#mcp-output').innerText",
            STEP,
        )
        .await;
    let output: Value = serde_json::from_str(output.as_str().unwrap()).unwrap();
    assert_eq!(output["count"], 3, "{output}");

    // Bob may only read `locked`: the explorer shows the API's refusal.
    let bob = signed_in(&mut chrome, &base, &w.bob).await;
    chrome
        .eval(&bob, "location.hash = '#/explore/locked'; true")
        .await;
    chrome
        .wait_for(&bob, "document.querySelector('#new')", STEP)
        .await;
    chrome.click(&bob, "#new").await;
    chrome
        .wait_for(&bob, "document.querySelector('#doc-json')", STEP)
        .await;
    chrome
        .fill(&bob, "#doc-json", r#"{"name": "not mine to make"}"#)
        .await;
    chrome.click(&bob, "#doc-save").await;
    let refused = chrome
        .wait_for(
            &bob,
            "document.querySelector('#error') && document.querySelector('#error').innerText",
            STEP,
        )
        .await;
    assert!(refused.as_str().unwrap().starts_with("403"), "{refused}");
    let (_, list) = crate::harness::get(&w.s, "/api/locked", &w.admin.basic()).await;
    assert_eq!(list["data"], json!([]), "nothing written");

    for page in [&watcher, &editor, &bob] {
        chrome.settle(page).await;
    }
    let host = base.trim_start_matches("http://");
    let away: Vec<&String> = chrome
        .seen
        .requests
        .iter()
        .filter(|url| {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("ws://"));
            !(url.starts_with("about:")
                || url.starts_with("data:")
                || rest.is_some_and(|r| r.starts_with(&format!("{host}/"))))
        })
        .collect();
    assert!(away.is_empty(), "requests to other hosts: {away:?}");
    assert!(
        chrome
            .seen
            .requests
            .iter()
            .any(|u| u.ends_with("/websocket")),
        "the socket was seen: {:?}",
        chrome.seen.requests
    );
    assert!(
        chrome.seen.errors.is_empty(),
        "errors in the page: {:?}",
        chrome.seen.errors
    );
}

#[tokio::test]
async fn a_slow_page_left_behind_does_not_replace_the_page_gone_to() {
    let Some(mut chrome) = Chrome::launch().await else {
        return;
    };
    let w = World::start(&[("item", ITEM), ("locked", LOCKED)], &[], ["Alice", "Bob"]).await;
    let page = signed_in(&mut chrome, &w.s.base, &w.alice).await;
    // The models page starts loading the models (forgotten, so it asks the server), and the
    // user goes on to the live view before the answer is in.
    chrome
        .eval(
            &page,
            "models = null; location.hash = '#/'; route(); location.hash = '#/live/item'; true",
        )
        .await;
    // Once the models page has its answer, the live view is still what is shown.
    chrome.wait_for(&page, "models !== null", STEP).await;
    chrome
        .wait_for(
            &page,
            "document.querySelector('#live-status').textContent === 'live'",
            STEP,
        )
        .await;
    let models_shown = chrome
        .eval(&page, "!!document.querySelector('#models')")
        .await;
    assert_eq!(
        models_shown, false,
        "the models page replaced the live view"
    );
}

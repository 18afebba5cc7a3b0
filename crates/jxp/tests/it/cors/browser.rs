//! A real browser on a second origin: headless Chromium loads a page from a small server the
//! test starts on another port, and the page calls jxp with an API key and a bearer token and
//! opens the realtime feed, then posts what it saw back to its own server. From a listed origin
//! it reads the data and the socket authenticates and subscribes; from an unlisted one the
//! browser refuses the calls and jxp refuses the socket. Without Chromium (`/usr/bin/chromium`,
//! or the path in `JXP_TEST_CHROMIUM`) the tests say so and pass, as the PostgreSQL-only tests
//! do without a server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::harness::browser::{HEADLESS, chromium};
use crate::harness::{Auth, World, get as get_as, login_as};

/// How long the page may take, Chromium's start included.
const PAGE_WAIT: Duration = Duration::from_secs(150);

/// Users may read and write; anonymous callers may not, so credentials must cross origins.
const ITEM: &str = r#"
name = "Item"
[fields]
name = "String"
[perms]
user = "crud"
"#;

/// The page: two calls with credentials in headers and a failing login, then the socket, then a report to its
/// own origin. Each outcome is recorded, a failure as the error's name and message.
const PAGE: &str = r#"<!doctype html>
<html><body><script>
const api = "__API__", key = "__KEY__", token = "__TOKEN__";
async function attempt(run) {
  try { return await run(); } catch (e) { return { error: e.name + ": " + e.message }; }
}
async function read(response) {
  return { status: response.status, body: await response.json() };
}
function socket() {
  return new Promise((resolve) => {
    const seen = [];
    let opened = false;
    const ws = new WebSocket(api.replace("http://", "ws://") + "/websocket");
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify({ action: "auth", msg_id: "auth", data: { token } }));
    };
    ws.onmessage = (m) => {
      const frame = JSON.parse(m.data);
      seen.push(frame);
      if (frame.msg_id === "auth") {
        ws.send(JSON.stringify({ action: "subscribe", msg_id: "sub", data: { model: "item" } }));
      }
      if (frame.msg_id === "sub") {
        resolve({ opened, seen });
        ws.close();
      }
    };
    ws.onclose = (e) => resolve({ opened, seen, closed: e.code });
  });
}
(async () => {
  const out = {};
  out.get = await attempt(async () =>
    read(await fetch(api + "/api/item", { headers: { "X-API-Key": key } })));
  out.post = await attempt(async () =>
    read(await fetch(api + "/api/item", {
      method: "POST",
      headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "from the page" }),
    })));
  out.refused = await attempt(async () =>
    read(await fetch(api + "/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "nobody@example.com", password: "wrong" }),
    })));
  out.socket = await socket();
  await fetch("/result", { method: "POST", body: JSON.stringify(out) });
})().catch((e) => fetch("/result", { method: "POST", body: JSON.stringify({ crashed: String(e) }) }));
</script></body></html>
"#;

/// The page's own origin: `/` serves the page, `/result` hands what the page posts to the test.
struct PageServer {
    origin: String,
    listener: Option<TcpListener>,
    task: Option<JoinHandle<()>>,
}

impl PageServer {
    /// Takes a port first, so that jxp can be told the origin before the page exists.
    async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        PageServer {
            origin,
            listener: Some(listener),
            task: None,
        }
    }

    /// Serves `page`; answers where the page's report arrives.
    fn serve(&mut self, page: String) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(1);
        let app = Router::new()
            .route("/", get(move || async move { Html(page) }))
            .route(
                "/result",
                post(move |body: String| async move {
                    let _ = tx.send(body).await;
                }),
            );
        let listener = self.listener.take().unwrap();
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
        rx
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A headless Chromium showing one page; killed when dropped.
struct Browser {
    child: Child,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(chromium: &Path, url: &str) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromium.log");
        let child = Command::new(chromium)
            .args(HEADLESS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Browser {
            child,
            log,
            _profile: profile,
        }
    }

    /// What Chromium said on stderr, for a failure's message.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves the page from a second origin to a server whose `CORS_ORIGINS` is made from the
/// page's origin by `cors`, and answers what the page observed and the world it ran in; `None`
/// without Chromium.
async fn page_report(cors: impl Fn(&str) -> String) -> Option<(Value, World)> {
    let Some(chromium) = chromium() else {
        eprintln!("no Chromium at /usr/bin/chromium or JXP_TEST_CHROMIUM: browser test skipped");
        return None;
    };
    let mut page_server = PageServer::bind().await;
    let cors = cors(&page_server.origin);
    let w = World::start(
        &[("item", ITEM)],
        &[("CORS_ORIGINS", &cors)],
        ["Alice", "Bob"],
    )
    .await;
    let created = json!({"name": "made by Bob"});
    let (status, body) = crate::harness::post(&w.s, "/api/item", &w.bob.basic(), created).await;
    assert_eq!(status, 200, "{body}");
    let session = login_as(&w.s, &w.alice).await;
    let page = PAGE
        .replace("__API__", &w.s.base)
        .replace("__KEY__", session.apikey.as_deref().unwrap())
        .replace("__TOKEN__", &session.token);
    let mut reports = page_server.serve(page);
    let browser = Browser::open(&chromium, &format!("{}/", page_server.origin));
    let report = match tokio::time::timeout(PAGE_WAIT, reports.recv()).await {
        Ok(Some(report)) => report,
        _ => panic!(
            "no report from the page within {PAGE_WAIT:?}; Chromium said:\n{}",
            browser.log()
        ),
    };
    drop(browser);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert!(report.get("crashed").is_none(), "{report}");
    Some((report, w))
}

/// The documents named "from the page", as Alice sees them.
async fn made_by_the_page(w: &World) -> usize {
    let (status, body) = get_as(
        &w.s,
        "/api/item?filter[name]=from%20the%20page",
        &Auth::of(Some(&w.alice)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_page_of_a_listed_origin_reads_writes_and_subscribes() {
    let Some((report, w)) = page_report(|page| format!("https://elsewhere.example,{page}")).await
    else {
        return;
    };
    assert_eq!(report["get"]["status"], 200, "{report}");
    assert_eq!(
        report["get"]["body"]["data"][0]["name"], "made by Bob",
        "{report}"
    );
    assert_eq!(report["post"]["status"], 200, "{report}");
    assert_eq!(
        report["post"]["body"]["data"]["name"], "from the page",
        "{report}"
    );
    // An error's status and body are readable too.
    assert_eq!(report["refused"]["status"], 401, "{report}");
    assert!(report["refused"]["body"]["code"].is_string(), "{report}");

    let socket = &report["socket"];
    assert_eq!(socket["opened"], true, "{report}");
    let seen = socket["seen"].as_array().unwrap();
    let reply = |id: &str| seen.iter().find(|f| f["msg_id"] == id).cloned();
    let auth = reply("auth").unwrap_or_else(|| panic!("no auth reply: {report}"));
    assert_eq!(auth["result"], "Authed", "{report}");
    let sub = reply("sub").unwrap_or_else(|| panic!("no subscribe reply: {report}"));
    assert_eq!(sub["status"], "okay", "{report}");
    assert_eq!(made_by_the_page(&w).await, 1);
}

#[tokio::test]
async fn a_page_of_an_unlisted_origin_is_refused_by_the_browser_and_the_socket() {
    // The same port on `localhost` is another origin than the page's `127.0.0.1`.
    let Some((report, w)) = page_report(|page| page.replacen("127.0.0.1", "localhost", 1)).await
    else {
        return;
    };
    for call in ["get", "post", "refused"] {
        let error = report[call]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("TypeError"), "{call}: {report}");
    }
    let socket = &report["socket"];
    assert_eq!(socket["opened"], false, "{report}");
    assert_eq!(socket["seen"], json!([]), "{report}");
    // The POST needed a preflight, which failed: it never reached the server.
    assert_eq!(made_by_the_page(&w).await, 0);
}

//! A real headless Chromium for browser tests: where to find it, how to start it, and a small
//! driver over the DevTools protocol (a WebSocket of JSON commands and events) that opens
//! pages, runs script in them and records what they asked the network for and what they
//! reported as errors. Without Chromium (`/usr/bin/chromium`, or the path in
//! `JXP_TEST_CHROMIUM`) `chromium()` answers `None` and the tests say so and pass, as the
//! PostgreSQL-only tests do without a server.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// The Chromium to drive, if there is one.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("JXP_TEST_CHROMIUM")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    path.is_file().then_some(path)
}

/// Headless, and nothing that reaches for the network on its own (this machine's network is
/// closed; Chromium would retry for ever).
pub const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
];

/// How long Chromium may take to start and say where its DevTools endpoint is.
const START_WAIT: Duration = Duration::from_secs(120);

/// A page (tab) of the browser, by its DevTools session.
#[derive(Debug, Clone)]
pub struct Page {
    session: String,
}

/// What a page reported: every URL it requested, and every error it logged or threw.
#[derive(Debug, Default)]
pub struct Seen {
    pub requests: Vec<String>,
    pub errors: Vec<String>,
}

/// A running headless Chromium under DevTools control; killed when dropped.
pub struct Chrome {
    child: Child,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    pub seen: Seen,
    log: Arc<Mutex<String>>,
    _profile: tempfile::TempDir,
}

impl Chrome {
    /// Starts Chromium with an empty profile; `None` without Chromium.
    pub async fn launch() -> Option<Chrome> {
        let Some(path) = chromium() else {
            eprintln!(
                "no Chromium at /usr/bin/chromium or JXP_TEST_CHROMIUM: browser test skipped"
            );
            return None;
        };
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(path)
            .args(HEADLESS)
            .arg("--remote-debugging-port=0")
            .arg("--remote-allow-origins=*")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Chromium says where to connect on stderr; the rest of what it says is kept for a
        // failure's message, and read so that it never blocks on a full pipe.
        let log = Arc::new(Mutex::new(String::new()));
        let (found, endpoint) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = found.send(url.trim().to_owned());
                }
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = tokio::task::spawn_blocking(move || endpoint.recv_timeout(START_WAIT))
            .await
            .unwrap()
            .unwrap_or_else(|_| {
                panic!(
                    "Chromium gave no DevTools endpoint within {START_WAIT:?}:\n{}",
                    log.lock().unwrap()
                )
            });
        let (socket, _) = connect_async(url.as_str()).await.unwrap();
        Some(Chrome {
            child,
            socket,
            next_id: 0,
            seen: Seen::default(),
            log,
            _profile: profile,
        })
    }

    /// What Chromium said on stderr, for a failure's message.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends one command (to a page's session, or to the browser) and answers its result;
    /// events that arrive meanwhile are recorded.
    async fn call(&mut self, page: Option<&Page>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(page) = page {
            command["sessionId"] = Value::String(page.session.clone());
        }
        self.socket
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(START_WAIT, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}; Chromium said:\n{}", self.log()))
                .unwrap_or_else(|| {
                    panic!("DevTools connection ended; Chromium said:\n{}", self.log())
                })
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["id"] == id {
                if let Some(error) = frame.get("error") {
                    panic!("{method} failed: {error}");
                }
                return frame["result"].clone();
            }
            self.record(&frame);
        }
    }

    /// Keeps what matters of an event: requests, console errors, exceptions and log errors
    /// (a page refused by its Content-Security-Policy shows up as one).
    fn record(&mut self, frame: &Value) {
        let params = &frame["params"];
        match frame["method"].as_str().unwrap_or_default() {
            "Network.requestWillBeSent" => {
                let url = params["request"]["url"].as_str().unwrap_or_default();
                self.seen.requests.push(url.to_owned());
            }
            "Network.webSocketCreated" => {
                let url = params["url"].as_str().unwrap_or_default();
                self.seen.requests.push(url.to_owned());
            }
            "Runtime.consoleAPICalled" if params["type"] == "error" => {
                self.seen
                    .errors
                    .push(format!("console.error: {}", params["args"]));
            }
            "Runtime.exceptionThrown" => {
                self.seen
                    .errors
                    .push(format!("exception: {}", params["exceptionDetails"]));
            }
            // An HTTP error status the test provoked on purpose is not a page error.
            "Log.entryAdded"
                if params["entry"]["level"] == "error"
                    && params["entry"]["source"] != "network" =>
            {
                self.seen.errors.push(format!("log: {}", params["entry"]));
            }
            _ => {}
        }
    }

    /// Opens `url` in a new tab, watched from its first request.
    pub async fn open(&mut self, url: &str) -> Page {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let page = Page {
            session: attached["sessionId"].as_str().unwrap().to_owned(),
        };
        for domain in [
            "Network.enable",
            "Runtime.enable",
            "Log.enable",
            "Page.enable",
        ] {
            self.call(Some(&page), domain, json!({})).await;
        }
        self.call(Some(&page), "Page.navigate", json!({"url": url}))
            .await;
        page
    }

    /// Runs `expression` in the page (a promise is awaited) and answers its value as JSON.
    pub async fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let result = self
            .call(
                Some(page),
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        if let Some(e) = result.get("exceptionDetails") {
            panic!("{expression} threw: {e}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (an expression) is truthy in the page; answers its value.
    pub async fn wait_for(&mut self, page: &Page, condition: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let wrapped = format!(
                "(() => {{ try {{ return ({condition}) || null; }} catch (_) {{ return null; }} }})()"
            );
            let value = self.eval(page, &wrapped).await;
            if !value.is_null() {
                return value;
            }
            assert!(
                started.elapsed() < limit,
                "waited {limit:?} for {condition}; page text: {}",
                self.eval(page, "document.body ? document.body.innerText : ''")
                    .await
            );
            // A new look at the page; the DevTools round trip itself paces this loop.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the input or textarea `selector` as a user would leave it.
    pub async fn fill(&mut self, page: &Page, selector: &str, text: &str) {
        let expression = format!(
            "(() => {{ const e = document.querySelector({sel}); e.focus(); e.value = {text};
               e.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()",
            sel = json!(selector),
            text = json!(text),
        );
        self.eval(page, &expression).await;
    }

    /// Clicks the element `selector` with the mouse, at its centre.
    pub async fn click(&mut self, page: &Page, selector: &str) {
        let at = self
            .eval(
                page,
                &format!(
                    "(() => {{ const e = document.querySelector({sel}); e.scrollIntoView();
                       const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
                    sel = json!(selector)
                ),
            )
            .await;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                Some(page),
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": at[0], "y": at[1], "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Takes the events that arrived since the last command, so that `seen` is complete.
    pub async fn settle(&mut self, page: &Page) {
        self.eval(page, "true").await;
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

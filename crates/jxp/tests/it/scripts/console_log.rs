//! What a script prints with `console.log`, `console.warn` and `console.error` reaches the
//! server's log at that level, naming the script file and the export that printed it; and a
//! thrown error's detail, kept from the client, is in the log.

use serde_json::{Value, json};

use super::support::{WIDGET, WIDGET_JS};
use crate::harness::{Proc, fresh_database_url, spawn_with, stop_process};

const EMAIL: &str = "a@example.com";
const PASSWORD: &str = "a long secret";

/// A `jxp serve` process logging at `info`, with `files` (name, text) in its `models/` and
/// an admin (`EMAIL`) set up; its log is `server.log` in the directory.
async fn serve(files: &[(&str, &str)]) -> (tempfile::TempDir, Proc, reqwest::Client) {
    serve_logging(files, "info").await
}

/// `serve`, logging at `rust_log`.
async fn serve_logging(
    files: &[(&str, &str)],
    rust_log: &str,
) -> (tempfile::TempDir, Proc, reqwest::Client) {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for (name, text) in files {
        std::fs::write(models.join(name), text).unwrap();
    }
    let url = fresh_database_url(dir.path()).await;
    let proc = spawn_with(dir.path(), &url, "server", &[("RUST_LOG", rust_log)]).await;
    let client = reqwest::Client::new();
    let setup = client
        .post(format!("{}/setup", proc.base))
        .json(&json!({"email": EMAIL, "password": PASSWORD, "name": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 200);
    (dir, proc, client)
}

/// `request` sent as the admin: the answer's body as JSON.
async fn as_admin(request: reqwest::RequestBuilder) -> Value {
    request
        .basic_auth(EMAIL, Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// GET `url` as the admin: its body as JSON.
async fn get_json(client: &reqwest::Client, url: String) -> Value {
    as_admin(client.get(url)).await
}

/// POST `body` to `url` as the admin: the answer's body as JSON.
async fn post_json(client: &reqwest::Client, url: String, body: Value) -> Value {
    as_admin(client.post(url).json(&body)).await
}

/// The messages of a JSON log's lines.
fn messages(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| l["fields"]["message"].as_str().map(str::to_owned))
        .collect()
}

const LOUD_JS: &str = r#"
export function pre_put(ctx) {
  console.warn("renaming", ctx.id);
  console.error("careful with", ctx.patch.name);
}
"#;

#[tokio::test]
async fn console_output_goes_to_the_log_with_the_script_and_export_named() {
    // The widget's own script, with its put hook swapped for a louder one.
    let script = format!(
        "{}\n{LOUD_JS}",
        WIDGET_JS.replace("export function pre_put(", "function unused_pre_put(")
    );
    let (dir, proc, client) = serve(&[("widget.toml", WIDGET), ("widget.js", &script)]).await;
    let base = proc.base.clone();
    let (email, password) = (EMAIL, PASSWORD);
    let created = post_json(
        &client,
        format!("{base}/api/widget"),
        json!({"name": "gizmo"}),
    )
    .await;
    let id = created["data"]["_id"].as_str().unwrap().to_owned();
    let renamed = client
        .put(format!("{base}/api/widget/{id}"))
        .basic_auth(email, Some(password))
        .json(&json!({"name": "gadget"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    let boom = client
        .post(format!("{base}/api/widget"))
        .basic_auth(email, Some(password))
        .json(&json!({"name": "boom"}))
        .send()
        .await
        .unwrap();
    assert_eq!(boom.status(), 500);
    assert!(!boom.text().await.unwrap().contains("secret detail 42"));
    stop_process(proc).await;

    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let printed = |level: &str, text: &str, export: &str| {
        lines.iter().any(|l| {
            l["level"] == level
                && l["fields"]["message"] == text
                && l["fields"]["export"] == export
                && l["fields"]["script"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("widget.js"))
        })
    };
    assert!(printed("INFO", "creating gizmo", "pre_post"), "{log}");
    assert!(
        printed("WARN", &format!("renaming {id}"), "pre_put"),
        "{log}"
    );
    assert!(printed("ERROR", "careful with gadget", "pre_put"), "{log}");
    assert!(
        log.contains("secret detail 42"),
        "the detail is for the log: {log}"
    );
}

/// A hook that reads through `ctx.db`, and a function that computes for longer than a call
/// may run on a request worker: where the server tries calls on the worker first, both are
/// stopped there and run again on the script pool. Each call's effect and log line appear
/// once, whichever way it ran.
const PATIENT_JS: &str = r#"
export async function pre_post(ctx) {
  console.log("counting before", ctx.doc.name);
  const seen = await ctx.db.count("gadget");
  return { tag: `after ${seen}` };
}

export const functions = {
  slow(ctx) {
    console.log("slow call", ctx.params.n);
    let laps = 0;
    const until = Date.now() + 20;
    while (Date.now() < until) laps++;
    return { n: ctx.params.n, laps: laps > 0 };
  },
};
"#;

#[tokio::test]
async fn calls_that_leave_the_worker_log_once_and_answer_once() {
    let gadget = "name = \"Gadget\"\n[fields]\nname = \"String\"\ntag = \"String\"\n[perms]\nadmin = \"crud\"\n[options]\ncallable = [\"slow\"]\n";
    let (dir, proc, client) = serve(&[("gadget.toml", gadget), ("gadget.js", PATIENT_JS)]).await;
    let base = proc.base.clone();
    for n in 0..6 {
        let body = json!({"name": format!("g{n}")});
        let created = post_json(&client, format!("{base}/api/gadget"), body).await;
        assert_eq!(created["data"]["tag"], json!(format!("after {n}")));
        let called = get_json(&client, format!("{base}/call/gadget/slow?n={n}")).await;
        assert_eq!(called["data"], json!({"n": n.to_string(), "laps": true}));
    }
    stop_process(proc).await;

    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    let messages = messages(&log);
    let count = |text: &str| messages.iter().filter(|m| *m == text).count();
    for n in 0..6 {
        assert_eq!(count(&format!("counting before g{n}")), 1, "{log}");
        assert_eq!(count(&format!("slow call {n}")), 1, "{log}");
    }
}

/// A function that reaches for `ctx.db` only when asked to.
const NOW_AND_THEN_JS: &str = r#"
export const functions = {
  async maybe(ctx) {
    if (ctx.params.db) return { n: await ctx.db.count("gadget") };
    return { n: -1 };
  },
};
"#;

/// Where calls are tried on the request's worker first (more than one CPU), an export whose
/// call reached for `ctx.db` there is sent to the script pool, and tried on the workers again
/// once enough calls in a row on the pool have not needed `ctx.db`; on one CPU neither
/// happens. Every call is answered as if it ran in one place.
#[tokio::test]
async fn an_export_that_reaches_for_ctx_db_now_and_then_is_tried_on_the_workers_again() {
    let gadget = "name = \"Gadget\"\n[fields]\nname = \"String\"\n[perms]\nadmin = \"crud\"\n[options]\ncallable = [\"maybe\"]\n";
    let (dir, proc, client) = serve_logging(
        &[("gadget.toml", gadget), ("gadget.js", NOW_AND_THEN_JS)],
        "info,jxp_script=debug",
    )
    .await;
    let base = proc.base.clone();
    let call = |db: bool| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let query = if db { "?db=1" } else { "" };
            let answer = get_json(&client, format!("{base}/call/gadget/maybe{query}")).await;
            assert_eq!(
                answer["data"]["n"],
                json!(if db { 0 } else { -1 }),
                "{answer}"
            );
        }
    };
    // A few calls for the workers to make their runtimes, then one that reaches for ctx.db
    // (tried on a worker once one has a runtime), a few times over.
    for _ in 0..3 {
        for _ in 0..40 {
            call(false).await;
        }
        call(true).await;
    }
    // Enough calls that need no ctx.db for a run of 64 in a row on the pool.
    for _ in 0..400 {
        call(false).await;
    }
    stop_process(proc).await;

    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    let messages = messages(&log);
    let count = |start: &str| messages.iter().filter(|m| m.starts_with(start)).count();
    let to_pool = count("calls of this export run on the script pool");
    let back = count("calls of this export are tried on the request workers again");
    if std::thread::available_parallelism().map_or(1, usize::from) > 1 {
        assert!(to_pool >= 1, "never sent to the pool: {log}");
        assert!(back >= 1, "never tried on the workers again: {log}");
    } else {
        assert_eq!((to_pool, back), (0, 0), "{log}");
    }
}

//! `jxp import`, run as a user runs it: newline-delimited JSON loaded into a model, each line
//! checked as a POST is and given the same system fields, all or nothing. On SQLite and, with
//! `JXP_TEST_DATABASE_URL`, on PostgreSQL; there also beside a running server, whose
//! subscribers get the import's creates.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Ran, TestServer, keys_of, run_jxp_with_stdin, test_postgres};
use crate::realtime::client::WsClient;

/// `name` required, `code` unique, `size` with a default, `title` in the full-text index.
const ITEM: &str = r#"
name = "Item"
[fields]
name = { type = "String", required = true }
code = { type = "String", unique = true }
size = { type = "Number", default = 1 }
title = { type = "String", index = "text" }
[perms]
all = "crud"
"#;

async fn server() -> TestServer {
    TestServer::start(&[("item", ITEM)], &[]).await
}

/// Runs `jxp import Item FILE` with the lines in a file (or on stdin with `stdin`), with the
/// server stopped as on SQLite it must be, then starts it again.
async fn import(s: &mut TestServer, lines: &str, stdin: bool) -> Ran {
    s.stop().await;
    let ran = import_beside(s, lines, stdin, &[]).await;
    s.boot().await.unwrap();
    ran
}

/// `jxp import` on the server's database, whether the server runs or not.
async fn import_beside(s: &TestServer, lines: &str, stdin: bool, flags: &[&str]) -> Ran {
    let file = s.dir.path().join("in.ndjson");
    std::fs::write(&file, lines).unwrap();
    let path = file.display().to_string();
    let mut args = vec!["import", "Item", if stdin { "-" } else { &path }];
    args.extend_from_slice(flags);
    let input = stdin.then(|| lines.as_bytes().to_vec());
    run_jxp_with_stdin(s.dir.path(), &s.database_url, &args, input).await
}

/// The documents of `item`, oldest first.
async fn items(s: &TestServer) -> Vec<Value> {
    let (status, body) = s.get("/api/item?sort=createdAt&limit=100").await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn imported_documents_are_served_with_the_fields_a_post_gives() {
    let mut s = server().await;
    let posted = s.create("item", json!({"name": "posted"})).await;
    let lines = concat!(
        r#"{"name": "a", "code": "A", "title": "kubla khan"}"#,
        "\n\n   \n",
        r#"{"name": "b", "size": "7", "_id": "000000000000000000000001", "createdAt": "1999"}"#,
        "\n",
        r#"{"name": "c"}"#,
    );
    let ran = import(&mut s, lines, false).await;
    assert!(ran.success, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("imported 3 documents into item"),
        "{}",
        ran.stdout
    );

    let docs = items(&s).await;
    assert_eq!(docs.len(), 4, "{docs:?}");
    let (_, first) = s.get(&format!("/api/item/{posted}")).await;
    let first = &first["data"];
    for doc in &docs[1..] {
        let id = doc["_id"].as_str().unwrap();
        assert!(jxp_model::is_object_id(id), "{doc}");
        assert_ne!(
            id, "000000000000000000000001",
            "a system field from the file is dropped"
        );
        assert_ne!(doc["createdAt"], "1999");
        assert!(doc["createdAt"].as_str().unwrap() >= first["createdAt"].as_str().unwrap());
        assert_eq!(doc["createdAt"], doc["updatedAt"]);
        // The fields a POST gives, and the model's default.
        let mut expected = keys_of(first);
        for extra in ["code", "title"] {
            if doc.get(extra).is_some() {
                expected.push(extra);
            }
        }
        expected.sort_unstable();
        assert_eq!(keys_of(doc), expected, "{doc} vs {first}");
        let (status, one) = s.get(&format!("/api/item/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(&one["data"], doc);
    }
    assert_eq!(docs[1]["size"], 1);
    assert_eq!(docs[2]["size"], 7, "cast as a POST casts");
    // The full-text index has the imported documents.
    let (_, found) = s.get("/api/item?search=kubla").await;
    assert_eq!(found["data"][0]["name"], "a", "{found}");
    // The unique index too, and writes after the import go on as usual.
    let (status, _) = s.post("/api/item", json!({"name": "d", "code": "A"})).await;
    assert_eq!(status, 409);
    s.create("item", json!({"name": "e", "code": "E"})).await;
    assert_eq!(s.total("item").await, 5);
}

#[tokio::test]
async fn standard_input_is_read_with_a_dash() {
    let mut s = server().await;
    let ran = import(&mut s, "{\"name\": \"x\"}\n{\"name\": \"y\"}\n", true).await;
    assert!(ran.success, "{}", ran.stderr);
    let names: Vec<Value> = items(&s).await.iter().map(|d| d["name"].clone()).collect();
    assert_eq!(names, [json!("x"), json!("y")]);
}

/// The message the API answers `body` with, posted to `item`.
async fn api_refusal(s: &TestServer, body: &str) -> String {
    let (status, answer) = s
        .raw(
            reqwest::Method::POST,
            "/api/item",
            Some("application/json"),
            body.as_bytes().to_vec(),
        )
        .await;
    assert!(status.is_client_error(), "{status} {answer}");
    answer["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_bad_line_stops_the_import_with_its_number_and_nothing_is_written() {
    let mut s = server().await;
    s.create("item", json!({"name": "kept"})).await;
    let good = "{\"name\": \"a\"}\n{\"name\": \"b\"}\n";
    for (bad, line) in [
        ("{\"name\": \"c\",}", 3),
        ("[1, 2]", 3),
        ("{\"size\": 2}", 3),
        ("{\"name\": \"c\", \"size\": \"big\"}", 3),
        ("\u{1}", 3),
    ] {
        let expected = api_refusal(&s, bad).await;
        let ran = import(
            &mut s,
            &format!("{good}{bad}\n{{\"name\": \"d\"}}\n"),
            false,
        )
        .await;
        assert!(!ran.success, "{bad}: {}", ran.stdout);
        assert!(
            ran.stderr.contains(&format!("line {line}: {expected}")),
            "{bad}: wanted line {line}: {expected}\n{}",
            ran.stderr
        );
        assert_eq!(s.total("item").await, 1, "{bad}: nothing written");
    }
    // The line number counts the empty lines skipped; a bad line far into the file (past
    // the first chunks already written) still writes nothing.
    let mut many = String::from("\n");
    for n in 0..2500 {
        many.push_str(&format!("{{\"name\": \"n{n}\"}}\n"));
    }
    many.push_str("{\"name\": 5, \"size\": []}\n");
    let ran = import(&mut s, &many, true).await;
    assert!(!ran.success);
    assert!(ran.stderr.contains("line 2502: "), "{}", ran.stderr);
    assert_eq!(s.total("item").await, 1);
}

#[tokio::test]
async fn a_taken_unique_value_writes_nothing() {
    let mut s = server().await;
    s.create("item", json!({"name": "kept", "code": "A"})).await;
    let expected = api_refusal(&s, r#"{"name": "x", "code": "A"}"#).await;

    // Taken by a document already stored.
    let ran = import(
        &mut s,
        "{\"name\": \"x\", \"code\": \"B\"}\n{\"name\": \"y\", \"code\": \"A\"}\n",
        false,
    )
    .await;
    assert!(!ran.success);
    assert!(
        ran.stderr.contains(&format!("line 2: {expected}")),
        "{}",
        ran.stderr
    );
    assert_eq!(s.total("item").await, 1);

    // Taken earlier in the same file.
    let ran = import(
        &mut s,
        "{\"name\": \"x\", \"code\": \"C\"}\n\n{\"name\": \"y\", \"code\": \"D\"}\n{\"name\": \"z\", \"code\": \"C\"}\n",
        true,
    )
    .await;
    assert!(!ran.success);
    assert!(ran.stderr.contains("line 4: "), "{}", ran.stderr);
    assert!(ran.stderr.contains("code"), "{}", ran.stderr);
    assert_eq!(s.total("item").await, 1);
    let (_, found) = s.get("/count/item?filter[code]=C").await;
    assert_eq!(found["count"], 0);
}

#[tokio::test]
async fn a_model_with_create_hooks_is_imported_only_when_told_to_skip_them() {
    let mut s = TestServer::start_scripted(
        &[("item", ITEM)],
        &[(
            "item.js",
            "export function pre_post(ctx) { return ctx.body; }\n",
        )],
        &[],
    )
    .await;
    s.stop().await;
    let refused = import_beside(&s, "{\"name\": \"x\"}\n", false, &[]).await;
    assert!(!refused.success);
    assert!(refused.stderr.contains("--no-hooks"), "{}", refused.stderr);
    let ran = import_beside(&s, "{\"name\": \"x\"}\n", false, &["--no-hooks"]).await;
    assert!(ran.success, "{}", ran.stderr);
    s.boot().await.unwrap();
    assert_eq!(s.total("item").await, 1);
}

#[tokio::test]
async fn on_postgres_a_running_server_serves_the_import_and_its_subscribers_get_the_creates() {
    if test_postgres().is_none() {
        return;
    }
    let mut s = TestServer::start(&[("item", ITEM)], &[("CHANGELOG_RETENTION", "2")]).await;
    s.add_admin("admin@example.com", "secret-password", "Admin")
        .await;
    let mut ws = WsClient::connect(&s).await;
    ws.auth_ok(json!({"email": "admin@example.com", "password": "secret-password"}))
        .await;
    ws.subscribe_ok(json!({"model": "item"})).await;
    // The command reads its settings as the server does, `.env` included.
    std::fs::write(s.dir.path().join(".env"), "CHANGELOG_RETENTION=2\n").unwrap();
    // A cached answer from before the import must not outlive it.
    assert_eq!(s.total("item").await, 0);
    let ran = import_beside(
        &s,
        "{\"name\": \"a\"}\n{\"name\": \"b\"}\n{\"name\": \"c\"}\n",
        false,
        &[],
    )
    .await;
    assert!(ran.success, "{}", ran.stderr);
    // The log keeps the last two (its retention): those are the events.
    let events = ws.events(2).await;
    let names: Vec<&Value> = events.iter().map(|e| &e["data"]["item"]["name"]).collect();
    assert_eq!(names, [&json!("b"), &json!("c")], "{events:?}");
    ws.expect_no_event(Duration::from_millis(200)).await;
    assert_eq!(s.total("item").await, 3);
    let docs = items(&s).await;
    assert_eq!(docs.len(), 3);
    // The import leaves the table's planner statistics fresh, not waiting for autovacuum.
    let (client, conn) = tokio_postgres::connect(&s.database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // Vacuumed too, so that a count reads an index alone from the start.
    let row = client
        .query_one(
            "SELECT last_analyze IS NOT NULL, last_vacuum IS NOT NULL FROM pg_stat_user_tables
             WHERE schemaname = current_schema() AND relname = 'm_item'",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the imported table was not analyzed");
    assert!(row.get::<_, bool>(1), "the imported table was not vacuumed");
}

#[tokio::test]
async fn the_change_log_counts_the_import_and_keeps_its_last_documents() {
    let mut s = TestServer::start(&[("item", ITEM)], &[("CHANGELOG_RETENTION", "2")]).await;
    s.add_admin("admin@example.com", "secret-password", "Admin")
        .await;
    std::fs::write(s.dir.path().join(".env"), "CHANGELOG_RETENTION=2\n").unwrap();
    s.create("item", json!({"name": "before"})).await;
    let ran = import(
        &mut s,
        "{\"name\": \"a\"}\n{\"name\": \"b\"}\n{\"name\": \"c\"}\n",
        false,
    )
    .await;
    assert!(ran.success, "{}", ran.stderr);
    let mut ws = WsClient::connect(&s).await;
    ws.auth_ok(json!({"email": "admin@example.com", "password": "secret-password"}))
        .await;
    // Resuming from before the import: what comes next was trimmed, as after any trim.
    let reply = ws
        .request("subscribe", json!({"model": "item", "since": 1}))
        .await;
    assert_eq!(reply["message"], "resync required", "{reply}");
    assert_eq!(reply["latest"], 4, "one seq per document: {reply}");
    // The retained last documents replay with their seqs.
    ws.subscribe_ok(json!({"model": "item", "since": 2})).await;
    let events = ws.events(2).await;
    let got: Vec<(&Value, &Value)> = events
        .iter()
        .map(|e| (&e["data"]["item"]["name"], &e["data"]["seq"]))
        .collect();
    assert_eq!(got, [(&json!("b"), &json!(3)), (&json!("c"), &json!(4))]);
    // A write after the import takes the next seq.
    let id = s.create("item", json!({"name": "after"})).await;
    let ev = ws.event().await;
    assert_eq!(ev["data"]["item"]["_id"], id.as_str());
    assert_eq!(ev["data"]["seq"], 5, "{ev}");
}

//! PostgreSQL keeps documents as `jsonb` (which sorts object keys and keeps numbers as
//! `numeric`) beside the text they were written with: a document reads back byte for byte as
//! it does from SQLite, key order and number spelling included; and a table of an earlier
//! version, whose documents are `json`, is converted once at start without changing what
//! reads answer. Both tests need `JXP_TEST_DATABASE_URL`: they compare the two databases.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, test_postgres};

const DOC: &str = r#"
name = "Doc"
[fields]
title = { type = "String", index = true }
notes = { type = "String", index = "text" }
n = "Number"
extra = "Mixed"
[perms]
all = "crud"
"#;

/// A document whose keys are out of order at every level, with numbers `jsonb` would
/// respell: a whole float, a float of 1e16, a tiny and a huge one, an integer past `i64`.
fn body() -> Value {
    json!({
        "title": "b",
        "n": 1e300,
        "extra": {"z": 1, "a": [1.0, 0.1, {"y": 2, "b": 1e16}], "m": 1e-7, "k": 12_345_678_901_234_567_890u64},
        "notes": "hello world",
    })
}

/// The raw bytes of an answer.
async fn raw(s: &TestServer, path: &str) -> String {
    let r = s
        .client
        .get(format!("{}{path}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

/// `text` with the values that differ between two servers (the id, the times) replaced.
fn normalised(text: &str, doc: &Value) -> String {
    let mut out = text.to_owned();
    for (key, with) in [("_id", "ID"), ("createdAt", "T"), ("updatedAt", "T")] {
        if let Some(v) = doc[key].as_str() {
            out = out.replace(v, with);
        }
    }
    out
}

/// The same server's models on a SQLite file of its own, beside the PostgreSQL one.
async fn sqlite_twin() -> TestServer {
    let mut s = TestServer::start(&[("doc", DOC)], &[]).await;
    s.stop().await;
    s.database_url = s.dir.path().join("twin.db").display().to_string();
    s.boot().await.unwrap();
    s
}

/// Creates `body()` and answers the created document and the raw answers of a get and a
/// list, each normalised (a text search's `score` is each database's own ranking).
async fn written_and_read(s: &TestServer) -> (Value, Vec<String>) {
    let (status, created) = s.post("/api/doc", body()).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let doc = created["data"].clone();
    let id = doc["_id"].as_str().unwrap();
    let reads = [
        format!("/api/doc/{id}"),
        "/api/doc?filter[title]=b".to_owned(),
    ];
    let mut texts = Vec::new();
    for path in reads {
        texts.push(normalised(&raw(s, &path).await, &doc));
    }
    (doc, texts)
}

#[tokio::test]
async fn a_document_reads_back_the_same_bytes_as_on_sqlite() {
    if test_postgres().is_none() {
        return;
    }
    let pg = TestServer::start(&[("doc", DOC)], &[]).await;
    assert!(pg.database_url.starts_with("postgres"));
    let lite = sqlite_twin().await;
    let (pg_doc, pg_reads) = written_and_read(&pg).await;
    let (_, lite_reads) = written_and_read(&lite).await;
    assert_eq!(pg_reads, lite_reads);
    // What both answer: the keys as written, the numbers as spelled by SQLite.
    let got = &pg_reads[0];
    let extra = got.find(
        r#""extra":{"z":1,"a":[1.0,0.1,{"y":2,"b":1e+16}],"m":1e-7,"k":12345678901234567890}"#,
    );
    assert!(extra.is_some(), "{got}");
    assert!(got.contains(r#""n":1e+300"#), "{got}");
    let keys: Vec<&String> = pg_doc.as_object().unwrap().keys().collect();
    assert!(keys.iter().position(|k| *k == "title") < keys.iter().position(|k| *k == "n"));
}

/// Runs SQL on the test database directly, as an earlier version left it.
async fn exec(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
}

async fn column_type(url: &str, column: &str) -> Option<String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .query_opt(
            "SELECT data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'm_doc' AND column_name = $1",
            &[&column],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

/// The table as versions before `jsonb` created it, with two documents written as they
/// wrote them (their exact text in a `json` column).
const OLD_TABLE: &str = r#"
DROP TABLE m_doc;
CREATE TABLE m_doc (
    rid bigserial PRIMARY KEY,
    _id text COLLATE "C" NOT NULL UNIQUE,
    doc json NOT NULL,
    _owner_id text COLLATE "C",
    _deleted boolean NOT NULL DEFAULT false,
    createdAt text COLLATE "C",
    updatedAt text COLLATE "C"
);
CREATE INDEX "sx_doc__owner" ON m_doc (_owner_id);
CREATE INDEX "sx_doc__created" ON m_doc (createdAt);
CREATE INDEX "ix_doc__title" ON m_doc (((doc->>'title')) COLLATE "C");
ALTER TABLE m_doc ADD COLUMN tsv tsvector GENERATED ALWAYS AS
    (to_tsvector('simple'::regconfig, coalesce((doc->>'notes'), ''))) STORED;
CREATE INDEX "tx_doc" ON m_doc USING gin (tsv);
INSERT INTO m_doc (_id, doc, _deleted, createdAt, updatedAt) VALUES
 ('00000000000000000000000a',
  '{"_id":"00000000000000000000000a","title":"old","n":1.0,"extra":{"z":[0.1,1e300],"a":{"y":1,"b":2}},"notes":"kept words","_deleted":false,"__v":0,"createdAt":"2020-01-01T00:00:00.000Z","updatedAt":"2020-01-01T00:00:00.000Z"}',
  false, '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z'),
 ('00000000000000000000000b',
  '{"_id":"00000000000000000000000b","n":7,"title":"other","_deleted":false,"__v":0,"createdAt":"2020-01-02T00:00:00.000Z","updatedAt":"2020-01-02T00:00:00.000Z"}',
  false, '2020-01-02T00:00:00.000Z', '2020-01-02T00:00:00.000Z');
DELETE FROM jxp_meta WHERE key = 'jsonb:doc';
"#;

#[tokio::test]
async fn a_json_table_of_an_earlier_version_is_converted_once() {
    if test_postgres().is_none() {
        return;
    }
    let mut s = TestServer::start(&[("doc", DOC)], &[]).await;
    s.stop().await;
    exec(&s.database_url, OLD_TABLE).await;
    assert_eq!(
        column_type(&s.database_url, "doc").await.as_deref(),
        Some("json")
    );
    s.boot().await.unwrap();
    assert_eq!(
        column_type(&s.database_url, "doc").await.as_deref(),
        Some("jsonb")
    );
    assert_eq!(
        column_type(&s.database_url, "body").await.as_deref(),
        Some("text")
    );

    // Each document reads back exactly as it was written.
    let a = raw(&s, "/api/doc/00000000000000000000000a").await;
    assert!(
        a.contains(r#""title":"old","n":1.0,"extra":{"z":[0.1,1e+300],"a":{"y":1,"b":2}},"notes":"kept words""#),
        "{a}"
    );
    let b = raw(&s, "/api/doc/00000000000000000000000b").await;
    assert!(
        b.contains(r#""_id":"00000000000000000000000b","n":7,"title":"other""#),
        "{b}"
    );

    // Filters, the index, sorting, counting and the rebuilt full-text column all work on it.
    let (status, list) = s.get("/api/doc?filter[title]=old").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    let (_, list) = s.get("/api/doc?filter[n]=$gt:5").await;
    assert_eq!(list["data"][0]["title"], "other", "{list}");
    let (_, list) = s.get("/api/doc?sort=-n").await;
    assert_eq!(list["data"][0]["title"], "other", "{list}");
    let (_, found) = s.get("/api/doc?search=words").await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["data"][0]["title"], "old", "{found}");
    let (_, count) = s.get("/count/doc?filter[title]=other").await;
    assert_eq!(count["count"], 1, "{count}");

    // An update writes both forms; a second start converts nothing again.
    let (status, updated) = s
        .put(
            "/api/doc/00000000000000000000000b",
            json!({"title": "changed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    s.restart().await;
    let (_, list) = s.get("/api/doc?filter[title]=changed").await;
    assert_eq!(list["data"][0]["n"], 7, "{list}");
    let a_again = raw(&s, "/api/doc/00000000000000000000000a").await;
    assert_eq!(a, a_again);
}

//! On PostgreSQL each indexed string or number field is kept in a generated column, indexed
//! with `_deleted`: filters on the field read the column, a count on it is answered from the
//! index alone, writes keep it current, and the columns follow the models as they change.
//! A Number field without an index has a column too (and no index), so a scan that filters
//! or sorts on it reads numbers rather than the documents.
//! (SQLite's expression indexes already serve all of this; the suite runs there too.)

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{
    Account, Auth, TestServer, call, exec_sql, list_explained, setup_admin, test_postgres,
};

const ITEM: &str = r#"
name = "Item"
[fields]
cat = { type = "String", index = true }
n = { type = "Number", index = true }
when = { type = "Date", index = true }
note = "String"
rank = "Number"
[perms]
all = "crud"
"#;

/// The model later: `cat` is no longer indexed.
fn item_later() -> String {
    let later = ITEM.replace(
        r#"cat = { type = "String", index = true }"#,
        r#"cat = "String""#,
    );
    assert_ne!(later, ITEM);
    later
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// The columns of `m_item` and their types, and its index definitions.
async fn table(url: &str) -> (Vec<(String, String)>, Vec<String>) {
    let c = client(url).await;
    let columns = c
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'm_item'
             ORDER BY column_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let indexes = c
        .query(
            "SELECT indexdef FROM pg_indexes
             WHERE schemaname = current_schema() AND tablename = 'm_item' ORDER BY indexname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (columns, indexes)
}

/// The first column of each row `sql` answers, as text.
async fn texts(url: &str, sql: &str) -> Vec<String> {
    client(url)
        .await
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The columns of `m_item` in the order its rows hold them.
async fn column_order(url: &str) -> Vec<String> {
    texts(
        url,
        "SELECT attname::text FROM pg_attribute
         WHERE attrelid = 'm_item'::regclass AND attnum > 0 AND NOT attisdropped
         ORDER BY attnum",
    )
    .await
}

/// The SQL `?explain=analyze` says `path` runs.
async fn analyzed_sql(s: &TestServer, admin: &Account, path: &str) -> String {
    let data = list_explained(s, admin, path, "analyze").await;
    data["sql"].as_str().unwrap_or_default().to_owned()
}

/// When `m_item` was last vacuumed (seconds since the epoch; 0 for never).
async fn last_vacuum(url: &str) -> f64 {
    client(url)
        .await
        .query_one(
            "SELECT coalesce(extract(epoch FROM last_vacuum), 0)::float8 FROM pg_stat_user_tables
             WHERE schemaname = current_schema() AND relname = 'm_item'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// The plan of a count of `cat` = `c3`, as an admin sees it.
async fn count_plan(s: &TestServer, admin: &Account) -> String {
    let data = list_explained(s, admin, "/count/item?filter[cat]=c3", "1").await;
    data["plan"].to_string()
}

/// The `n` of each document of a list.
fn field_n(body: &Value) -> Vec<&Value> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {body}"))
        .iter()
        .map(|d| &d["n"])
        .collect()
}

fn count(body: &Value) -> u64 {
    body["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no count: {body}"))
}

/// A server on the `item` model with `n` documents imported, `doc(i)` the i-th, and its admin.
async fn items(n: u64, doc: impl Fn(u64) -> Value) -> (TestServer, Account) {
    let mut s = TestServer::start(&[("item", ITEM)], &[]).await;
    let admin = setup_admin(&s).await;
    let lines: String = (0..n).map(|i| format!("{}\n", doc(i))).collect();
    s.import_lines("Item", lines).await;
    (s, admin)
}

#[tokio::test]
async fn indexed_fields_are_read_from_generated_columns() {
    let (mut s, admin) = items(3000, |i| {
        json!({"cat": format!("c{}", i % 30), "n": i, "rank": 3000 - i, "when": format!("2026-01-{:02}", 1 + i % 28)})
    })
    .await;

    // The answers, whichever way the database reads the fields.
    let (_, body) = s.get("/count/item?filter[cat]=c3").await;
    assert_eq!(count(&body), 100);
    let (_, body) = s.get("/count/item?filter[cat]=$in:c3,c4").await;
    assert_eq!(count(&body), 200);
    let (_, body) = s.get("/count/item?filter[n]=$gte:2990").await;
    assert_eq!(count(&body), 10);
    let (_, body) = s.get("/count/item?filter[when]=$lt:2026-01-02").await;
    assert_eq!(count(&body), 108);
    let (_, body) = s
        .get("/api/item?filter[cat]=c7&filter[n]=$lt:100&sort=n")
        .await;
    let ns = field_n(&body);
    assert_eq!(
        ns,
        [&json!(7), &json!(37), &json!(67), &json!(97)],
        "{body}"
    );

    // A filter and a sort on the Number field without an index.
    let by_rank = "/api/item?filter[rank]=$gte:2996&sort=rank";
    let (_, body) = s.get(by_rank).await;
    let ns = field_n(&body);
    assert_eq!(
        ns,
        [&json!(4), &json!(3), &json!(2), &json!(1), &json!(0)],
        "{body}"
    );

    // Writes keep the columns current: an update moves a document, a delete removes it.
    let (_, body) = s.get("/api/item?filter[cat]=c3&limit=2&sort=n").await;
    let first = body["data"][0]["_id"].as_str().unwrap().to_owned();
    let second = body["data"][1]["_id"].as_str().unwrap().to_owned();
    let (status, body) = s
        .put(
            &format!("/api/item/{first}"),
            json!({"cat": "moved", "n": -1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s.delete(&format!("/api/item/{second}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = s.get("/count/item?filter[cat]=c3").await;
    assert_eq!(count(&body), 98);
    let (_, body) = s.get("/api/item?filter[n]=$lt:0").await;
    assert_eq!(body["data"][0]["cat"], "moved", "{body}");

    // A grouping by an indexed field, summing another, answers as in memory.
    let group = json!([
        {"$group": {"_id": "$cat", "total": {"$sum": "$n"}, "low": {"$min": "$n"}}},
        {"$sort": {"_id": 1}},
        {"$limit": 2}
    ]);
    let (status, body) = call(
        &s,
        Method::POST,
        "/aggregate/item",
        &Auth::of(Some(&admin)),
        Some(group.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!([
            {"_id": "c0", "total": 148_500, "low": 0},
            {"_id": "c1", "total": 148_600, "low": 1}
        ])
    );

    if test_postgres().is_none() {
        return;
    }
    // On PostgreSQL that grouping reads the two fields' columns, not the documents, and the
    // `int8` column beside the number's, which it sums.
    let (_, plan) = call(
        &s,
        Method::POST,
        "/aggregate/item?explain=true",
        &Auth::of(Some(&admin)),
        Some(group),
    )
    .await;
    let sql = plan["data"]["sql"].as_str().unwrap_or_default();
    assert!(
        sql.contains("\"gt_cat\" AS j0")
            && sql.contains("\"gn_n\" AS j1, \"gi_n\" AS n1")
            && sql.contains("SUM(k1)"),
        "{plan}"
    );
    let (columns, indexes) = table(&s.database_url).await;
    for (column, ty) in [
        ("gt_cat", "text"),
        ("gn_n", "numeric"),
        ("gt_when", "text"),
        ("gn_rank", "numeric"),
        ("gi_n", "bigint"),
        ("gi_rank", "bigint"),
    ] {
        assert!(
            columns.contains(&(column.to_owned(), ty.to_owned())),
            "{column}: {columns:?}"
        );
    }
    // The tables whose only generated column has an index of its own (tokens, API keys,
    // users) have no scan index: that index answers what it would.
    let scans = texts(
        &s.database_url,
        "SELECT tablename::text FROM pg_indexes
         WHERE schemaname = current_schema() AND indexname LIKE 'sc\\_%'
         ORDER BY tablename",
    )
    .await;
    assert_eq!(scans, ["m_item"]);
    // A table made by this version holds its documents after every other column, so a scan
    // on the system or generated columns never steps over them.
    let order = column_order(&s.database_url).await;
    assert_eq!(
        order,
        [
            "rid",
            "_deleted",
            "_id",
            "_owner_id",
            "createdat",
            "updatedat",
            "gt_cat",
            "gn_n",
            "gt_when",
            "gn_rank",
            "gi_n",
            "gi_rank",
            "doc",
            "body"
        ],
        "{order:?}"
    );
    // A string field without an index has no column, and the Number field's column no index
    // of its own: only the scan index holds it, with every other generated column.
    assert!(!columns.iter().any(|(c, _)| c == "gt_note"), "{columns:?}");
    assert!(
        !indexes
            .iter()
            .any(|d| d.contains("rank") && !d.contains("sc_item")),
        "{indexes:?}"
    );
    assert!(
        indexes.iter().any(|d| d.contains("sc_item")
            && d.ends_with(
                "(_deleted) INCLUDE (rid, _id, _owner_id, gt_cat, gn_n, gt_when, gn_rank, gi_n, gi_rank)"
            )),
        "{indexes:?}"
    );
    let analyzed = analyzed_sql(&s, &admin, by_rank).await;
    assert!(
        analyzed.contains("\"gn_rank\" >=") && analyzed.contains("ORDER BY \"gn_rank\" ASC"),
        "{analyzed}"
    );
    assert!(
        indexes
            .iter()
            .any(|d| d.contains("iz_item__cat") && d.contains("(gt_cat NULLS FIRST, _deleted)")),
        "{indexes:?}"
    );
    assert!(
        !indexes.iter().any(|d| d.contains("ix_item__")),
        "{indexes:?}"
    );

    // A count of an indexed value is planned on its column's index. (Whether it reads the
    // index alone depends on what VACUUM could mark all-visible while other transactions of
    // the shared test server ran, so the scan's kind is not asserted.)
    let plan = count_plan(&s, &admin).await;
    assert!(plan.contains("iz_item__cat"), "{plan}");

    // A sort on an indexed field orders by its column, as the check constraint on the
    // documents lets it.
    let sorted = "/api/item?filter[cat]=c7&sort=-n&limit=3";
    let (_, body) = s.get(sorted).await;
    let ns = field_n(&body);
    assert_eq!(ns, [&json!(2977), &json!(2947), &json!(2917)], "{body}");
    let analyzed = analyzed_sql(&s, &admin, sorted).await;
    assert!(analyzed.contains("\"gn_n\" DESC NULLS LAST"), "{analyzed}");

    // A table as an earlier version left it (expression indexes, no generated columns) gets
    // its columns at the next start, and is vacuumed after the rewrite.
    let vacuumed_before = last_vacuum(&s.database_url).await;
    s.stop().await;
    client(&s.database_url)
        .await
        .batch_execute(
            "ALTER TABLE m_item DROP COLUMN gt_cat, DROP COLUMN gn_n, DROP COLUMN gt_when,
                 DROP COLUMN gn_rank, DROP COLUMN gi_n, DROP COLUMN gi_rank;
             CREATE INDEX ix_item__cat ON m_item (((doc->>'cat')) COLLATE \"C\");",
        )
        .await
        .unwrap();
    s.boot().await.unwrap();
    let (columns, indexes) = table(&s.database_url).await;
    assert!(columns.iter().any(|(c, _)| c == "gt_cat"), "{columns:?}");
    assert!(columns.iter().any(|(c, _)| c == "gn_rank"), "{columns:?}");
    assert!(columns.iter().any(|(c, _)| c == "gi_rank"), "{columns:?}");
    assert!(
        !indexes.iter().any(|d| d.contains("ix_item__")),
        "{indexes:?}"
    );
    let vacuumed_after = last_vacuum(&s.database_url).await;
    assert!(
        vacuumed_after > vacuumed_before,
        "{vacuumed_before} then {vacuumed_after}"
    );
    let plan = count_plan(&s, &admin).await;
    assert!(plan.contains("iz_item__cat"), "{plan}");
    let (_, body) = s.get("/count/item?filter[cat]=c3").await;
    assert_eq!(count(&body), 98);

    // A document that holds a string where the model now says Number (written before the
    // model said so): the check cannot hold, and the sort reads the documents, strings after
    // numbers as everywhere else.
    s.stop().await;
    let odd = r#"{"_id":"0000000000000000000000ff","cat":"c7","n":"x"}"#;
    client(&s.database_url)
        .await
        .batch_execute(&format!(
            "ALTER TABLE m_item DROP CONSTRAINT gn_n;
             INSERT INTO m_item (_id, doc, body, _deleted, createdAt, updatedAt) VALUES
             ('0000000000000000000000ff', '{odd}', '{odd}', false,
              '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z');"
        ))
        .await
        .unwrap();
    s.boot().await.unwrap();
    let (_, body) = s.get(sorted).await;
    let ns = field_n(&body);
    assert_eq!(ns, [&json!("x"), &json!(2977), &json!(2947)], "{body}");
    let analyzed = analyzed_sql(&s, &admin, sorted).await;
    assert!(!analyzed.contains("ORDER BY \"gn_n\""), "{analyzed}");
    let (_, body) = s.get("/count/item?filter[n]=$gte:2990").await;
    assert_eq!(count(&body), 10);
    let (status, body) = s
        .delete("/api/item/0000000000000000000000ff?_permaDelete=true")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // `cat` no longer indexed: its column and index go, and its filters read the document.
    s.stop().await;
    s.write_model("item", &item_later());
    s.boot().await.unwrap();
    let (columns, indexes) = table(&s.database_url).await;
    assert!(!columns.iter().any(|(c, _)| c == "gt_cat"), "{columns:?}");
    assert!(columns.iter().any(|(c, _)| c == "gn_n"), "{columns:?}");
    assert!(columns.iter().any(|(c, _)| c == "gn_rank"), "{columns:?}");
    assert!(!indexes.iter().any(|d| d.contains("_cat")), "{indexes:?}");
    // The scan index went with the column, and is made again without it.
    assert!(
        indexes.iter().any(|d| d.contains("sc_item")
            && d.ends_with(
                "(_deleted) INCLUDE (rid, _id, _owner_id, gn_n, gt_when, gn_rank, gi_n, gi_rank)"
            )),
        "{indexes:?}"
    );
    let (_, body) = s.get("/count/item?filter[cat]=c3").await;
    assert_eq!(count(&body), 98);
}

const NOTE: &str = r#"
name = "Note"
[fields]
title = { type = "String", index = "text" }
cat = { type = "String", index = true }
rank = "Number"
[perms]
all = "crud"
"#;

/// One column of the rows a SQL statement answers on a SQLite test database.
fn sqlite_texts(url: &str, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(url).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The `rank` of each document of a list.
fn ranks(body: &Value) -> Vec<&Value> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {body}"))
        .iter()
        .map(|d| &d["rank"])
        .collect()
}

/// What the `note` documents of the SQLite test answer, read every way: the top ranks, a
/// count on `rank`, full-text and an indexed field.
async fn note_answers(s: &TestServer, top: &str) {
    let (_, body) = s.get(top).await;
    assert_eq!(
        ranks(&body),
        [&json!(59), &json!(58), &json!(57), &json!(56)],
        "{body}"
    );
    let (_, body) = s.get("/count/note?filter[rank]=$lt:10").await;
    assert_eq!(count(&body), 10, "{body}");
    let (_, body) = s.get("/count/note?search=alpha").await;
    assert_eq!(count(&body), 60, "{body}");
    let (_, body) = s.get("/count/note?search=word7").await;
    assert_eq!(count(&body), 1, "{body}");
    let (_, body) = s.get("/count/note?filter[cat]=c1").await;
    assert_eq!(count(&body), 20, "{body}");
}

/// On SQLite a Number field no index covers is kept in a stored generated column, which
/// filters and sorts on it read instead of the documents. A table made before has it added at
/// the next start (SQLite cannot add a stored column, so the table is made again) with its
/// documents, row ids, indexes and full-text search intact; it goes again when the field gets
/// an index of its own, whose expression the filters must then name.
#[tokio::test]
async fn sqlite_keeps_unindexed_numbers_in_generated_columns() {
    if test_postgres().is_some() {
        return;
    }
    let mut s = TestServer::start(&[("note", NOTE)], &[]).await;
    let admin = setup_admin(&s).await;
    let lines: String = (0..60)
        .map(|i| {
            let rank = if i == 7 { json!(null) } else { json!((i * 7) % 60) };
            format!(
                "{}\n",
                json!({"title": format!("alpha word{i}"), "cat": format!("c{}", i % 3), "rank": rank})
            )
        })
        .collect();
    s.import_lines("Note", lines).await;
    let top = "/api/note?filter[rank]=$gte:50&sort=-rank&limit=4";
    let stored = "SELECT name FROM pragma_table_xinfo('m_note') WHERE hidden = 3";

    note_answers(&s, top).await;
    // A page in `_id` order reads the column in one query; the top ranks are picked from the
    // scan index first (see `pages_no_index_finds_are_whole_and_in_order`).
    let by_id = "/api/note?filter[rank]=$gte:50&limit=4";
    let analyzed = analyzed_sql(&s, &admin, by_id).await;
    assert!(analyzed.contains("\"gn_rank\" >="), "{analyzed}");
    assert!(!analyzed.contains("'$.rank'"), "{analyzed}");
    let analyzed = analyzed_sql(&s, &admin, top).await;
    assert!(
        analyzed.contains("INDEXED BY \"sc_note\"")
            && analyzed.ends_with("ORDER BY \"gn_rank\" DESC, _id ASC"),
        "{analyzed}"
    );
    assert_eq!(sqlite_texts(&s.database_url, stored), ["gn_rank"]);

    // The table as an earlier version made it: no generated column.
    s.stop().await;
    exec_sql(
        &s.database_url,
        "CREATE TABLE jxp_old (rid INTEGER PRIMARY KEY, _id TEXT NOT NULL UNIQUE,
             doc BLOB NOT NULL, _owner_id TEXT, _deleted INTEGER NOT NULL DEFAULT 0,
             createdAt TEXT, updatedAt TEXT);
         INSERT INTO jxp_old SELECT rid, _id, doc, _owner_id, _deleted, createdAt, updatedAt
             FROM m_note;
         DROP TABLE m_note;
         ALTER TABLE jxp_old RENAME TO m_note;",
    )
    .await;
    assert!(sqlite_texts(&s.database_url, stored).is_empty());
    let rids =
        "SELECT group_concat(rid || ':' || _id) FROM (SELECT rid, _id FROM m_note ORDER BY rid)";
    let before = sqlite_texts(&s.database_url, rids);
    s.boot().await.unwrap();
    assert_eq!(sqlite_texts(&s.database_url, stored), ["gn_rank"]);
    assert_eq!(sqlite_texts(&s.database_url, rids), before);
    let indexes = sqlite_texts(
        &s.database_url,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'm_note'
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    assert_eq!(
        indexes,
        [
            "iy_note__cat",
            "sc_note",
            "sx_note__created",
            "sx_note__owner"
        ]
    );
    note_answers(&s, top).await;
    // A document written after it is found by every path.
    let (status, body) = s
        .post(
            "/api/note",
            json!({"title": "alpha late", "cat": "c1", "rank": 99}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = s.get(top).await;
    assert_eq!(ranks(&body)[0], &json!(99), "{body}");
    let (_, body) = s.get("/count/note?search=late").await;
    assert_eq!(count(&body), 1, "{body}");

    // `rank` indexed: the column goes, and the filter names the index's expression.
    s.stop().await;
    s.write_model(
        "note",
        &NOTE.replace(
            r#"rank = "Number""#,
            r#"rank = { type = "Number", index = true }"#,
        ),
    );
    s.boot().await.unwrap();
    assert!(sqlite_texts(&s.database_url, stored).is_empty());
    let (_, body) = s.get(top).await;
    assert_eq!(ranks(&body)[..2], [&json!(99), &json!(59)], "{body}");
    let analyzed = analyzed_sql(&s, &admin, top).await;
    assert!(
        analyzed.contains("json_extract(doc,'$.rank')"),
        "{analyzed}"
    );
}

/// A grouping that sums and compares a Number field holding integers, fractions and an
/// integer of 19 digits answers exactly, on PostgreSQL through the field's `int8` column
/// (which holds no 19-digit integer: the data check hands that group to the server).
#[tokio::test]
async fn numbers_of_every_kind_group_exactly() {
    let ranks = [
        json!(1),
        json!(2.5),
        json!(1_000_000_000_000_000_000i64),
        json!(3),
    ];
    let (s, admin) = items(
        4,
        |i| json!({"cat": if i < 2 { "a" } else { "b" }, "n": i, "rank": ranks[i as usize]}),
    )
    .await;
    let group = |cat: Option<&str>| {
        let mut pipeline = vec![json!({"$group": {
            "_id": "$cat",
            "total": {"$sum": "$rank"},
            "high": {"$max": "$rank"},
            "low": {"$min": "$rank"},
            "mean": {"$avg": "$rank"}
        }})];
        if let Some(cat) = cat {
            pipeline.insert(0, json!({"$match": {"cat": cat}}));
        }
        pipeline.push(json!({"$sort": {"_id": 1}}));
        Some(Value::from(pipeline))
    };
    let a = json!({"_id": "a", "total": 3.5, "high": 2.5, "low": 1, "mean": 1.75});
    let b = json!({
        "_id": "b",
        "total": 1_000_000_000_000_000_003i64,
        "high": 1_000_000_000_000_000_000i64,
        "low": 3,
        "mean": 5e17
    });
    for (cat, expected) in [
        (Some("a"), json!([a])),
        (None, json!([a, b])),
        (Some("b"), json!([b])),
    ] {
        let (status, body) = call(
            &s,
            Method::POST,
            "/aggregate/item",
            &Auth::of(Some(&admin)),
            group(cat),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"], expected, "{cat:?}");
    }
}

/// A page that no index finds (a filter and sort on the Number field without one) picks its
/// rows on PostgreSQL from the scan index first; its pages are the same as a scan's: in order,
/// each row once, a deleted row left out and an updated one moved at once.
#[tokio::test]
async fn pages_no_index_finds_are_whole_and_in_order() {
    let (s, admin) = items(
        600,
        |i| json!({"cat": format!("c{}", i % 30), "n": i, "rank": (i * 7) % 600}),
    )
    .await;

    // Ranks 100 and up, by rank then id, 9 at a time.
    let page = |n: u64| format!("/api/item?filter[rank]=$gte:100&sort=rank&limit=9&page={n}");
    let ranks = |body: &Value| -> Vec<u64> {
        body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("no data: {body}"))
            .iter()
            .map(|d| d["rank"].as_u64().unwrap_or(u64::MAX))
            .collect()
    };
    let mut seen = Vec::new();
    for n in 1..=60 {
        let (status, body) = s.get(&page(n)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(ranks(&body));
    }
    assert_eq!(seen, (100..600).collect::<Vec<u64>>());

    // A deleted row leaves the pages at once, and an update moves a row between them.
    let (_, body) = s.get(&page(1)).await;
    let first = body["data"][0]["_id"].as_str().unwrap().to_owned();
    let second = body["data"][1]["_id"].as_str().unwrap().to_owned();
    let (status, body) = s.delete(&format!("/api/item/{first}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .put(&format!("/api/item/{second}"), json!({"rank": 5000}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = s.get(&page(1)).await;
    assert_eq!(ranks(&body), (102..111).collect::<Vec<u64>>(), "{body}");
    let (_, body) = s.get(&page(56)).await;
    assert_eq!(ranks(&body), [597, 598, 599, 5000], "{body}");

    if test_postgres().is_none() {
        // On SQLite too, from the scan index, named so that SQLite reads nothing else.
        let sql = analyzed_sql(&s, &admin, &page(2)).await;
        assert!(
            sql.contains("WHERE rid IN (SELECT rid FROM \"m_item\" INDEXED BY \"sc_item\" WHERE")
                && sql.contains(
                    "ORDER BY json_extract(doc,'$.rank') ASC, _id ASC LIMIT 10 OFFSET 9)"
                )
                && sql.ends_with(") ORDER BY \"gn_rank\" ASC, _id ASC"),
            "{sql}"
        );
        let plan = list_explained(&s, &admin, &page(2), "1").await["plan"].to_string();
        assert!(plan.contains("COVERING INDEX sc_item"), "{plan}");
        // A page that reads the documents, or one in `_id` order, is one query.
        for path in [
            "/api/item?filter[rank]=$gte:100&sort=n&limit=9",
            "/api/item?filter[note]=x&sort=rank&limit=9",
            "/api/item?filter[rank]=$gte:100&limit=9",
        ] {
            let sql = analyzed_sql(&s, &admin, path).await;
            assert!(!sql.contains("rid IN"), "{path}: {sql}");
        }
        return;
    }
    // On PostgreSQL the page's rows are picked by id first, and read after.
    let sql = analyzed_sql(&s, &admin, &page(2)).await;
    assert!(
        sql.contains("WHERE rid IN (SELECT rid FROM \"m_item\" WHERE")
            && sql.contains("LIMIT 10 OFFSET 9) ORDER BY \"gn_rank\" ASC NULLS FIRST, _id ASC"),
        "{sql}"
    );
    // A page an index finds, or one that reads the documents, is one query.
    for path in [
        "/api/item?filter[cat]=c7&sort=rank&limit=9",
        "/api/item?filter[rank]=$gte:100&sort=n&limit=9",
        "/api/item?filter[note]=x&sort=rank&limit=9",
    ] {
        let sql = analyzed_sql(&s, &admin, path).await;
        assert!(!sql.contains("rid IN"), "{path}: {sql}");
    }
}

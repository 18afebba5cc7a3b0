//! `jxp indexes`, run as a user runs it next to a server: the indexes the models declare
//! compared with the database's (missing, extra, different), as a table or JSON, and
//! `--sync`, which drops extra indexes only with `--confirm DROP_EXTRA_INDEXES`. On SQLite and,
//! with `JXP_TEST_DATABASE_URL`, PostgreSQL.

use serde_json::Value;

use crate::harness::{Ran, TestServer, exec_sql, is_postgres, run_jxp};

/// `name` indexed, `code` unique.
const ITEM: &str = r#"
name = "Item"
[fields]
name = { type = "String", index = true }
code = { type = "String", unique = true }
size = "Number"
[perms]
all = "crud"
"#;

/// The same model later: `name` no longer indexed, `size` now is.
const ITEM_LATER: &str = r#"
name = "Item"
[fields]
name = "String"
code = { type = "String", unique = true }
size = { type = "Number", index = true }
[perms]
all = "crud"
"#;

async fn indexes(s: &TestServer, args: &[&str]) -> Ran {
    let mut all = vec!["indexes"];
    all.extend_from_slice(args);
    run_jxp(s.dir.path(), &s.database_url, &all).await
}

/// `jxp indexes --json`, parsed, with whether it exited 0.
async fn report(s: &TestServer) -> (bool, Value) {
    let ran = indexes(s, &["--json"]).await;
    let body: Value = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", ran.stdout, ran.stderr));
    (ran.success, body)
}

/// The `item` entry of a JSON report.
fn item(body: &Value) -> &Value {
    body["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "item")
        .unwrap_or_else(|| panic!("no item: {body}"))
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn indexes_are_compared_and_synced_drops_only_when_confirmed() {
    let mut s = TestServer::start(&[("item", ITEM)], &[]).await;
    let url = s.database_url.clone();
    let plain = if is_postgres(&url) { "iz" } else { "iy" };

    // As the server made them: in line, even read while it runs.
    let (ok, body) = report(&s).await;
    assert!(ok, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(
        names(&item(&body)["present"]),
        [format!("{plain}_item__name").as_str(), "ux_item__code"]
    );
    // Every model is reported, the built-in ones too.
    assert!(
        body["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["model"] == "user"),
        "{body}"
    );
    let table = indexes(&s, &[]).await;
    assert!(table.success, "{}{}", table.stdout, table.stderr);
    assert!(
        table
            .stdout
            .contains("every model's indexes are as declared"),
        "{}",
        table.stdout
    );

    // The model changes while the server is stopped, and someone redefines `code`'s index
    // and adds one of their own.
    s.stop().await;
    s.write_model("item", ITEM_LATER);
    exec_sql(
        &url,
        "DROP INDEX ux_item__code;
         CREATE INDEX ux_item__code ON m_item (createdAt);
         CREATE INDEX by_hand ON m_item (updatedAt);",
    )
    .await;
    let (ok, body) = report(&s).await;
    assert!(!ok, "differences exit non-zero: {body}");
    let m = item(&body);
    assert_eq!(
        (
            names(&m["missing"]),
            names(&m["different"]),
            names(&m["extra"])
        ),
        (
            vec![format!("{plain}_item__size").as_str()],
            vec!["ux_item__code"],
            vec![format!("{plain}_item__name").as_str()]
        ),
        "{m}"
    );
    assert_eq!(m["different"][0]["field"], "code");
    let table = indexes(&s, &[]).await;
    assert!(!table.success);
    for needle in [
        format!("missing    item/{plain}_item__size"),
        "different  item/ux_item__code".to_owned(),
        format!("extra      item/{plain}_item__name"),
    ] {
        assert!(
            table.stdout.contains(&needle),
            "{needle}:\n{}",
            table.stdout
        );
    }
    assert!(!table.stdout.contains("by_hand"), "{}", table.stdout);

    // A confirmation that is not the word is refused, and changes nothing.
    let wrong = indexes(&s, &["--sync", "--confirm", "yes"]).await;
    assert!(!wrong.success);
    assert!(
        wrong.stderr.contains("DROP_EXTRA_INDEXES"),
        "{}",
        wrong.stderr
    );
    assert_eq!(report(&s).await.1, body);

    // --sync alone: creates the missing, makes the different again, keeps the extra.
    let synced = indexes(&s, &["--sync"]).await;
    assert!(synced.success, "{}{}", synced.stdout, synced.stderr);
    for needle in [
        format!("created item/{plain}_item__size"),
        "recreated item/ux_item__code".to_owned(),
        format!("kept item/{plain}_item__name"),
    ] {
        assert!(
            synced.stdout.contains(&needle),
            "{needle}:\n{}",
            synced.stdout
        );
    }
    let (ok, body) = report(&s).await;
    assert!(!ok, "the extra index is still there: {body}");
    let m = item(&body);
    assert!(
        m["missing"].as_array().unwrap().is_empty()
            && m["different"].as_array().unwrap().is_empty(),
        "{m}"
    );
    assert_eq!(names(&m["extra"]), [format!("{plain}_item__name").as_str()]);

    // Confirmed, the extra index goes; one made by hand under another name stays.
    let synced = indexes(&s, &["--sync", "--json", "--confirm", "DROP_EXTRA_INDEXES"]).await;
    assert!(synced.success, "{}{}", synced.stdout, synced.stderr);
    let done: Value = serde_json::from_str(&synced.stdout).unwrap();
    assert_eq!(
        done["dropped"],
        serde_json::json!([format!("item/{plain}_item__name")])
    );
    assert_eq!(done["after"]["ok"], true, "{done}");
    let (ok, body) = report(&s).await;
    assert!(ok, "{body}");
    exec_sql(&url, "DROP INDEX by_hand").await;

    // The recreated unique index holds: a server starts on it and refuses a duplicate.
    s.boot().await.unwrap();
    let (status, _) = s
        .post("/api/item", serde_json::json!({"code": "a", "size": 1}))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let (status, _) = s
        .post("/api/item", serde_json::json!({"code": "a", "size": 2}))
        .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_sqlite_sync_waits_for_no_server_and_a_missing_database_is_said() {
    let s = TestServer::start(&[("item", ITEM)], &[]).await;
    if is_postgres(&s.database_url) {
        return;
    }
    let refused = indexes(&s, &["--sync"]).await;
    assert!(!refused.success);
    assert!(refused.stderr.contains("in use"), "{}", refused.stderr);

    let missing = run_jxp(
        s.dir.path(),
        &s.dir.path().join("nothing.db").display().to_string(),
        &["indexes"],
    )
    .await;
    assert!(!missing.success);
    assert!(
        missing.stderr.contains("no database at"),
        "{}",
        missing.stderr
    );
    assert!(
        !s.dir.path().join("nothing.db").exists(),
        "the report creates no database"
    );
}

//! A filtered list sorted on an indexed field answers the same documents whichever way the
//! database reads them. On SQLite, when the filter matches a large part of a large table, jxp
//! has it read the sort key's index in order (SQLite itself would sort every match), and a
//! filter matching few documents keeps the filter's index.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Account, TestServer, list_explained, setup_admin, test_postgres};

const ITEM: &str = r#"
name = "Item"
[fields]
cat = { type = "String", index = true }
n = { type = "Number", index = true }
[perms]
all = "crud"
"#;

/// The plan `path` runs, as an admin sees it.
async fn plan(s: &TestServer, admin: &Account, path: &str) -> String {
    list_explained(s, admin, path, "1").await["plan"].to_string()
}

/// The `key` of each document of the list at `path`.
async fn values(s: &TestServer, path: &str, key: &str) -> Vec<Value> {
    let (status, body) = s.get(path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {body}"))
        .iter()
        .map(|d| d[key].clone())
        .collect()
}

async fn ns(s: &TestServer, path: &str) -> Vec<Value> {
    values(s, path, "n").await
}

/// Document `i`'s category: two in five are `big`, ten of all are `small`.
fn cat_of(i: u64) -> String {
    if i % 1200 == 7 {
        "small".to_owned()
    } else if i % 5 < 2 {
        "big".to_owned()
    } else {
        format!("c{}", i % 97)
    }
}

#[tokio::test]
async fn a_sorted_page_of_many_matches_is_read_in_the_sort_keys_order() {
    let mut s = TestServer::start(&[("item", ITEM)], &[]).await;
    let admin = setup_admin(&s).await;
    // 12,000 documents; `n` is a permutation of 0..12,000.
    let lines: String = (0..12_000u64)
        .map(|i| format!("{}\n", json!({"cat": cat_of(i), "n": (i * 7919) % 12_000})))
        .collect();
    s.import_lines("Item", lines).await;

    // What each page must hold, from the documents themselves.
    let expected = |cat: &str, desc: bool, skip: usize, limit: usize| -> Vec<Value> {
        let mut n: Vec<u64> = (0..12_000u64)
            .filter(|i| cat_of(*i) == cat)
            .map(|i| (i * 7919) % 12_000)
            .collect();
        n.sort_unstable();
        if desc {
            n.reverse();
        }
        n.into_iter()
            .skip(skip)
            .take(limit)
            .map(Value::from)
            .collect()
    };
    let big = "/api/item?filter[cat]=big&sort=-n&limit=5";
    assert_eq!(ns(&s, big).await, expected("big", true, 0, 5));
    let page3 = "/api/item?filter[cat]=big&sort=n&limit=7&page=3";
    assert_eq!(ns(&s, page3).await, expected("big", false, 14, 7));
    let small = "/api/item?filter[cat]=small&sort=-n&limit=5";
    assert_eq!(ns(&s, small).await, expected("small", true, 0, 5));
    // A large page is sorted as the database plans it, and agrees with the small one.
    let large = ns(&s, "/api/item?filter[cat]=big&sort=-n&limit=1001").await;
    assert_eq!(large[..5], expected("big", true, 0, 5)[..]);

    if test_postgres().is_some() {
        return;
    }
    assert!(plan(&s, &admin, big).await.contains("iy_item__n"));
    let small_plan = plan(&s, &admin, small).await;
    assert!(
        small_plan.contains("iy_item__cat") && !small_plan.contains("iy_item__n"),
        "{small_plan}"
    );
    let by_time = "/api/item?filter[cat]=big&sort=-createdAt&limit=5";
    assert!(plan(&s, &admin, by_time).await.contains("sx_item__created"));
    let in_order = values(&s, by_time, "_id").await;
    let sorted = values(
        &s,
        "/api/item?filter[cat]=big&sort=-createdAt&limit=1001",
        "_id",
    )
    .await;
    assert_eq!(in_order, sorted[..5]);
}

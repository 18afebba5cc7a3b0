//! On PostgreSQL the pool's connections plan lists and counts without parallel workers, and
//! a grouping with the server's own setting; a `max_parallel_workers_per_gather` in the URL's
//! options chooses for all of them. (On SQLite there is nothing to see; the test returns.)

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Auth, TestServer, call_ok, list_explained, setup_admin, test_postgres};

const ITEM: &str = r#"
name = "Item"
[fields]
cat = "String"
n = "Number"
[perms]
all = "crud"
"#;

/// Options that make PostgreSQL price parallel workers at nothing, so that even the test's
/// small table gets a parallel plan wherever parallel workers are allowed.
const CHEAP_WORKERS: &str = "%20-c%20parallel_setup_cost%3D0%20-c%20parallel_tuple_cost%3D0\
                             %20-c%20min_parallel_table_scan_size%3D0";

/// The plan `?explain` answered, as text to look for nodes in.
fn plan_text(data: &Value) -> String {
    data["plan"].to_string()
}

#[tokio::test]
async fn lists_plan_without_parallel_workers_and_groupings_with_the_servers() {
    if test_postgres().is_none() {
        return;
    }
    let mut s = TestServer::start(&[("item", ITEM)], &[]).await;
    let admin = setup_admin(&s).await;
    for i in 0..50 {
        let doc = json!({"cat": format!("c{}", i % 5), "n": i});
        call_ok(
            &s,
            Method::POST,
            "/api/item",
            &Auth::of(Some(&admin)),
            Some(doc),
        )
        .await;
    }
    s.stop().await;
    assert!(s.database_url.contains("options="), "{}", s.database_url);
    s.database_url.push_str(CHEAP_WORKERS);
    s.boot().await.unwrap();

    let list = "/api/item?filter[n]=$gte:10&sort=n&limit=5";
    let plan = plan_text(&list_explained(&s, &admin, list, "true").await);
    assert!(plan.contains("Seq Scan"), "{plan}");
    assert!(
        !plan.contains("Gather") && !plan.contains("Parallel"),
        "{plan}"
    );
    let (_, body) = s.get(list).await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(5), "{body}");

    let group = json!([{"$group": {"_id": "$cat", "total": {"$sum": "$n"}}}]);
    let grouped = call_ok(
        &s,
        Method::POST,
        "/aggregate/item?explain=true",
        &Auth::of(Some(&admin)),
        Some(group.clone()),
    )
    .await;
    let plan = plan_text(&grouped["data"]);
    assert!(plan.contains("Gather"), "{plan}");
    let answer = call_ok(
        &s,
        Method::POST,
        "/aggregate/item",
        &Auth::of(Some(&admin)),
        Some(group),
    )
    .await;
    let total: i64 = answer["data"].as_array().map_or(0, |groups| {
        groups.iter().filter_map(|g| g["total"].as_i64()).sum()
    });
    assert_eq!(total, (0..50).sum::<i64>(), "{answer}");

    // The operator's own setting in the URL is left to choose, for lists too.
    s.stop().await;
    s.database_url
        .push_str("%20-c%20max_parallel_workers_per_gather%3D2");
    s.boot().await.unwrap();
    let plan = plan_text(&list_explained(&s, &admin, list, "true").await);
    assert!(plan.contains("Gather"), "{plan}");
}

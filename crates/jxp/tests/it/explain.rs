//! `?explain=true` on lists and counts: admins see the database's plan for the query the
//! request runs (an indexed filter uses its index, an unindexed one scans), nobody else does;
//! `?explain=analyze` runs that query in the database and says its SQL and time there.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::aggregate::world;
use crate::harness::{Auth, assert_error, call};

fn joined(plan: &serde_json::Value) -> String {
    plan["data"]["plan"]
        .as_array()
        .unwrap_or_else(|| panic!("no plan: {plan}"))
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn admins_see_which_index_serves_a_query() {
    let w = world(&[]).await;
    let admin = Some(&w.admin);
    let plan = |path: &'static str| {
        let s = &w.s;
        async move {
            let (status, body) = call(s, Method::GET, path, &Auth::of(admin), None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert_eq!(body["data"]["model"], "test", "{body}");
            joined(&body)
        }
    };
    // `bar` and `when` are indexed, `foo` is not; `fulltext` has the text index. The plan is
    // in the words of the database the suite runs on.
    let postgres = crate::harness::test_postgres().is_some();
    let got = plan("/api/test?explain=true&filter[bar]=x&sort=-when").await;
    if postgres {
        assert!(
            got.contains("Index") && got.contains("ux_test__bar"),
            "{got}"
        );
    } else {
        assert!(got.contains("USING INDEX") && got.contains("bar"), "{got}");
    }
    let got = plan("/api/test?explain=1&filter[foo]=x").await;
    if postgres {
        assert!(got.contains("Seq Scan") && !got.contains("bar"), "{got}");
    } else {
        assert!(got.contains("SCAN") && !got.contains("bar"), "{got}");
    }
    let got = plan("/api/test?explain=1&search=hello").await;
    if postgres {
        assert!(got.contains("tsv @@"), "{got}");
    } else {
        assert!(got.contains("VIRTUAL TABLE"), "{got}");
    }
    let got = plan("/count/test?explain=1&filter[bar]=x").await;
    if postgres {
        assert!(
            got.contains("Index") && got.contains("ux_test__bar"),
            "{got}"
        );
    } else {
        assert!(got.contains("INDEX") && got.contains("bar"), "{got}");
    }
    // A bad query is still a 400, explained or not.
    let (status, body) = call(
        &w.s,
        Method::GET,
        "/api/test?explain=1&filter[nope]=1",
        &Auth::of(admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn nobody_else_sees_a_plan() {
    let w = world(&[]).await;
    for who in [None, Some(&w.alice)] {
        for path in [
            "/api/test?explain=1",
            "/count/test?explain=1",
            "/api/test?explain=analyze",
            "/count/test?explain=analyze",
        ] {
            let got = call(&w.s, Method::GET, path, &Auth::of(who), None).await;
            assert_error(&got, StatusCode::FORBIDDEN, "explain is for admins");
        }
    }
    // Without explain the same caller gets the list as usual.
    let (status, body) = call(&w.s, Method::GET, "/api/test", &w.alice.basic(), None).await;
    assert_eq!((status, body["data"].clone()), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn analyze_runs_the_query_in_the_database_and_times_it() {
    let w = world(&[]).await;
    for i in 0..30 {
        crate::harness::create_as(
            &w.s,
            &w.alice,
            "test",
            json!({"foo": format!("f{}", i % 3), "bar": format!("b{i}")}),
        )
        .await;
    }
    let admin = Auth::of(Some(&w.admin));
    let postgres = crate::harness::test_postgres().is_some();
    for (path, select) in [
        ("/api/test?explain=analyze&filter[foo]=f1&limit=5", "SELECT"),
        ("/count/test?explain=analyze&filter[foo]=f1", "SELECT"),
    ] {
        let (status, body) = call(&w.s, Method::GET, path, &admin, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let data = &body["data"];
        assert_eq!(data["model"], "test", "{body}");
        let sql = data["sql"]
            .as_str()
            .unwrap_or_else(|| panic!("no sql: {body}"));
        assert!(sql.starts_with(select) && sql.contains("foo"), "{sql}");
        let ms = data["databaseMs"]
            .as_f64()
            .unwrap_or_else(|| panic!("no databaseMs: {body}"));
        assert!((0.0..60_000.0).contains(&ms), "{body}");
        let plan = joined(&body);
        if postgres {
            // EXPLAIN ANALYZE's own lines: actual rows, and the times the total comes from.
            assert!(
                plan.contains("actual time") && plan.contains("Execution Time"),
                "{plan}"
            );
        } else {
            assert!(plan.contains("SCAN"), "{plan}");
        }
    }
    // The list itself is unchanged by the run.
    let (status, body) = call(
        &w.s,
        Method::GET,
        "/api/test?filter[foo]=f1&limit=50",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(10), "{body}");
}

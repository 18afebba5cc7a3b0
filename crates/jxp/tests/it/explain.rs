//! `?explain=true` on lists and counts: admins see the database's plan for the query the
//! request runs (an indexed filter uses its index, an unindexed one scans), nobody else does.

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
        for path in ["/api/test?explain=1", "/count/test?explain=1"] {
            let got = call(&w.s, Method::GET, path, &Auth::of(who), None).await;
            assert_error(&got, StatusCode::FORBIDDEN, "explain is for admins");
        }
    }
    // Without explain the same caller gets the list as usual.
    let (status, body) = call(&w.s, Method::GET, "/api/test", &w.alice.basic(), None).await;
    assert_eq!((status, body["data"].clone()), (StatusCode::OK, json!([])));
}

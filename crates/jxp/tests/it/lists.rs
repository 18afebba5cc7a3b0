//! Lists: `filter[...]` with its operators, sorting, pages, `count`, `fields`, `/count`, and
//! JXP's query limits (the max cap, the large-collection rule, the response size limit).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error, keys_of};

/// Five documents that the filter cases below pick from.
async fn fixture() -> TestServer {
    let s = TestServer::open().await;
    for doc in [
        json!({"foo": "foo", "bar": "a", "n": 1, "address": {"city": "Durban"}, "shmack": ["do", "ray"], "when": "2019-06-01", "composite_array": [{"afoo": "x", "abar": 2}]}),
        json!({"foo": "Foo2", "bar": "b", "n": 3, "shmack": ["me"], "when": "2020-03-01"}),
        json!({"foo": "bar", "bar": "c", "n": 4, "shmack": ["do"], "when": "2021-01-01", "composite_array": [{"afoo": "y", "abar": 5}]}),
        json!({"foo": "baz", "bar": "d", "n": 5}),
        json!({"foo": "qux", "bar": "e", "n": 7}),
    ] {
        s.create("test", doc).await;
    }
    s
}

/// Lists `/api/test?{query}`, expecting 200.
async fn list(s: &TestServer, query: &str) -> Value {
    let (status, body) = s.get(&format!("/api/test?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

fn data(body: &Value) -> &Vec<Value> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {body}"))
}

/// The `foo` values of a list answer, sorted, for comparing sets.
fn foo_set(body: &Value) -> Vec<String> {
    let mut foos: Vec<String> = data(body)
        .iter()
        .map(|d| d["foo"].as_str().unwrap_or_default().to_owned())
        .collect();
    foos.sort();
    foos
}

/// The `n` values of a list answer, in order.
fn ns(body: &Value) -> Vec<i64> {
    data(body)
        .iter()
        .map(|d| d["n"].as_i64().unwrap())
        .collect()
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn filters_pick_the_matching_documents() {
    let s = fixture().await;
    let cases: &[(&str, &[&str])] = &[
        ("filter[foo]=bar", &["bar"]),
        ("filter[n]=3", &["Foo2"]),
        ("filter[address.city]=Durban", &["foo"]),
        (
            "filter[address.city]=Cape%20Town",
            &["Foo2", "bar", "baz", "qux"],
        ),
        ("filter[foo]=foo&filter[foo]=bar", &["foo", "bar"]),
        ("filter[foo][]=foo&filter[foo][]=qux", &["foo", "qux"]),
        ("filter[n]=$gte:3&filter[n]=$lte:5", &["Foo2", "bar", "baz"]),
        ("filter[n]=$gt:3&filter[n]=$lt:7", &["bar", "baz"]),
        ("filter[n]=$ne:3", &["foo", "bar", "baz", "qux"]),
        ("filter[foo]=$in:foo,baz", &["foo", "baz"]),
        ("filter[n]=$in:1,7", &["foo", "qux"]),
        ("filter[foo]=$nin:foo,baz", &["Foo2", "bar", "qux"]),
        ("filter[when]=$exists:true", &["foo", "Foo2", "bar"]),
        ("filter[when]=$exists:false", &["baz", "qux"]),
        ("filter[foo]=$regex:/^fo/i", &["foo", "Foo2"]),
        ("filter[foo]=$regex:/^fo/", &["foo"]),
        ("filter[shmack]=do", &["foo", "bar"]),
        ("filter[shmack]=do&filter[n]=$gte:2", &["bar"]),
        (
            "filter[shmack]=do&filter[shmack]=me",
            &["foo", "Foo2", "bar"],
        ),
        ("filter[shmack]=$in:do,me", &["foo", "Foo2", "bar"]),
        // On arrays, `$ne`/`$nin` mean "no element is".
        ("filter[shmack]=$ne:do", &["Foo2", "baz", "qux"]),
        ("filter[shmack]=$nin:do,me", &["baz", "qux"]),
        ("filter[shmack]=$regex:/^r/", &["foo"]),
        ("filter[composite_array.afoo]=x", &["foo"]),
        ("filter[composite_array.abar]=$gte:3", &["bar"]),
        ("filter[when]=$gte:2020-01-01", &["Foo2", "bar"]),
        ("filter[when]=$lt:2020-03-01T00:00:00.000Z", &["foo"]),
        // As in MongoDB, `$ne` and `$nin` also match documents without the field.
        ("filter[when]=$ne:2020-03-01", &["foo", "bar", "baz", "qux"]),
        (
            "filter[when]=$nin:2020-03-01",
            &["foo", "bar", "baz", "qux"],
        ),
        ("filter[foo]=nothing", &[]),
    ];
    for (query, expected) in cases {
        let body = list(&s, query).await;
        assert_eq!(foo_set(&body), sorted(expected), "{query}");
    }
}

#[tokio::test]
async fn system_fields_can_be_filtered() {
    let s = fixture().await;
    let all = list(&s, "sort=n").await;
    let ids: Vec<&str> = data(&all)
        .iter()
        .map(|d| d["_id"].as_str().unwrap())
        .collect();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("filter[_id]={}", ids[0]), vec!["foo"]),
        (
            format!("filter[id]={}", ids[1].to_uppercase()),
            vec!["Foo2"],
        ),
        (
            format!("filter[_id]=$in:{},{}", ids[0], ids[4]),
            vec!["foo", "qux"],
        ),
        (
            format!("filter[_id]=$ne:{}", ids[0]),
            vec!["Foo2", "bar", "baz", "qux"],
        ),
        (
            "filter[createdAt]=$gte:2000-01-01".to_owned(),
            vec!["foo", "Foo2", "bar", "baz", "qux"],
        ),
        ("filter[createdAt]=$lt:2000-01-01".to_owned(), vec![]),
        (
            "filter[__v]=0".to_owned(),
            vec!["foo", "Foo2", "bar", "baz", "qux"],
        ),
    ];
    for (query, expected) in cases {
        let body = list(&s, &query).await;
        assert_eq!(foo_set(&body), sorted(&expected), "{query}");
    }
}

#[tokio::test]
async fn sorting_orders_by_a_field() {
    let s = fixture().await;
    let cases: &[(&str, &[i64])] = &[
        ("sort[n]=-1", &[7, 5, 4, 3, 1]),
        ("sort[n]=1", &[1, 3, 4, 5, 7]),
        ("sort=n", &[1, 3, 4, 5, 7]),
        ("sort=-n", &[7, 5, 4, 3, 1]),
        ("sort=-n&filter[shmack]=do", &[4, 1]),
        // Strings sort by code point, as MongoDB's default collation does.
        ("sort=foo", &[3, 4, 5, 1, 7]),
        ("sort[when]=-1&sort[n]=1", &[4, 3, 1, 5, 7]),
    ];
    for (query, expected) in cases {
        assert_eq!(ns(&list(&s, query).await), *expected, "{query}");
    }
}

#[tokio::test]
async fn pages_carry_their_pagination_fields() {
    let s = fixture().await;
    let first = list(&s, "sort=n&limit=2&page=1").await;
    assert_eq!(ns(&first), [1, 3]);
    assert_eq!(first["limit"], 2);
    assert_eq!(first["page"], 1);
    assert_eq!(first["page_count"], 3);
    assert_eq!(first["count"], 5);
    let next = first["next"]
        .as_str()
        .unwrap_or_else(|| panic!("no next: {first}"));
    assert!(next.contains("page=2"), "{next}");

    let second = list(&s, "sort=n&limit=2&page=2").await;
    assert_eq!(ns(&second), [4, 5]);
    assert_eq!(second["page"], 2);
    assert!(
        second["next"]
            .as_str()
            .is_some_and(|n| n.contains("page=3")),
        "{second}"
    );

    let last = list(&s, "sort=n&limit=2&page=3").await;
    assert_eq!(ns(&last), [7]);
    assert!(last.get("next").is_none(), "no page after the last: {last}");

    let beyond = list(&s, "sort=n&limit=2&page=4").await;
    assert_eq!(data(&beyond).len(), 0, "{beyond}");
    assert_eq!(beyond["count"], 5);

    let filtered = list(&s, "filter[n]=$gte:3&sort=n&limit=2&page=2").await;
    assert_eq!(ns(&filtered), [5, 7]);
    assert_eq!(filtered["count"], 4);
    assert_eq!(filtered["page_count"], 2);
    assert!(filtered.get("next").is_none(), "{filtered}");
}

#[tokio::test]
async fn a_limit_alone_gives_limit_page_and_next() {
    let s = fixture().await;
    let body = list(&s, "sort=n&limit=2").await;
    assert_eq!(ns(&body), [1, 3]);
    assert_eq!(body["limit"], 2);
    assert_eq!(body["page"], 1);
    assert!(
        body["next"].as_str().is_some_and(|n| n.contains("page=2")),
        "{body}"
    );
}

#[tokio::test]
async fn count_appears_only_when_asked() {
    let s = fixture().await;
    let plain = list(&s, "").await;
    assert_eq!(data(&plain).len(), 5);
    // The default limit applied is reported with its page, as JXP reports it.
    assert_eq!((&plain["limit"], &plain["page"]), (&json!(100), &json!(1)));
    for key in ["count", "page_count", "next", "limit_capped"] {
        assert!(plain.get(key).is_none(), "{key} in a plain list: {plain}");
    }
    let counted = list(&s, "count=true").await;
    assert_eq!(counted["count"], 5);
    let filtered = list(&s, "count=true&filter[n]=$gte:4").await;
    assert_eq!(filtered["count"], 3);
}

#[tokio::test]
async fn fields_projects_to_the_named_fields_and_the_ids() {
    let s = fixture().await;
    let body = list(&s, "fields=foo,n").await;
    assert_eq!(data(&body).len(), 5);
    for doc in data(&body) {
        assert_eq!(keys_of(doc), ["_id", "foo", "id", "n"], "{doc}");
    }
}

#[tokio::test]
async fn count_route_applies_filters() {
    let s = fixture().await;
    let cases: &[(&str, u64)] = &[
        ("", 5),
        ("?filter[n]=$gte:4", 3),
        ("?filter[shmack]=do", 2),
        ("?filter[address.city]=Durban", 1),
        ("?filter[foo]=nothing", 0),
    ];
    for (query, expected) in cases {
        let (status, body) = s.get(&format!("/count/test{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body, json!({"count": expected}), "{query}");
    }
}

#[tokio::test]
async fn a_limit_over_the_max_is_capped() {
    let s = TestServer::open_with(&[("QUERY_LIMITS_MAX", "5")]).await;
    for i in 0..7 {
        s.create("test", json!({"bar": format!("b{i}"), "n": i}))
            .await;
    }
    let body = list(&s, "limit=10&sort=n").await;
    assert_eq!(ns(&body), [0, 1, 2, 3, 4]);
    assert_eq!(body["limit"], 5);
    assert_eq!(body["limit_capped"], true);
    assert_eq!(body["count"], 7);
    assert!(
        body["next"].as_str().is_some_and(|n| n.contains("page=2")),
        "{body}"
    );

    let within = list(&s, "limit=5").await;
    assert!(within.get("limit_capped").is_none(), "{within}");
}

#[tokio::test]
async fn a_large_collection_needs_a_limit_or_a_filter() {
    let s = TestServer::open_with(&[("QUERY_LIMITS_LARGE_COLLECTION_THRESHOLD", "3")]).await;
    for i in 0..2 {
        s.create("test", json!({"bar": format!("b{i}"), "foo": "x"}))
            .await;
    }
    assert_eq!(
        data(&list(&s, "").await).len(),
        2,
        "below the threshold no limit is needed"
    );
    s.create("test", json!({"bar": "b2", "foo": "y"})).await;

    let got = s.get("/api/test").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "limit");
    assert_eq!(data(&list(&s, "limit=2").await).len(), 2);
    assert_eq!(foo_set(&list(&s, "filter[foo]=x").await), ["x", "x"]);
}

#[tokio::test]
async fn a_response_over_the_size_limit_is_413() {
    let s = TestServer::open_with(&[("QUERY_LIMITS_MAX_RESPONSE_SIZE", "200")]).await;
    for i in 0..3 {
        s.create("test", json!({"bar": format!("b{i}"), "foo": "a"}))
            .await;
    }
    let got = s.get("/api/test").await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "");
    let small = list(&s, "limit=1&fields=foo").await;
    assert_eq!(data(&small).len(), 1);
}

#[tokio::test]
async fn a_models_own_query_limits_override_the_servers() {
    let capped = r#"
name = "Capped"
[fields]
n = "Number"
[perms]
all = "crud"
[options]
query_limits = { max = 3, default = 2, large_collection_threshold = 5, max_response_size = "64kb" }
"#;
    let s = TestServer::start(&[("capped", capped)], &[]).await;
    for i in 0..5 {
        s.create("capped", json!({ "n": i })).await;
    }
    let (status, body) = s.get("/api/capped?limit=10").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (data(&body).len(), body["limit_capped"].as_bool()),
        (3, Some(true)),
        "{body}"
    );
    // Five documents reach this model's large-collection threshold: no limit, no filter → 400.
    assert_error(
        &s.get("/api/capped").await,
        StatusCode::BAD_REQUEST,
        "limit",
    );
    let (status, body) = s.get("/api/capped?filter[n]=$gte:0").await;
    assert_eq!(
        (status, data(&body).len()),
        (StatusCode::OK, 2),
        "the model's default limit: {body}"
    );
}

#[tokio::test]
async fn the_default_limit_applied_is_reported_on_lists_and_queries() {
    let s = TestServer::open_with(&[
        ("QUERY_LIMITS_ENABLED", "true"),
        ("QUERY_LIMITS_DEFAULT", "2"),
    ])
    .await;
    for n in 1..=3 {
        s.create(
            "test",
            json!({ "foo": format!("f{n}"), "bar": format!("b{n}"), "n": n }),
        )
        .await;
    }
    let body = list(&s, "sort=n").await;
    assert_eq!(ns(&body), [1, 2]);
    assert_eq!(
        (&body["limit"], &body["page"]),
        (&json!(2), &json!(1)),
        "{body}"
    );
    assert!(
        body["next"].as_str().is_some_and(|n| n.contains("page=2")),
        "{body}"
    );
    let body = list(&s, "sort=n&page=2").await;
    assert_eq!(ns(&body), [3]);
    assert_eq!(
        (&body["limit"], &body["page"]),
        (&json!(2), &json!(2)),
        "{body}"
    );

    let (status, body) = s
        .post("/query/test?sort=n", json!({"query": {"n": {"$gte": 1}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(data(&body).len(), 2, "{body}");
    assert_eq!(
        (&body["limit"], &body["page"]),
        (&json!(2), &json!(1)),
        "{body}"
    );
}

#[tokio::test]
async fn without_limits_a_list_reports_no_page() {
    let s = TestServer::open_with(&[("QUERY_LIMITS_ENABLED", "false")]).await;
    for n in 1..=3 {
        s.create("test", json!({ "bar": format!("b{n}"), "n": n }))
            .await;
    }
    let body = list(&s, "").await;
    assert_eq!(data(&body).len(), 3);
    assert!(
        body.get("limit").is_none() && body.get("page").is_none(),
        "{body}"
    );
}

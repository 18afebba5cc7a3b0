//! `search[field]=text` (case-insensitive contains) and `search=text` (full text over the
//! model's text index, with a relevance `score`), over HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error};

async fn fixture() -> TestServer {
    let s = TestServer::open().await;
    for doc in [
        json!({"foo": "Foo1", "bar": "a", "n": 1, "shmack": ["do", "RAY"], "address": {"street": "Long Street"},
               "fulltext": "In Xanadu did Kubla Khan a stately pleasure dome decree", "secret": "kubla"}),
        json!({"foo": "foo.bar", "bar": "b", "n": 2, "shmack": ["me"],
               "fulltext": "Kubla Kubla Kubla"}),
        json!({"foo": "Éclair 100%", "bar": "c", "n": 3,
               "fulltext": "Where Alph, the sacred river, ran"}),
        json!({"foo": "fooxbar", "bar": "d", "n": 4, "fulltext": "through caverns measureless to man, kubla"}),
        json!({"foo": "other", "bar": "e", "n": 5}),
    ] {
        s.create("test", doc).await;
    }
    s
}

async fn list(s: &TestServer, query: &str) -> Value {
    let (status, body) = s.get(&format!("/api/test?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

/// The `bar` values (one letter per fixture document), in answer order.
fn bars(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {body}"))
        .iter()
        .map(|d| d["bar"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn field_search_is_a_case_insensitive_contains() {
    let s = fixture().await;
    let cases: &[(&str, &[&str])] = &[
        ("search[foo]=FOO", &["a", "b", "d"]),
        ("search[foo]=oo1", &["a"]),
        // The text is literal: `.` and `%` are not wildcards.
        ("search[foo]=o.b", &["b"]),
        ("search[foo]=100%25", &["c"]),
        ("search[foo]=%C3%A9CLAIR", &["c"]),
        // Array elements of an array of strings.
        ("search[shmack]=ra", &["a"]),
        ("search[address.street]=LONG", &["a"]),
        // Every document has the default city.
        ("search[address.city]=cape%20t", &["a", "b", "c", "d", "e"]),
        // AND-ed with filters, and with each other when repeated.
        ("search[foo]=foo&filter[n]=$gte:2", &["b", "d"]),
        ("search[foo]=foo&search[foo]=bar", &["b", "d"]),
        ("search[foo]=foo&search[shmack]=me", &["b"]),
        ("search[foo]=nothing-like-this", &[]),
    ];
    for (query, want) in cases {
        let got = sorted(bars(&list(&s, query).await));
        assert_eq!(got, *want, "{query}");
    }
}

#[tokio::test]
async fn field_search_rejects_what_it_cannot_search() {
    let s = fixture().await;
    for (query, needle) in [
        ("search[n]=1", "String"),
        ("search[flag]=true", "String"),
        ("search[nope]=x", "nope"),
        ("search[secret]=kubla", "secret"),
        ("search[password]=x", "password"),
    ] {
        let got = s.get(&format!("/api/test?{query}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, needle);
    }
}

#[tokio::test]
async fn count_route_ignores_field_search_but_honours_full_text() {
    let s = fixture().await;
    let (status, body) = s.get("/count/test?search[foo]=zzz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 5, "JXP's /count ignores search[field]");
    // The count of a full-text search is the list's count.
    let (status, body) = s.get("/count/test?search[foo]=zzz&search=kubla").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 3, "{body}");
    let (status, body) = s.get("/count/test?search=nowhere-to-be-found").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 0, "{body}");
    assert_eq!(
        list(&s, "search=nowhere-to-be-found").await["data"],
        json!([])
    );
    let (status, body) = s.get("/count/test?search=kubla&filter[n]=$gte:100").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 0, "{body}");
    let body = list(&s, "search[foo]=foo&count=true").await;
    assert_eq!(body["count"], 3);
    let body = list(&s, "search=kubla&count=true").await;
    assert_eq!(body["count"], 3);
    let body = list(&s, "search=kubla&limit=1&page=2").await;
    assert_eq!(body["count"], 3);
    assert_eq!(body["page_count"], 3);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn full_text_search_ranks_by_score() {
    let s = fixture().await;
    let body = list(&s, "search=kubla").await;
    let got = bars(&body);
    assert_eq!(sorted(got.clone()), vec!["a", "b", "d"], "{body}");
    // Three mentions in a short text rank first.
    assert_eq!(got[0], "b", "{body}");
    let scores: Vec<f64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["score"]
                .as_f64()
                .unwrap_or_else(|| panic!("no score: {d}"))
        })
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    // Score comes before explicit sort keys.
    let body = list(&s, "search=kubla&sort=n").await;
    assert_eq!(bars(&body)[0], "b", "{body}");
    // Case-insensitive, any of the words, and `fields=` keeps the score.
    let body = list(&s, "search=XANADU%20river&fields=foo").await;
    assert_eq!(sorted(bars_or_foo(&body)), vec!["Foo1", "Éclair 100%"]);
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["score"].is_number())
    );
    // A quoted phrase must be present; `-word` excludes.
    let body = list(&s, "search=%22kubla%20khan%22").await;
    assert_eq!(bars(&body), vec!["a"]);
    let body = list(&s, "search=kubla%20-khan").await;
    assert_eq!(sorted(bars(&body)), vec!["b", "d"]);
    // Combined with filters and field searches.
    let body = list(&s, "search=kubla&filter[n]=$gte:2&search[foo]=bar").await;
    assert_eq!(sorted(bars(&body)), vec!["b", "d"]);
    // Private fields are not in the text index.
    let body = list(&s, "search=caverns").await;
    assert_eq!(bars(&body), vec!["d"]);
    // Without search, nothing has a score.
    let body = list(&s, "").await;
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d.get("score").is_none())
    );
}

fn bars_or_foo(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["foo"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn full_text_search_skips_deleted_documents() {
    let s = fixture().await;
    let body = list(&s, "search=kubla").await;
    let b = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["bar"] == "b")
        .unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, resp) = s.delete(&format!("/api/test/{b}")).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let body = list(&s, "search=kubla").await;
    assert_eq!(sorted(bars(&body)), vec!["a", "d"]);
    // An update re-indexes the text.
    let a = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["bar"] == "a")
        .unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, resp) = s
        .put(
            &format!("/api/test/{a}"),
            json!({"fulltext": "nothing now"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(bars(&list(&s, "search=kubla").await), vec!["d"]);
}

#[tokio::test]
async fn full_text_search_input_cannot_break_the_query() {
    let s = fixture().await;
    for text in [
        "OR",
        "AND%20(",
        "NEAR(a%20b)",
        "*",
        "kubla*",
        "c0:kubla",
        "%5E",
        "-",
        "'%3B--",
        "%22kubla",
    ] {
        let (status, body) = s.get(&format!("/api/test?search={text}")).await;
        assert_eq!(status, StatusCode::OK, "{text}: {body}");
    }
    // Operators are words: "OR" alone finds nothing, not everything.
    assert_eq!(bars(&list(&s, "search=OR").await), Vec::<String>::new());
}

#[tokio::test]
async fn full_text_search_errors() {
    let s = fixture().await;
    // Nothing to look for: empty, blank, only exclusions, only quotes.
    for query in [
        "search=",
        "search=%20%20",
        "search=-kubla",
        "search=%22",
        "search=%22%22",
    ] {
        let got = s.get(&format!("/api/test?{query}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "search");
    }
    let got = s.get("/api/link?search=x").await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "model link has no full-text index",
    );
}

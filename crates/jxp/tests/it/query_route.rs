//! `POST /query/:model`: Mongo-style filters in the body with every supported operator and
//! the wrappers, combined with the list's URL parameters and limits, the same answer shape as
//! `GET /api`, 400s for dangerous or unknown operators, and the reader's scope.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::aggregate::{CLOSED, OWNED, TAG, world};
use crate::harness::{Auth, TestServer, assert_error, call, create_as};

/// Five documents (the same as the list tests use) and their ids by `foo`.
async fn fixture() -> (TestServer, Vec<(String, String)>) {
    let s = TestServer::open().await;
    let mut ids = Vec::new();
    for doc in [
        json!({"foo": "foo", "bar": "a", "n": 1, "address": {"city": "Durban"}, "shmack": ["do", "ray"], "when": "2019-06-01", "composite_array": [{"afoo": "x", "abar": 2}], "secret": "s"}),
        json!({"foo": "Foo2", "bar": "b", "n": 3, "shmack": ["me"], "when": "2020-03-01"}),
        json!({"foo": "bar", "bar": "c", "n": 4, "shmack": ["do"], "when": "2021-01-01", "composite_array": [{"afoo": "y", "abar": 5}]}),
        json!({"foo": "baz", "bar": "d", "n": 5}),
        json!({"foo": "qux", "bar": "e", "n": 7}),
    ] {
        let name = doc["foo"].as_str().unwrap().to_owned();
        ids.push((name, s.create("test", doc).await));
    }
    (s, ids)
}

/// `POST /query/test?{qs}` with `{"query": query}`, expecting 200.
async fn query(s: &TestServer, qs: &str, query: Value) -> Value {
    let (status, body) = s
        .post(&format!("/query/test?{qs}"), json!({ "query": query }))
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

/// The `foo` values of an answer, sorted.
fn foo_set(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {body}"))
        .iter()
        .map(|d| d["foo"].as_str().unwrap_or("?").to_owned())
        .collect();
    v.sort();
    v
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn operators_and_wrappers() {
    let (s, ids) = fixture().await;
    let id_of = |foo: &str| ids.iter().find(|(f, _)| f == foo).unwrap().1.clone();
    let all = ["foo", "Foo2", "bar", "baz", "qux"];
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), all.to_vec()),
        (
            json!({"$and": [{"foo": {"$regex": "^BA", "$options": "i"}}, {"n": {"$gte": 5}}]}),
            vec!["baz"],
        ),
        (json!({"foo": {"$regex": "/^foo/i"}}), vec!["foo", "Foo2"]),
        (
            json!({"$or": [{"n": 1}, {"foo": "qux"}]}),
            vec!["foo", "qux"],
        ),
        (json!({"$nor": [{"n": {"$lt": 5}}]}), vec!["baz", "qux"]),
        (
            json!({"foo": {"$in": ["bar", "baz", "nope"]}}),
            vec!["bar", "baz"],
        ),
        (
            json!({"foo": {"$nin": ["bar", "baz"]}}),
            vec!["foo", "Foo2", "qux"],
        ),
        (json!({"when": {"$exists": false}}), vec!["baz", "qux"]),
        (
            json!({"when": {"$exists": true}}),
            vec!["foo", "Foo2", "bar"],
        ),
        (json!({"n": {"$gt": 3, "$lte": 5}}), vec!["bar", "baz"]),
        (json!({"n": {"$eq": 3}}), vec!["Foo2"]),
        (json!({"n": {"$ne": 1}}), vec!["Foo2", "bar", "baz", "qux"]),
        (json!({"n": {"$not": {"$gt": 3}}}), vec!["foo", "Foo2"]),
        (json!({"n": "3"}), vec!["Foo2"]),
        (json!({"shmack": "do"}), vec!["foo", "bar"]),
        (json!({"address.city": "Durban"}), vec!["foo"]),
        (json!({"composite_array.abar": {"$gte": 5}}), vec!["bar"]),
        (
            json!({"when": {"$gte": "2020-01-01", "$lt": "2021-06-01"}}),
            vec!["Foo2", "bar"],
        ),
        // Wrappers, as /aggregate takes them.
        (
            json!({"when": {"$gte": {"$date": "2020-01-01T00:00:00Z"}}}),
            vec!["Foo2", "bar"],
        ),
        (
            json!({"when": {"$lt": "new Date(\"2020-01-01\")"}}),
            vec!["foo"],
        ),
        (json!({"_id": {"$oid": id_of("baz")}}), vec!["baz"]),
        (
            json!({"_id": format!("ObjectId(\"{}\")", id_of("qux"))}),
            vec!["qux"],
        ),
        (
            json!({"_id": {"$in": [{"$oid": id_of("foo")}, {"$oid": id_of("bar")}]}}),
            vec!["foo", "bar"],
        ),
        (
            json!({"createdAt": {"$gte": "relative_date(-1, \"days\")"}}),
            all.to_vec(),
        ),
        (
            json!({"createdAt": {"$lt": "relative_date(null, null, \"day\")"}}),
            vec![],
        ),
    ];
    for (q, want) in cases {
        let body = query(&s, "", q.clone()).await;
        assert_eq!(foo_set(&body), sorted(&want), "{q}");
        for doc in body["data"].as_array().unwrap() {
            assert!(doc.get("secret").is_none(), "{doc}");
        }
    }
}

#[tokio::test]
async fn url_parameters_apply_as_on_the_list() {
    let (s, _) = fixture().await;
    let body = query(
        &s,
        "filter[n]=$gte:3&sort=-n&limit=2&fields=foo",
        json!({"foo": {"$ne": "qux"}}),
    )
    .await;
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{body}");
    assert_eq!(
        data[0],
        json!({"_id": data[0]["_id"], "id": data[0]["_id"], "foo": "baz"})
    );
    assert_eq!(data[1]["foo"], "bar");
    assert_eq!(
        (body["limit"].clone(), body["page"].clone()),
        (json!(2), json!(1))
    );
    let next = body["next"]
        .as_str()
        .unwrap_or_else(|| panic!("no next: {body}"));
    assert!(
        next.contains("/query/test?") && next.contains("page=2"),
        "{next}"
    );

    let body = query(
        &s,
        "filter[n]=$gte:3&sort=-n&limit=2&page=2&fields=foo",
        json!({"foo": {"$ne": "qux"}}),
    )
    .await;
    assert_eq!(foo_set(&body), ["Foo2"]);
    assert_eq!(
        (body["count"].clone(), body["page_count"].clone()),
        (json!(3), json!(2))
    );
    assert!(body["prev"].as_str().unwrap().contains("page=1"), "{body}");

    let body = query(&s, "count=true", json!({"n": {"$lt": 5}})).await;
    assert_eq!(body["count"], 3);
    // The top-level full-text `search` does not apply to /query.
    let body = query(&s, "search=nothing", json!({"n": {"$lt": 5}})).await;
    assert_eq!(foo_set(&body).len(), 3, "{body}");
    let body = query(&s, "limit=5000", json!({})).await;
    assert_eq!(body["limit_capped"], true, "{body}");

    // Soft-deleted documents only with showDeleted.
    let (_, listed) = s.get("/api/test?filter[foo]=qux").await;
    let qux = listed["data"][0]["_id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.delete(&format!("/api/test/{qux}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        foo_set(&query(&s, "", json!({"n": 7})).await),
        Vec::<String>::new()
    );
    assert_eq!(
        foo_set(&query(&s, "showDeleted=true", json!({"n": 7})).await),
        ["qux"]
    );
}

#[tokio::test]
async fn a_non_empty_query_is_a_filter_for_the_large_collection_rule() {
    let s = TestServer::open_with(&[
        ("QUERY_LIMITS_LARGE_COLLECTION_THRESHOLD", "3"),
        ("QUERY_LIMITS_DEFAULT", "2"),
    ])
    .await;
    for i in 0..4 {
        s.create(
            "test",
            json!({"foo": format!("f{i}"), "bar": format!("b{i}"), "n": i}),
        )
        .await;
    }
    let got = s.post("/query/test", json!({"query": {}})).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "limit");
    let body = query(&s, "", json!({"n": {"$gte": 0}})).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2, "{body}");
    assert!(body.get("next").is_some(), "{body}");
    let body = query(&s, "limit=3", json!({})).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 3, "{body}");
}

#[tokio::test]
async fn bad_queries_are_400s() {
    let (s, _) = fixture().await;
    let missing = "query missing or not of type object";
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), missing),
        (json!({"query": []}), missing),
        (json!({"query": "n > 1"}), missing),
        (json!({"query": null}), missing),
        (json!([]), missing),
        (json!({"query": {"$where": "this.n > 1"}}), "$where"),
        (
            json!({"query": {"n": {"$function": {"body": "1"}}}}),
            "$function",
        ),
        (json!({"query": {"$expr": {"$gt": ["$n", 1]}}}), "$expr"),
        (json!({"query": {"n": {"$foo": 1}}}), "$foo"),
        (json!({"query": {"$text": {"$search": "x"}}}), "$text"),
        (json!({"query": {"nope": 1}}), "nope"),
        (json!({"query": {"secret": "s"}}), "secret"),
        (json!({"query": {"n": {"$gte": "abc"}}}), "abc"),
        (
            json!({"query": {"when": {"$gt": "not a date"}}}),
            "not a date",
        ),
        (json!({"query": {"n": {"$in": 3}}}), "$in"),
        (json!({"query": {"_id": {"$oid": "xyz"}}}), "ObjectId"),
        (json!({"query": {"foo": {"$regex": "("}}}), "regex"),
    ];
    for (body, needle) in cases {
        let got = s.post("/query/test", body.clone()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, needle);
    }
    let got = s.post("/query/test?limit=0", json!({"query": {}})).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "limit");
    let got = s
        .raw(
            Method::POST,
            "/query/test",
            Some("application/json"),
            b"{\"query\":".to_vec(),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "malformed JSON");
    let got = s.raw(Method::POST, "/query/test", None, Vec::new()).await;
    assert_error(&got, StatusCode::BAD_REQUEST, missing);
    let got = s.post("/query/nope", json!({"query": {}})).await;
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{}", got.1);
    assert_eq!(s.total("test").await, 5);
}

#[tokio::test]
async fn reads_as_the_list_does() {
    let w = world(&[("owned", OWNED), ("tag", TAG), ("closed", CLOSED)]).await;
    let s = &w.s;
    create_as(
        s,
        &w.alice,
        "owned",
        json!({"title": "a1", "n": 1, "secret": "x"}),
    )
    .await;
    create_as(s, &w.alice, "owned", json!({"title": "a2", "n": 2})).await;
    create_as(s, &w.bob, "owned", json!({"title": "b1", "n": 3})).await;
    let body = json!({"query": {"n": {"$gte": 1}}});
    let got = call(
        s,
        Method::POST,
        "/query/owned",
        &Auth::None,
        Some(body.clone()),
    )
    .await;
    assert_error(&got, StatusCode::FORBIDDEN, "owned");
    // The permission is decided before the body is looked at.
    let got = call(
        s,
        Method::POST,
        "/query/owned",
        &Auth::None,
        Some(json!({})),
    )
    .await;
    assert_eq!(got.0, StatusCode::FORBIDDEN, "{}", got.1);
    let got = call(
        s,
        Method::POST,
        "/query/closed",
        &w.alice.basic(),
        Some(body.clone()),
    )
    .await;
    assert_error(&got, StatusCode::FORBIDDEN, "closed");
    for (who, want) in [
        (&w.alice, vec!["a1", "a2"]),
        (&w.bob, vec!["b1"]),
        (&w.admin, vec!["a1", "a2", "b1"]),
    ] {
        let (status, resp) = call(
            s,
            Method::POST,
            "/query/owned?sort=n",
            &who.basic(),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        let titles: Vec<&str> = resp["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert!(d.get("secret").is_none(), "{d}");
                d["title"].as_str().unwrap()
            })
            .collect();
        assert_eq!(titles, want, "{}", who.email);
    }
    let (_, resp) = call(
        s,
        Method::POST,
        "/query/owned",
        &w.alice.basic(),
        Some(json!({"query": {"_owner_id": w.bob.id}})),
    )
    .await;
    assert_eq!(resp["data"], json!([]));
}

#[tokio::test]
async fn array_operators() {
    let (s, _) = fixture().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"shmack": {"$size": 2}}), vec!["foo"]),
        (json!({"shmack": {"$size": 1}}), vec!["Foo2", "bar"]),
        // Documents created without the array store it as [] (the schema's default).
        (json!({"shmack": {"$size": 0}}), vec!["baz", "qux"]),
        (json!({"shmack": {"$all": ["ray", "do"]}}), vec!["foo"]),
        (json!({"shmack": {"$all": ["do"]}}), vec!["foo", "bar"]),
        (json!({"shmack": {"$all": []}}), vec![]),
        (
            json!({"shmack": {"$elemMatch": {"$regex": "^r"}}}),
            vec!["foo"],
        ),
        (
            json!({"composite_array": {"$elemMatch": {"abar": {"$gte": 3}, "afoo": "y"}}}),
            vec!["bar"],
        ),
        // The conditions must hold on one element, not across elements.
        (
            json!({"composite_array": {"$elemMatch": {"abar": {"$gte": 3}, "afoo": "x"}}}),
            vec![],
        ),
        (
            json!({"$nor": [{"shmack": {"$size": 1}}], "n": {"$lt": 7}}),
            vec!["foo", "baz"],
        ),
    ];
    for (filter, want) in cases {
        let body = query(&s, "", filter.clone()).await;
        assert_eq!(foo_set(&body), sorted(&want), "{filter}");
    }
    for (filter, needle) in [
        (json!({"foo": {"$size": 1}}), "\"foo\""),
        (json!({"n": {"$all": [1]}}), "\"n\""),
        (
            json!({"address": {"$elemMatch": {"city": "Durban"}}}),
            "\"address\"",
        ),
        (json!({"shmack": {"$size": -1}}), "$size"),
        (
            json!({"composite_array": {"$elemMatch": {"nope": 1}}}),
            "nope",
        ),
    ] {
        let got = s.post("/query/test", json!({ "query": filter })).await;
        assert_error(&got, StatusCode::BAD_REQUEST, needle);
    }
}

//! `POST /aggregate/:model`: every stage over HTTP, both body forms, the wrappers, private
//! fields kept out, the reader's scope, `$lookup` permissions, errors naming the stage, the
//! `advanced_queries` opt-out and the response-size limit. Also the helpers (accounts, calls
//! with Basic credentials) that the `/query` and `/csv` tests share.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error};

/// A model only its owners (and admins) read; with a private field and a link to `tag`.
pub const OWNED: &str = r#"
name = "Owned"
[fields]
title = "String"
n = "Number"
tag_id = { type = "ObjectId", link = "Tag" }
secret = { type = "String", private = true }
[perms]
admin = "crud"
owner = "crud"
user = "c"
"#;

/// A model anyone reads, with a private field.
pub const TAG: &str = r#"
name = "Tag"
[fields]
label = "String"
hidden = { type = "String", private = true }
[perms]
all = "r"
admin = "crud"
"#;

/// A model users may write but only admins read.
pub const CLOSED: &str = r#"
name = "Closed"
[fields]
code = "String"
[perms]
admin = "crud"
user = "c"
"#;

/// A model that opts out of `/query` and `/aggregate`.
pub const NOADV: &str = r#"
name = "Noadv"
[fields]
foo = "String"
[perms]
all = "crud"
[options]
advanced_queries = { query = false, aggregate = false }
"#;

/// Someone who logs in with Basic credentials.
#[derive(Debug, Clone)]
pub struct Acct {
    pub id: String,
    pub email: String,
    pub password: String,
}

/// A server with an admin and two users, Alice and Bob.
pub struct World {
    pub s: TestServer,
    pub admin: Acct,
    pub alice: Acct,
    pub bob: Acct,
}

/// A request as `who` (anonymous when `None`); the answer's status and JSON (or text).
pub async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    who: Option<&Acct>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = s.client.request(method, format!("{}{path}", s.base));
    if let Some(a) = who {
        req = req.basic_auth(&a.email, Some(&a.password));
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Creates a document as `who`; answers its `_id`.
pub async fn create_as(s: &TestServer, who: &Acct, model: &str, body: Value) -> String {
    let (status, resp) = call(
        s,
        Method::POST,
        &format!("/api/{model}"),
        Some(who),
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    resp["data"]["_id"].as_str().unwrap().to_owned()
}

/// Starts a server on `models` (plus the open `test` and `link`) with an admin, Alice and Bob.
pub async fn world(models: &[(&str, &str)]) -> World {
    let mut all = vec![
        ("test", crate::harness::OPEN_TEST),
        ("link", crate::harness::OPEN_LINK),
    ];
    all.extend_from_slice(models);
    let s = TestServer::start(&all, &[("LOGIN_RATE_LIMIT_ENABLED", "false")]).await;
    let admin_email = "admin@example.com";
    let admin_password = "admin-secret-1";
    let (status, body) = s
        .post(
            "/setup",
            json!({"email": admin_email, "password": admin_password, "name": "Admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let admin = Acct {
        id: body["user_id"].as_str().unwrap().to_owned(),
        email: admin_email.into(),
        password: admin_password.into(),
    };
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let email = format!("{name}@example.com");
        let password = format!("{name}-password");
        let id = create_as(
            &s,
            &admin,
            "user",
            json!({"name": name, "email": email, "password": password}),
        )
        .await;
        users.push(Acct {
            id,
            email,
            password,
        });
    }
    let bob = users.pop().unwrap();
    let alice = users.pop().unwrap();
    World {
        s,
        admin,
        alice,
        bob,
    }
}

/// `POST /aggregate/{model}` anonymously with `body`, expecting 200; answers `data`.
async fn agg(s: &TestServer, model: &str, body: Value) -> Value {
    let (status, resp) = s.post(&format!("/aggregate/{model}"), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}: {resp}");
    assert!(resp.get("data").is_some_and(Value::is_array), "{resp}");
    resp["data"].clone()
}

/// `foo` of each document, in order.
fn foos(data: &Value) -> Vec<String> {
    data.as_array()
        .unwrap()
        .iter()
        .map(|d| d["foo"].as_str().unwrap_or("?").to_owned())
        .collect()
}

struct Fixture {
    s: TestServer,
    link1: String,
    apple: String,
    banana: String,
}

/// Three live `test` documents (and a deleted one), two links.
async fn fixture() -> Fixture {
    let s = TestServer::open().await;
    let link1 = s.create("link", json!({"name": "L1"})).await;
    let link2 = s.create("link", json!({"name": "L2"})).await;
    let apple = s
        .create(
            "test",
            json!({"foo": "apple", "bar": "b1", "n": 3, "status": "published", "shmack": ["red", "sweet"],
                   "address": {"street": "A"}, "when": "2024-01-05T10:00:00.000Z", "ref_id": link1,
                   "secret": "s1", "password": "pw1"}),
        )
        .await;
    let banana = s
        .create(
            "test",
            json!({"foo": "banana", "bar": "b2", "n": 1, "status": "published", "shmack": ["yellow", "sweet"],
                   "when": "2024-02-01", "ref_id": link2, "secret": "s2"}),
        )
        .await;
    s.create(
        "test",
        json!({"foo": "carrot", "bar": "b3", "n": 2, "status": "draft", "shmack": [], "when": "2024-02-10"}),
    )
    .await;
    let gone = s
        .create("test", json!({"foo": "deleted", "bar": "b4", "n": 100}))
        .await;
    let (status, body) = s.delete(&format!("/api/test/{gone}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Fixture {
        s,
        link1,
        apple,
        banana,
    }
}

#[tokio::test]
async fn every_stage_over_http() {
    let f = fixture().await;
    let cases: Vec<(Value, Value)> = vec![
        (
            json!([
                {"$group": {"_id": "$status", "n": {"$sum": 1}, "total": {"$sum": "$n"}, "avg": {"$avg": "$n"},
                            "min": {"$min": "$n"}, "max": {"$max": "$n"}, "count": {"$count": {}},
                            "first": {"$first": "$foo"}, "last": {"$last": "$foo"},
                            "foos": {"$push": "$foo"}, "set": {"$addToSet": "$status"}}},
                {"$sort": {"_id": 1}}
            ]),
            json!([
                {"_id": "draft", "n": 1, "total": 2, "avg": 2, "min": 2, "max": 2, "count": 1,
                 "first": "carrot", "last": "carrot", "foos": ["carrot"], "set": ["draft"]},
                {"_id": "published", "n": 2, "total": 4, "avg": 2, "min": 1, "max": 3, "count": 2,
                 "first": "apple", "last": "banana", "foos": ["apple", "banana"], "set": ["published"]}
            ]),
        ),
        // The deleted document is never part of the input.
        (json!([{"$count": "n"}]), json!([{"n": 3}])),
        (
            json!([{"$match": {"foo": "nope"}}, {"$count": "n"}]),
            json!([]),
        ),
        // A leading $match is read as a filter on the model, so "2" is cast to a Number.
        (
            json!([{"$match": {"n": {"$gte": "2"}}}, {"$project": {"_id": 0, "foo": 1}}]),
            json!([{"foo": "apple"}, {"foo": "carrot"}]),
        ),
        (
            json!([{"$match": {"foo": "apple"}},
                   {"$project": {"_id": 0, "name": "$foo", "double": {"$multiply": ["$n", 2]}, "street": "$address.street"}}]),
            json!([{"name": "apple", "double": 6, "street": "A"}]),
        ),
        (
            json!([{"$match": {"foo": "banana"}}, {"$addFields": {"n10": {"$multiply": ["$n", 10]}}},
                   {"$set": {"flag2": true}}, {"$project": {"_id": 0, "n10": 1, "flag2": 1}}]),
            json!([{"n10": 10, "flag2": true}]),
        ),
        (
            json!([{"$match": {"foo": "banana"}}, {"$project": {"_id": 0, "foo": 1, "n": 1}}, {"$unset": "n"}]),
            json!([{"foo": "banana"}]),
        ),
        (
            json!([{"$sort": {"n": -1}}, {"$skip": 1}, {"$limit": 1}, {"$project": {"_id": 0, "foo": 1}}]),
            json!([{"foo": "carrot"}]),
        ),
        (
            json!([{"$project": {"_id": 0, "foo": 1, "n": 1}}, {"$sort": {"foo": -1}}, {"$limit": 2}]),
            json!([{"foo": "carrot", "n": 2}, {"foo": "banana", "n": 1}]),
        ),
        (
            json!([{"$unwind": "$shmack"}, {"$group": {"_id": "$shmack", "n": {"$sum": 1}}}, {"$sort": {"n": -1, "_id": 1}}]),
            json!([{"_id": "sweet", "n": 2}, {"_id": "red", "n": 1}, {"_id": "yellow", "n": 1}]),
        ),
        (
            json!([{"$match": {"foo": "carrot"}},
                   {"$unwind": {"path": "$shmack", "preserveNullAndEmptyArrays": true}},
                   {"$project": {"_id": 0, "foo": 1, "shmack": 1}}]),
            json!([{"foo": "carrot"}]),
        ),
        (
            json!([{"$match": {"foo": "apple"}},
                   {"$lookup": {"from": "link", "localField": "ref_id", "foreignField": "_id", "as": "link"}},
                   {"$project": {"_id": 0, "link.name": 1}}]),
            json!([{"link": [{"name": "L1"}]}]),
        ),
        // MongoDB clients name collections in the plural.
        (
            json!([{"$lookup": {"from": "links", "localField": "ref_id", "foreignField": "_id", "as": "l"}},
                   {"$project": {"_id": 0, "foo": 1, "l.name": 1}}]),
            json!([{"foo": "apple", "l": [{"name": "L1"}]}, {"foo": "banana", "l": [{"name": "L2"}]}, {"foo": "carrot", "l": []}]),
        ),
        // After $group the documents are not the model's: this $match runs in memory.
        (
            json!([{"$group": {"_id": "$status", "n": {"$sum": 1}}}, {"$match": {"n": {"$gt": 1}}}]),
            json!([{"_id": "published", "n": 2}]),
        ),
        (
            json!([{"$match": {"$expr": {"$gt": ["$n", 1]}}}, {"$count": "n"}]),
            json!([{"n": 2}]),
        ),
        // Operators the model filter does not take run in memory.
        (
            json!([{"$match": {"shmack": {"$elemMatch": {"$eq": "red"}}}}, {"$project": {"_id": 0, "foo": 1}}]),
            json!([{"foo": "apple"}]),
        ),
        (
            json!([{"$match": {"shmack": {"$size": 0}}}, {"$project": {"_id": 0, "foo": 1}}]),
            json!([{"foo": "carrot"}]),
        ),
        (
            json!([{"$match": {"shmack": {"$all": ["sweet", "red"]}}}, {"$project": {"_id": 0, "foo": 1}}]),
            json!([{"foo": "apple"}]),
        ),
        (
            json!([{"$match": {"$or": [{"n": 1}, {"foo": {"$regex": "^CAR", "$options": "i"}}]}},
                   {"$sort": {"foo": 1}}, {"$project": {"_id": 0, "foo": 1}}]),
            json!([{"foo": "banana"}, {"foo": "carrot"}]),
        ),
    ];
    for (pipeline, want) in cases {
        assert_eq!(
            agg(&f.s, "test", pipeline.clone()).await,
            want,
            "{pipeline}"
        );
        // The same pipeline wrapped in {"query": …}.
        assert_eq!(
            agg(&f.s, "test", json!({ "query": pipeline })).await,
            want,
            "wrapped {pipeline}"
        );
    }
    // An empty pipeline is every live document, as the API shows them.
    let all = agg(&f.s, "test", json!([])).await;
    assert_eq!(foos(&all), ["apple", "banana", "carrot"]);
    assert_eq!(all[0]["_id"], f.apple.as_str());
    assert_eq!(all[0]["id"], f.apple.as_str());
    assert_eq!(all[0]["_deleted"], false);
}

#[tokio::test]
async fn private_fields_never_appear_or_match() {
    let f = fixture().await;
    let s = &f.s;
    for doc in agg(s, "test", json!([])).await.as_array().unwrap() {
        assert!(
            doc.get("secret").is_none() && doc.get("password").is_none(),
            "{doc}"
        );
    }
    let cases: Vec<(Value, Value)> = vec![
        (
            json!([{"$match": {"foo": "apple"}}, {"$project": {"_id": 0, "secret": 1, "password": 1, "foo": 1}}]),
            json!([{"foo": "apple"}]),
        ),
        (
            json!([{"$group": {"_id": "$secret", "n": {"$sum": 1}}}]),
            json!([{"_id": null, "n": 3}]),
        ),
        (json!([{"$match": {"secret": "s1"}}]), json!([])),
        (
            json!([{"$match": {"password": {"$exists": true}}}]),
            json!([]),
        ),
        (
            json!([{"$project": {"_id": 0, "foo": 1, "s": "$secret"}}, {"$match": {"s": {"$exists": true}}}]),
            json!([]),
        ),
        (
            json!([{"$match": {"$expr": {"$eq": ["$secret", "s1"]}}}]),
            json!([]),
        ),
    ];
    for (pipeline, want) in cases {
        assert_eq!(agg(s, "test", pipeline.clone()).await, want, "{pipeline}");
    }
    // Joined documents are stripped too, whichever field the join uses.
    let joined = agg(
        s,
        "link",
        json!([{"$match": {"_id": {"$oid": f.link1}}},
               {"$lookup": {"from": "test", "localField": "_id", "foreignField": "ref_id", "as": "tests"}}]),
    )
    .await;
    let tests = joined[0]["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 1, "{joined}");
    assert_eq!(tests[0]["foo"], "apple");
    assert!(tests[0].get("secret").is_none() && tests[0].get("password").is_none());
    let by_secret = agg(
        s,
        "link",
        json!([{"$lookup": {"from": "test", "localField": "name", "foreignField": "secret", "as": "t"}},
               {"$project": {"_id": 0, "t.foo": 1}}]),
    )
    .await;
    assert_eq!(by_secret, json!([{"t": []}, {"t": []}]));
}

#[tokio::test]
async fn wrappers_in_pipelines() {
    let f = fixture().await;
    let s = &f.s;
    let upper = f.link1.to_ascii_uppercase();
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"ref_id": {"$oid": f.link1}}), vec!["apple"]),
        (
            json!({"_id": {"$in": [{"$oid": f.apple}, {"$oid": f.banana}]}}),
            vec!["apple", "banana"],
        ),
        (
            json!({"ref_id": format!("ObjectId(\"{upper}\")")}),
            vec!["apple"],
        ),
        (
            json!({"when": {"$gte": {"$date": "2024-02-01T00:00:00.0Z"}}}),
            vec!["banana", "carrot"],
        ),
        (
            json!({"when": {"$lt": "new Date(\"2024-02-01\")"}}),
            vec!["apple"],
        ),
        (
            json!({"createdAt": {"$gte": "relative_date(-1, \"days\")"}}),
            vec!["apple", "banana", "carrot"],
        ),
        (
            json!({"createdAt": {"$lt": "relative_date(-1, \"days\")"}}),
            vec![],
        ),
        (
            json!({"createdAt": {"$gte": "relative_date(-7, \"days\", \"day\")", "$lte": "relative_date(null, null, null, \"month\")"}}),
            vec!["apple", "banana", "carrot"],
        ),
    ];
    for (filter, want) in cases {
        let data = agg(
            s,
            "test",
            json!([{"$match": filter}, {"$sort": {"foo": 1}}]),
        )
        .await;
        assert_eq!(foos(&data), want, "{filter}");
        // Not leading: the same filter runs in memory over canonical strings.
        let data = agg(
            s,
            "test",
            json!([{"$sort": {"foo": 1}}, {"$project": {"foo": 1, "ref_id": 1, "when": 1, "createdAt": 1}}, {"$match": filter}]),
        )
        .await;
        assert_eq!(foos(&data), want, "in memory: {filter}");
    }
    let data = agg(
        s,
        "test",
        json!([{"$match": {"foo": "apple"}}, {"$project": {"_id": 0, "at": {"$literal": "x"}, "d": {"$toDate": {"$date": 0}}}}]),
    )
    .await;
    assert_eq!(data, json!([{"at": "x", "d": "1970-01-01T00:00:00.000Z"}]));
}

#[tokio::test]
async fn bad_pipelines_are_400s_naming_the_problem() {
    let f = fixture().await;
    let s = &f.s;
    let missing = "query missing or not of type array";
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), missing),
        (json!({"query": {}}), missing),
        (json!({"query": "x"}), missing),
        (json!("x"), missing),
        (json!(null), missing),
        (json!([{"$out": "x"}]), "$out"),
        (json!([{"$merge": {"into": "x"}}]), "$merge"),
        (json!([{"$function": {}}]), "$function"),
        (json!([{"$match": {"$where": "sleep(1000)"}}]), "$where"),
        (
            json!([{"$sort": {"n": 1}}, {"$match": {"$where": "1"}}]),
            "$where",
        ),
        (json!([{"$match": {"foo": {"$function": {}}}}]), "$function"),
        (
            json!([{"$group": {"_id": null, "x": {"$accumulator": {}}}}]),
            "$accumulator",
        ),
        (json!([{"$group": {"n": {"$sum": 1}}}]), "$group"),
        (
            json!([{"$project": {"x": {"$function": {"body": "1"}}}}]),
            "$function",
        ),
        (json!([{"$project": {"foo": 1, "bar": 0}}]), "$project"),
        (json!([{"$limit": -1}]), "$limit"),
        (json!([{"$unwind": "shmack"}]), "$unwind"),
        (
            json!([{"$lookup": {"from": "nope", "localField": "a", "foreignField": "b", "as": "c"}}]),
            "nope",
        ),
        (
            json!([{"$lookup": {"from": "link", "pipeline": [], "as": "c"}}]),
            "$lookup",
        ),
        (json!([{"$match": {"_id": {"$oid": "xyz"}}}]), "ObjectId"),
        (
            json!([{"$match": {"when": {"$gte": "relative_date(-1, \"fortnights\")"}}}]),
            "fortnights",
        ),
        (json!([{"$match": {}, "$limit": 1}]), "one key"),
    ];
    for (body, needle) in cases {
        let got = s.post("/aggregate/test", body.clone()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, needle);
    }
    let got = s
        .raw(
            Method::POST,
            "/aggregate/test",
            Some("application/json"),
            b"[{".to_vec(),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "malformed JSON");
    let got = s
        .raw(Method::POST, "/aggregate/test", None, Vec::new())
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, missing);
    let got = s.post("/aggregate/nope", json!([])).await;
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{}", got.1);
    // Nothing was written by any of it.
    assert_eq!(s.total("test").await, 4);
}

#[tokio::test]
async fn scope_and_lookup_permissions() {
    let w = world(&[("owned", OWNED), ("tag", TAG), ("closed", CLOSED)]).await;
    let s = &w.s;
    let tag = create_as(s, &w.admin, "tag", json!({"label": "T", "hidden": "h"})).await;
    create_as(
        s,
        &w.alice,
        "owned",
        json!({"title": "a1", "n": 1, "tag_id": tag, "secret": "x"}),
    )
    .await;
    create_as(
        s,
        &w.alice,
        "owned",
        json!({"title": "a2", "n": 2, "tag_id": tag}),
    )
    .await;
    create_as(
        s,
        &w.bob,
        "owned",
        json!({"title": "b1", "n": 10, "tag_id": tag}),
    )
    .await;
    create_as(s, &w.alice, "closed", json!({"code": "c"})).await;
    let totals = json!([{"$group": {"_id": null, "n": {"$sum": 1}, "total": {"$sum": "$n"}}}]);
    let post = |who: Option<&Acct>, model: &str, body: &Value| {
        let path = format!("/aggregate/{model}");
        let body = body.clone();
        let who = who.cloned();
        async move { call(s, Method::POST, &path, who.as_ref(), Some(&body)).await }
    };

    let got = post(None, "owned", &totals).await;
    assert_error(&got, StatusCode::FORBIDDEN, "owned");
    for (who, want) in [
        (&w.alice, json!([{"_id": null, "n": 2, "total": 3}])),
        (&w.bob, json!([{"_id": null, "n": 1, "total": 10}])),
        (&w.admin, json!([{"_id": null, "n": 3, "total": 13}])),
    ] {
        let (status, body) = post(Some(who), "owned", &totals).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"], want, "{}", who.email);
    }
    // An owner-only reader cannot reach past the scope with a $match of their own.
    let (status, body) = post(
        Some(&w.alice),
        "owned",
        &json!([{"$match": {"_owner_id": w.bob.id}}]),
    )
    .await;
    assert_eq!((status, body["data"].clone()), (StatusCode::OK, json!([])));

    // $lookup into a model the caller may not read is refused; an admin may.
    let into_closed = json!([{"$lookup": {"from": "closed", "localField": "title", "foreignField": "code", "as": "c"}}]);
    let got = post(Some(&w.alice), "owned", &into_closed).await;
    assert_error(&got, StatusCode::FORBIDDEN, "closed");
    let (status, body) = post(Some(&w.admin), "owned", &into_closed).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // $lookup applies the joined model's scope: Alice sees only her own items under the tag.
    let items = json!([
        {"$lookup": {"from": "owned", "localField": "_id", "foreignField": "tag_id", "as": "items"}},
        {"$project": {"_id": 0, "label": 1, "hidden": 1, "items.title": 1, "items.secret": 1}}
    ]);
    let (status, body) = post(Some(&w.alice), "tag", &items).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!([{"label": "T", "items": [{"title": "a1"}, {"title": "a2"}]}])
    );
    let (_, body) = post(Some(&w.admin), "tag", &items).await;
    assert_eq!(
        body["data"],
        json!([{"label": "T", "items": [{"title": "a1"}, {"title": "a2"}, {"title": "b1"}]}])
    );
    // Anyone may read tags, but an anonymous caller may not read owned documents to join.
    let got = post(None, "tag", &items).await;
    assert_error(&got, StatusCode::FORBIDDEN, "owned");
}

#[tokio::test]
async fn advanced_queries_can_be_turned_off() {
    let s = TestServer::start(&[("noadv", NOADV)], &[]).await;
    s.create("noadv", json!({"foo": "x"})).await;
    let got = s.post("/aggregate/noadv", json!([])).await;
    assert_error(
        &got,
        StatusCode::FORBIDDEN,
        "POST /aggregate is disabled for model noadv",
    );
    let got = s.post("/query/noadv", json!({"query": {}})).await;
    assert_error(
        &got,
        StatusCode::FORBIDDEN,
        "POST /query is disabled for model noadv",
    );
    // The plain list is unaffected.
    let (status, body) = s.get("/api/noadv").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn large_answers_are_413() {
    let s = TestServer::start(
        &[
            ("test", crate::harness::OPEN_TEST),
            ("link", crate::harness::OPEN_LINK),
        ],
        &[("QUERY_LIMITS_MAX_RESPONSE_SIZE", "600")],
    )
    .await;
    for i in 0..5 {
        s.create(
            "test",
            json!({"foo": format!("f{i}"), "bar": format!("b{i}")}),
        )
        .await;
    }
    let got = s.post("/aggregate/test", json!([])).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "600");
    assert_eq!(
        agg(&s, "test", json!([{"$count": "n"}])).await,
        json!([{"n": 5}])
    );
}

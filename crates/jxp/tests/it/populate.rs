//! `populate`, `populate[]`, `populate[key]=fields` and `autopopulate`: linked documents
//! joined into list results under their key, read with the caller's rights, never deleted,
//! never with private fields.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestServer, World, assert_error, call, create_as, keys_of, start};

const TEST: &str = r#"
name = "Test"
[fields]
foo = "String"
link_id = { type = "ObjectId", link = "Link" }
other_link_id = { type = "ObjectId", link = "Link", map_to = "other_link" }
array_link_id = [{ type = "ObjectId", link = "Link", map_to = "array_link" }]
secret_id = { type = "ObjectId", link = "Secret" }
mine_id = { type = "ObjectId", link = "Mine" }
[perms]
all = "crud"
"#;

const LINK: &str = r#"
name = "Link"
[fields]
name = { type = "String", required = true }
n = "Number"
note = { type = "String", private = true }
password = "String"
[perms]
all = "crud"
"#;

/// Only admins may read it.
const SECRET: &str = r#"
name = "Secret"
[fields]
name = "String"
[perms]
admin = "crud"
"#;

/// Users create their own and read only their own.
const MINE: &str = r#"
name = "Mine"
[fields]
name = "String"
[perms]
user = "c"
owner = "crud"
"#;

const MODELS: &[(&str, &str)] = &[
    ("test", TEST),
    ("link", LINK),
    ("secret", SECRET),
    ("mine", MINE),
];

async fn list(s: &TestServer, query: &str) -> Vec<Value> {
    let (status, body) = s.get(&format!("/api/test?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body["data"].as_array().unwrap().clone()
}

/// The one document whose `foo` field is `wanted`.
fn by_foo<'a>(data: &'a [Value], wanted: &str) -> &'a Value {
    data.iter()
        .find(|d| d["foo"] == wanted)
        .unwrap_or_else(|| panic!("no {wanted} in {data:?}"))
}

struct Fixture {
    s: TestServer,
    l1: String,
    l2: String,
    l3: String,
}

async fn fixture() -> Fixture {
    let s = start(MODELS, &[]).await;
    let mut ids = Vec::new();
    for (i, name) in ["L1", "L2", "L3"].iter().enumerate() {
        ids.push(
            s.create(
                "link",
                json!({"name": name, "n": i, "note": "hidden", "password": "pw"}),
            )
            .await,
        );
    }
    let (l1, l2, l3) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    s.create(
        "test",
        json!({"foo": "a", "link_id": l1, "other_link_id": l2, "array_link_id": [l3, l1, l2]}),
    )
    .await;
    s.create(
        "test",
        json!({"foo": "b", "link_id": l2, "array_link_id": []}),
    )
    .await;
    s.create("test", json!({"foo": "c"})).await;
    Fixture { s, l1, l2, l3 }
}

#[tokio::test]
async fn populates_single_links_by_key_or_field_name() {
    let f = fixture().await;
    for query in ["populate=link", "populate=link_id"] {
        let data = list(&f.s, query).await;
        let a = by_foo(&data, "a");
        assert_eq!(a["link_id"], f.l1.as_str(), "the id stays as it was");
        assert_eq!(a["link"]["_id"], f.l1.as_str());
        assert_eq!(a["link"]["id"], f.l1.as_str());
        assert_eq!(a["link"]["name"], "L1");
        assert_eq!(a["link"]["n"], 0);
        assert!(a["link"].get("note").is_none(), "private field: {a}");
        assert!(a["link"].get("password").is_none(), "password: {a}");
        assert!(a.get("other_link").is_none(), "not asked for: {a}");
        assert_eq!(by_foo(&data, "b")["link"]["name"], "L2");
        assert_eq!(by_foo(&data, "c")["link"], Value::Null, "no link: null");
    }
}

#[tokio::test]
async fn map_to_names_the_key_and_arrays_keep_id_order() {
    let f = fixture().await;
    let data = list(&f.s, "populate=other_link&populate=array_link").await;
    let a = by_foo(&data, "a");
    assert_eq!(a["other_link"]["name"], "L2");
    let names: Vec<&Value> = a["array_link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["name"])
        .collect();
    assert_eq!(names, vec!["L3", "L1", "L2"]);
    assert!(
        a["array_link"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d.get("note").is_none())
    );
    assert_eq!(by_foo(&data, "b")["array_link"], json!([]));
    assert_eq!(by_foo(&data, "c")["array_link"], json!([]));

    // `populate[]=` lists, and the field's own name works too.
    let data = list(&f.s, "populate[]=link&populate[]=array_link_id").await;
    let a = by_foo(&data, "a");
    assert_eq!(a["link"]["name"], "L1");
    assert_eq!(a["array_link"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn soft_deleted_and_missing_documents_are_not_populated() {
    let f = fixture().await;
    // Deleted before anything refers to it (a referred-to document cannot be deleted without
    // a cascade); links are not checked for existence, so a document may still point at it.
    let dead = f.s.create("link", json!({"name": "Dead"})).await;
    let (status, body) = f.s.delete(&format!("/api/link/{dead}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    f.s.create(
        "test",
        json!({"foo": "d", "link_id": dead, "array_link_id": [f.l2, dead, "000000000000000000000000", f.l3]}),
    )
    .await;
    let data = list(&f.s, "populate=link&populate=array_link&showDeleted=true").await;
    let d = by_foo(&data, "d");
    assert_eq!(
        d["link"],
        Value::Null,
        "a deleted document is not shown: {d}"
    );
    let names: Vec<&Value> = d["array_link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["name"])
        .collect();
    assert_eq!(
        names,
        vec!["L2", "L3"],
        "deleted and unknown ids are dropped"
    );
    assert_eq!(by_foo(&data, "a")["link"]["_id"], f.l1.as_str());
}

#[tokio::test]
async fn projection_keeps_only_named_fields_and_ids() {
    let f = fixture().await;
    let data = list(&f.s, "populate[link]=name").await;
    let link = &by_foo(&data, "a")["link"];
    assert_eq!(keys_of(link), vec!["_id", "id", "name"], "{link}");

    let data = list(&f.s, "populate[array_link]=n,name&populate[other_link]=n").await;
    let a = by_foo(&data, "a");
    assert_eq!(a["other_link"], json!({"_id": f.l2, "id": f.l2, "n": 1}));
    assert_eq!(
        a["array_link"][0],
        json!({"_id": f.l3, "id": f.l3, "n": 2, "name": "L3"})
    );
    // A private field may be named; it is still never shown.
    let data = list(&f.s, "populate[link]=note,name").await;
    assert!(by_foo(&data, "a")["link"].get("note").is_none());
    assert_error(
        &f.s.get("/api/test?populate[link]=nope").await,
        StatusCode::BAD_REQUEST,
        "nope",
    );
}

#[tokio::test]
async fn autopopulate_fills_every_readable_link() {
    let f = fixture().await;
    let data = list(&f.s, "autopopulate=1").await;
    let a = by_foo(&data, "a");
    assert_eq!(a["link"]["name"], "L1");
    assert_eq!(a["other_link"]["name"], "L2");
    assert_eq!(a["array_link"].as_array().unwrap().len(), 3);
    // Anonymous callers may not read `secret` or `mine`: those keys are left out.
    assert!(a.get("secret").is_none(), "{a}");
    assert!(a.get("mine").is_none(), "{a}");
    // fields= narrows the document but the populated keys still come.
    let data = list(&f.s, "fields=foo&populate=link").await;
    let a = by_foo(&data, "a");
    assert_eq!(a["link"]["name"], "L1");
    assert!(a.get("other_link_id").is_none());
}

#[tokio::test]
async fn unknown_populate_names_are_bad_requests() {
    let f = fixture().await;
    for query in [
        "populate=nope",
        "populate=foo",
        "populate[]=nope",
        "populate[user]=name",
    ] {
        let got = f.s.get(&format!("/api/test?{query}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "populate");
    }
}

#[tokio::test]
async fn populated_documents_obey_the_readers_rights() {
    let w = World::start(MODELS, &[], ["alice", "bob"]).await;
    let s = &w.s;
    let secret = create_as(s, &w.admin, "secret", json!({"name": "S"})).await;
    let alices = create_as(s, &w.alice, "mine", json!({"name": "alice's"})).await;
    let bobs = create_as(s, &w.bob, "mine", json!({"name": "bob's"})).await;
    s.create(
        "test",
        json!({"foo": "a", "secret_id": secret, "mine_id": alices}),
    )
    .await;
    s.create("test", json!({"foo": "b", "mine_id": bobs})).await;

    // No read right on `secret`: the key is left out; an admin sees it.
    let data = list(s, "populate=secret").await;
    assert!(by_foo(&data, "a").get("secret").is_none());
    let (status, body) = call(
        s,
        Method::GET,
        "/api/test?populate=secret",
        &w.admin.basic(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        by_foo(body["data"].as_array().unwrap(), "a")["secret"]["name"],
        "S"
    );

    // Owner-only on `mine`: each user sees only their own linked document.
    for (who, own, other) in [(&w.alice, "a", "b"), (&w.bob, "b", "a")] {
        let (status, body) = call(
            s,
            Method::GET,
            "/api/test?populate=mine",
            &who.basic(),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let data = body["data"].as_array().unwrap();
        assert!(by_foo(data, own)["mine"].is_object(), "{body}");
        assert_eq!(by_foo(data, other)["mine"], Value::Null, "{body}");
    }
    let (_, body) = call(
        s,
        Method::GET,
        "/api/test?autopopulate=1",
        &w.alice.basic(),
        None,
    )
    .await;
    let a = by_foo(body["data"].as_array().unwrap(), "a");
    assert_eq!(a["mine"]["name"], "alice's");
    assert!(a.get("secret").is_none(), "{a}");
}

#[tokio::test]
async fn one_document_takes_populate_fields_and_autopopulate() {
    let f = fixture().await;
    let a = by_foo(&list(&f.s, "").await, "a")["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = |query: &'static str| {
        let (s, a) = (&f.s, a.clone());
        async move {
            let (status, body) = s.get(&format!("/api/test/{a}?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body["data"].clone()
        }
    };
    let doc = one("populate=link").await;
    assert_eq!(doc["link"]["name"], "L1", "{doc}");
    assert_eq!(
        doc["link_id"],
        f.l1.as_str(),
        "the id stays beside it: {doc}"
    );
    assert!(doc["link"].get("note").is_none(), "no private field: {doc}");
    assert!(
        doc.get("other_link").is_none(),
        "only what was asked: {doc}"
    );

    let doc = one("populate[]=array_link&populate[other_link]=n").await;
    let names: Vec<&str> = doc["array_link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["L3", "L1", "L2"], "{doc}");
    assert_eq!(
        doc["other_link"],
        json!({"_id": f.l2, "id": f.l2, "n": 1}),
        "{doc}"
    );

    let doc = one("autopopulate=1&fields=foo").await;
    assert_eq!(doc["link"]["name"], "L1", "{doc}");
    assert_eq!(doc["other_link"]["name"], "L2", "{doc}");
    assert!(
        doc.get("secret").is_none() && doc.get("mine").is_none(),
        "{doc}"
    );
    assert!(
        doc.get("link_id").is_none(),
        "fields= narrows the document: {doc}"
    );
    assert_eq!(doc["foo"], "a");

    // Without populate the document is as before; filters and paging are ignored here.
    let doc = one("filter[foo]=zzz&limit=1").await;
    assert_eq!(doc["foo"], "a", "{doc}");
    assert!(doc.get("link").is_none(), "{doc}");
    let got = f.s.get(&format!("/api/test/{a}?populate=nope")).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "populate");
    let got = f.s.get(&format!("/api/test/{a}?fields=nope")).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "nope");
}

#[tokio::test]
async fn owner_and_updater_populate_as_users_the_reader_may_see() {
    let w = World::start(MODELS, &[], ["alice", "bob"]).await;
    let s = &w.s;
    let id = create_as(s, &w.alice, "test", json!({"foo": "by alice"})).await;
    let (status, body) = call(
        s,
        Method::PUT,
        &format!("/api/test/{id}"),
        &w.bob.basic(),
        Some(json!({"foo": "edited by bob"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An admin reads users: both links populate, without private fields.
    let (status, body) = call(
        s,
        Method::GET,
        &format!("/api/test/{id}?populate=_owner&populate=_updated_by"),
        &w.admin.basic(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let doc = &body["data"];
    assert_eq!(doc["_owner"]["email"], w.alice.email, "{doc}");
    assert_eq!(doc["_updated_by"]["email"], w.bob.email, "{doc}");
    assert!(doc["_owner"].get("password").is_none(), "{doc}");

    // Users read user records (the built-in `user = "r"`), never their private fields, and
    // an email only their own (`private = "owner"`).
    let (status, body) = call(
        s,
        Method::GET,
        "/api/test?autopopulate=1",
        &w.alice.basic(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let doc = by_foo(body["data"].as_array().unwrap(), "edited by bob");
    assert_eq!(doc["_owner"]["email"], w.alice.email, "{doc}");
    assert_eq!(doc["_updated_by"]["name"], w.bob.name, "{doc}");
    assert!(doc["_updated_by"].get("email").is_none(), "{doc}");
    assert!(doc["_owner"].get("password").is_none(), "{doc}");
    assert!(doc["_updated_by"].get("temp_hash").is_none(), "{doc}");

    // Anonymous callers may not read users at all: the keys are left out.
    let (status, body) = s.get(&format!("/api/test/{id}?autopopulate=1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["data"].get("_owner").is_none(), "{body}");
}

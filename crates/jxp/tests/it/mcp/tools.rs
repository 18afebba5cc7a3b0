//! The five tools against REST for the same user: lists, one document, counts and CSV match
//! `GET /api`, `/count` and `/csv`; owner-only readers see their own documents; private fields
//! never appear; auth models are hidden unless whitelisted; the blacklist; MCP's limits.

use serde_json::{Value, json};

use super::client::Mcp;
use crate::aggregate::{CLOSED, OWNED, TAG};
use crate::harness::{Account, TestServer, World, create_as, get, login_as};

async fn owned_world(env: &[(&str, &str)]) -> World {
    let models = [
        ("test", crate::harness::OPEN_TEST),
        ("link", crate::harness::OPEN_LINK),
        ("owned", OWNED),
        ("tag", TAG),
        ("closed", CLOSED),
    ];
    let w = World::start(&models, env, ["alice", "bob"]).await;
    for (who, n) in [(&w.alice, 1), (&w.bob, 2), (&w.alice, 3)] {
        let body = json!({"title": format!("{} {n}", who.name), "n": n, "secret": "s"});
        create_as(&w.s, who, "owned", body).await;
    }
    let admin = w.admin.basic();
    crate::harness::call_ok(
        &w.s,
        reqwest::Method::POST,
        "/api/tag",
        &admin,
        Some(json!({"label": "red", "hidden": "h"})),
    )
    .await;
    w
}

fn ids(data: &Value) -> Vec<&str> {
    data.as_array()
        .unwrap()
        .iter()
        .map(|d| d["_id"].as_str().unwrap())
        .collect()
}

async fn csv_text(s: &TestServer, path: &str, who: &Account) -> String {
    let resp = s
        .client
        .get(format!("{}{path}", s.base))
        .basic_auth(&who.email, Some(&who.password))
        .send()
        .await
        .unwrap();
    resp.text().await.unwrap()
}

#[tokio::test]
async fn the_tools_answer_what_rest_answers_the_same_user() {
    let w = owned_world(&[]).await;
    let key = login_as(&w.s, &w.alice).await.key();
    let mcp = Mcp::connect(&w.s, &key).await;

    let models = mcp.ok("jxp_list_models", json!({})).await;
    let listed = mcp.model_slugs().await;
    for shown in ["test", "link", "owned", "tag"] {
        assert!(listed.iter().any(|m| m == shown), "{shown}: {models}");
    }
    // Alice may only create in `closed`; the auth models are hidden.
    for hidden in [
        "closed",
        "user",
        "apikey",
        "token",
        "refreshtoken",
        "usergroups",
    ] {
        assert!(!listed.iter().any(|m| m == hidden), "{hidden}: {models}");
    }
    let owned = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "owned");
    assert_eq!(owned.unwrap()["access"], "own documents only");

    // Owner-only: Alice's two documents, as REST lists them, without the private field.
    let found = mcp
        .ok("jxp_find", json!({"model": "owned", "sort": "n"}))
        .await;
    let (_, rest) = get(&w.s, "/api/owned?sort=n&limit=20", &key).await;
    assert_eq!(ids(&found["data"]), ids(&rest["data"]));
    assert_eq!(found["data"].as_array().unwrap().len(), 2, "{found}");
    assert_eq!(found["data"], rest["data"]);
    assert!(
        found["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d.get("secret").is_none())
    );

    let filtered = mcp
        .ok(
            "jxp_find",
            json!({"model": "owned", "filter": {"n": {"$gte": 2}}, "fields": "title"}),
        )
        .await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1, "{filtered}");
    assert_eq!(filtered["data"][0]["title"], "alice 3");
    assert!(filtered["data"][0].get("n").is_none(), "{filtered}");

    // One document by id, and Bob's is as good as absent.
    let first = ids(&rest["data"])[0].to_owned();
    let one = mcp
        .ok("jxp_find", json!({"model": "owned", "id": first}))
        .await;
    let (_, rest_one) = get(&w.s, &format!("/api/owned/{first}"), &key).await;
    assert_eq!(one["data"], rest_one["data"]);
    let bobs = mcp
        .ok(
            "jxp_find",
            json!({"model": "owned", "filter": {"title": "bob 2"}}),
        )
        .await;
    assert_eq!(bobs["data"], json!([]));

    let count = mcp.ok("jxp_count", json!({"model": "owned"})).await;
    let (_, rest_count) = get(&w.s, "/count/owned", &key).await;
    assert_eq!(count, rest_count);
    assert_eq!(count["count"], 2);

    let csv = mcp
        .tool("jxp_export_csv", json!({"model": "owned", "sort": "n"}))
        .await;
    assert!(!csv.error, "{}", csv.text);
    assert_eq!(
        csv.text,
        csv_text(&w.s, "/csv/owned?sort=n&limit=20", &w.alice).await
    );
    assert!(
        !csv.text.lines().next().unwrap().contains("secret"),
        "{}",
        csv.text
    );

    let described = mcp
        .ok("jxp_describe_model", json!({"model": "owned"}))
        .await;
    assert!(described["fields"].get("title").is_some(), "{described}");
    assert!(described["fields"].get("secret").is_none(), "{described}");
    assert_eq!(
        described["links"],
        json!([{"field": "tag_id", "model": "Tag"}])
    );

    // A model Alice may not read answers as an unknown one, through every tool.
    for tool in [
        "jxp_describe_model",
        "jxp_find",
        "jxp_count",
        "jxp_export_csv",
    ] {
        let refused = mcp.tool(tool, json!({"model": "closed"})).await;
        assert!(
            refused.error && refused.text.contains("closed"),
            "{tool}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn private_fields_never_appear_to_admins_either() {
    let w = owned_world(&[]).await;
    let mcp = Mcp::connect(&w.s, &w.admin.basic()).await;
    let found = mcp
        .ok(
            "jxp_find",
            json!({"model": "owned", "fields": "title,secret"}),
        )
        .await;
    assert_eq!(found["data"].as_array().unwrap().len(), 3, "{found}");
    let tags = mcp.ok("jxp_find", json!({"model": "tag"})).await;
    assert_eq!(tags["data"][0]["label"], "red");
    assert!(found["data"][0].get("secret").is_none() && tags["data"][0].get("hidden").is_none());
}

#[tokio::test]
async fn auth_models_are_shown_only_when_whitelisted_and_the_blacklist_hides() {
    let w = owned_world(&[]).await;
    let mcp = Mcp::connect(&w.s, &w.admin.basic()).await;
    assert!(!mcp.model_slugs().await.iter().any(|m| m == "user"));
    let hidden = mcp.tool("jxp_find", json!({"model": "user"})).await;
    assert!(hidden.error, "{hidden:?}");

    let w = owned_world(&[
        ("MCP_MODEL_WHITELIST", "user"),
        ("MCP_MODEL_BLACKLIST", "tag,link"),
    ])
    .await;
    let mcp = Mcp::connect(&w.s, &w.admin.basic()).await;
    let listed = mcp.model_slugs().await;
    let has = |slug: &str| listed.iter().any(|m| m == slug);
    assert!(has("user") && !has("tag") && !has("apikey"), "{listed:?}");
    let users = mcp.ok("jxp_find", json!({"model": "user"})).await;
    assert_eq!(users["data"].as_array().unwrap().len(), 3, "{users}");
    for u in users["data"].as_array().unwrap() {
        assert!(
            u.get("password").is_none() && u.get("email").is_some(),
            "{u}"
        );
    }
    assert!(mcp.tool("jxp_count", json!({"model": "tag"})).await.error);
    // Alice reads users as REST lets her: the whitelist shows a model, it grants nothing.
    let alice = Mcp::connect(&w.s, &w.alice.basic()).await;
    let (_, rest) = get(&w.s, "/count/user", &w.alice.basic()).await;
    let count = alice.tool("jxp_count", json!({"model": "user"})).await;
    match rest.get("count") {
        Some(n) => assert_eq!(count.json()["count"], *n),
        None => assert!(count.error, "{count:?}"),
    }
}

/// `count` documents of the open `test` model, `foo` f00, f01, … and `n` 0, 1, ….
async fn seed(s: &TestServer, count: u32) {
    for n in 0..count {
        let doc = json!({"foo": format!("f{n:02}"), "bar": format!("b{n}"), "n": n});
        s.create("test", doc).await;
    }
}

#[tokio::test]
async fn limits_default_max_and_response_size() {
    let s = TestServer::open().await;
    seed(&s, 30).await;
    let admin = crate::harness::setup_admin(&s).await;
    let mcp = Mcp::connect(&s, &admin.basic()).await;
    let page = mcp
        .ok("jxp_find", json!({"model": "test", "sort": "n"}))
        .await;
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        20,
        "MCP_DEFAULT_LIMIT is 20"
    );
    assert_eq!(page["next_page"], 2);
    let second = mcp
        .ok("jxp_find", json!({"model": "test", "sort": "n", "page": 2}))
        .await;
    assert_eq!(second["data"].as_array().unwrap().len(), 10);
    assert_eq!(second["data"][0]["foo"], "f20");
    let skipped = mcp
        .ok(
            "jxp_find",
            json!({"model": "test", "sort": "n", "limit": 5, "skip": 10}),
        )
        .await;
    assert_eq!(skipped["data"][0]["foo"], "f10");

    let s = TestServer::open_with(&[
        ("MCP_DEFAULT_LIMIT", "4"),
        ("MCP_MAX_LIMIT", "7"),
        ("MCP_MAX_RESPONSE_SIZE", "1kb"),
    ])
    .await;
    seed(&s, 12).await;
    let admin = crate::harness::setup_admin(&s).await;
    let mcp = Mcp::connect(&s, &admin.basic()).await;
    let fields = json!({"model": "test", "fields": "foo"});
    assert_eq!(
        mcp.ok("jxp_find", fields.clone()).await["data"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let mut asked = fields.clone();
    asked["limit"] = json!(500);
    assert_eq!(
        mcp.ok("jxp_find", asked).await["data"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let csv = mcp
        .tool(
            "jxp_export_csv",
            json!({"model": "test", "fields": "foo,n", "limit": 500}),
        )
        .await;
    assert_eq!(
        csv.text.lines().count(),
        8,
        "a header and 7 rows: {}",
        csv.text
    );
    let big = mcp
        .tool("jxp_find", json!({"model": "test", "limit": 7}))
        .await;
    assert!(
        big.error && big.text.contains("over the MCP limit"),
        "{big:?}"
    );
}

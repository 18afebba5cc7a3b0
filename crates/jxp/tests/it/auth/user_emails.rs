//! The built-in user model shows `email` (`private = "owner"`) only to the user themself and to
//! admins: in lists, single reads, populated links, `/query`, `/aggregate`, CSV, write answers
//! and events; filters and sorts on it are refused to everyone else, so no probe finds it
//! either; and a `models/user.toml` without the option shows it as before.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Account, World, assert_error, call, create_as, get, post};
use crate::realtime::support::subscribed;

/// Links to users, readable and writable by any logged-in user.
const NOTE: &str = r#"
name = "Note"
[fields]
text = "String"
author_id = { type = "ObjectId", link = "User" }
[perms]
user = "crud"
[options]
advanced_queries = { query = true, aggregate = true }
"#;

/// The built-in user model, as a project copies it into `models/user.toml` to change it:
/// here `email` without `private = "owner"`.
fn open_user() -> String {
    let builtin = include_str!("../../../../jxp-model/src/builtin/user.toml");
    let open = builtin.replace(", private = \"owner\"", "");
    assert_ne!(
        open, builtin,
        "the built-in user model marks email private = \"owner\""
    );
    open
}

async fn world() -> World {
    World::start(&[("note", NOTE)], &[], ["Alice", "Bob"]).await
}

/// The `email` of each user in `docs`, by name (`None` where it is not shown).
fn emails(docs: &Value) -> Vec<(String, Option<String>)> {
    let mut out: Vec<_> = docs
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {docs}"))
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or_default().to_owned(),
                d["email"].as_str().map(str::to_owned),
            )
        })
        .collect();
    out.sort();
    out
}

fn shown(who: &Account) -> (String, Option<String>) {
    (who.name.clone(), Some(who.email.clone()))
}

fn hidden(who: &Account) -> (String, Option<String>) {
    (who.name.clone(), None)
}

#[tokio::test]
async fn a_user_sees_names_of_others_but_only_their_own_email() {
    let w = world().await;
    let (status, body) = get(&w.s, "/api/user", &w.alice.basic()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        emails(&body["data"]),
        vec![hidden(&w.admin), shown(&w.alice), hidden(&w.bob)]
    );
    for d in body["data"].as_array().unwrap() {
        assert!(d["_id"].is_string() && d["name"].is_string(), "{d}");
    }
    let (_, one) = get(&w.s, &format!("/api/user/{}", w.bob.id), &w.alice.basic()).await;
    assert_eq!(one["data"]["name"], "Bob", "{one}");
    assert!(one["data"].get("email").is_none(), "{one}");
    let (_, own) = get(&w.s, &format!("/api/user/{}", w.alice.id), &w.alice.basic()).await;
    assert_eq!(own["data"]["email"], w.alice.email, "{own}");

    // The owner's own update answers with their email.
    let (status, put) = call(
        &w.s,
        reqwest::Method::PUT,
        &format!("/api/user/{}", w.alice.id),
        &w.alice.basic(),
        Some(json!({"name": "Alice A"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["data"]["email"], w.alice.email, "{put}");

    // The admin sees every address.
    let (_, all) = get(&w.s, "/api/user", &w.admin.basic()).await;
    let got = emails(&all["data"]);
    assert!(got.iter().all(|(_, e)| e.is_some()), "{all}");

    // CSV: the column is there, empty for other people.
    let (status, csv) = get(&w.s, "/csv/user", &w.alice.basic()).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    let text = csv.as_str().unwrap_or_default();
    assert!(text.contains(&w.alice.email), "{text}");
    assert!(
        !text.contains(&w.bob.email) && !text.contains(&w.admin.email),
        "{text}"
    );
}

#[tokio::test]
async fn populate_query_and_aggregate_show_no_email_of_others() {
    let w = world().await;
    create_as(
        &w.s,
        &w.alice,
        "note",
        json!({"text": "hi", "author_id": w.bob.id}),
    )
    .await;
    let (status, body) = get(&w.s, "/api/note?populate=author_id", &w.alice.basic()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let author = &body["data"][0]["user"];
    assert_eq!(author["name"], "Bob", "{body}");
    assert!(author.get("email").is_none(), "{body}");
    // Bob sees his own address through the same link.
    let (_, body) = get(&w.s, "/api/note?populate=author_id", &w.bob.basic()).await;
    assert_eq!(body["data"][0]["user"]["email"], w.bob.email, "{body}");

    let (status, q) = post(&w.s, "/query/user", &w.alice.basic(), json!({"query": {}})).await;
    assert_eq!(status, StatusCode::OK, "{q}");
    assert_eq!(
        emails(&q["data"]),
        vec![hidden(&w.admin), shown(&w.alice), hidden(&w.bob)]
    );

    let pipeline = json!({"query": [{"$project": {"name": 1, "email": 1}}]});
    let (status, agg) = post(&w.s, "/aggregate/user", &w.alice.basic(), pipeline).await;
    assert_eq!(status, StatusCode::OK, "{agg}");
    assert_eq!(
        emails(&agg["data"]),
        vec![hidden(&w.admin), shown(&w.alice), hidden(&w.bob)]
    );
    // A $match on the address runs on what Alice sees: it finds her own record only.
    for (email, want) in [(&w.bob.email, 0), (&w.alice.email, 1)] {
        let pipeline = json!({"query": [{"$match": {"email": email}}]});
        let (status, agg) = post(&w.s, "/aggregate/user", &w.alice.basic(), pipeline).await;
        assert_eq!(status, StatusCode::OK, "{agg}");
        assert_eq!(
            agg["data"].as_array().unwrap().len(),
            want,
            "{email}: {agg}"
        );
    }
    // A $lookup into users by address joins nothing of others.
    create_as(&w.s, &w.alice, "note", json!({"text": w.bob.email})).await;
    let pipeline = json!({"query": [
        {"$match": {"text": w.bob.email}},
        {"$lookup": {"from": "user", "localField": "text", "foreignField": "email", "as": "who"}}
    ]});
    let (status, agg) = post(&w.s, "/aggregate/note", &w.alice.basic(), pipeline.clone()).await;
    assert_eq!(status, StatusCode::OK, "{agg}");
    assert_eq!(agg["data"][0]["who"], json!([]), "{agg}");
    let (_, agg) = post(&w.s, "/aggregate/note", &w.admin.basic(), pipeline).await;
    assert_eq!(agg["data"][0]["who"][0]["email"], w.bob.email, "{agg}");
}

#[tokio::test]
async fn filtering_or_sorting_by_email_is_for_admins() {
    let w = world().await;
    let bob = &w.bob.email;
    for path in [
        format!("/api/user?filter[email]={bob}"),
        "/api/user?sort=email".to_owned(),
        format!("/count/user?filter[email]={bob}"),
    ] {
        let (status, body) = get(&w.s, &path, &w.alice.basic()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(!body.to_string().contains(bob.as_str()), "{path}: {body}");
    }
    for query in [
        json!({"email": bob}),
        json!({"$or": [{"name": "Nobody"}, {"email": {"$regex": "^b"}}]}),
    ] {
        let got = post(
            &w.s,
            "/query/user",
            &w.alice.basic(),
            json!({"query": query}),
        )
        .await;
        assert_error(&got, StatusCode::FORBIDDEN, "only admins may filter");
    }
    let (status, body) = get(
        &w.s,
        &format!("/api/user?filter[email]={bob}"),
        &w.admin.basic(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["email"], *bob, "{body}");
}

#[tokio::test]
async fn events_on_users_carry_email_only_to_the_user_and_admins() {
    let w = world().await;
    let mut alice = subscribed(&w.s, &w.alice, json!({"model": "user"})).await;
    let mut bob = subscribed(&w.s, &w.bob, json!({"model": "user"})).await;
    let mut admin = subscribed(&w.s, &w.admin, json!({"model": "user"})).await;
    // A filter on the address is refused to a user, like a list filter.
    let mut probe = crate::realtime::support::client_as(&w.s, &w.alice).await;
    let reply = probe
        .request(
            "subscribe",
            json!({"model": "user", "filter": {"email": w.bob.email}}),
        )
        .await;
    assert_eq!(reply["status"], "error", "{reply}");

    let (status, body) = call(
        &w.s,
        reqwest::Method::PUT,
        &format!("/api/user/{}", w.bob.id),
        &w.bob.basic(),
        Some(json!({"name": "Robert"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = alice.event().await;
    assert_eq!(seen["data"]["item"]["name"], "Robert", "{seen}");
    assert!(seen["data"]["item"].get("email").is_none(), "{seen}");
    // The author's address in the event follows the same rule.
    assert_eq!(seen["data"]["user_id"], w.bob.id.as_str(), "{seen}");
    assert_eq!(seen["data"]["user_name"], "Robert", "{seen}");
    assert_eq!(seen["data"]["user_email"], Value::Null, "{seen}");
    for c in [&mut bob, &mut admin] {
        let own = c.event().await;
        assert_eq!(own["data"]["item"]["email"], w.bob.email, "{own}");
        assert_eq!(own["data"]["user_email"], w.bob.email, "{own}");
    }
    // Replay from the start follows the same rule.
    let mut late = subscribed(&w.s, &w.alice, json!({"model": "user", "since": 0})).await;
    let mut replayed = Vec::new();
    while let Some(e) = late.next_event(Duration::from_millis(500)).await {
        replayed.push(e);
    }
    assert!(!replayed.is_empty());
    for e in &replayed {
        let item = &e["data"]["item"];
        if item["_id"] != w.alice.id.as_str() {
            assert!(item.get("email").is_none(), "{e}");
        }
        if e["data"]["user_id"] != w.alice.id.as_str() {
            assert_eq!(e["data"]["user_email"], Value::Null, "{e}");
        }
    }
}

#[tokio::test]
async fn a_user_model_file_without_the_option_shows_email_to_every_reader() {
    let user = open_user();
    let w = World::start(&[("note", NOTE), ("user", &user)], &[], ["Alice", "Bob"]).await;
    let (_, body) = get(&w.s, "/api/user", &w.alice.basic()).await;
    assert_eq!(
        emails(&body["data"]),
        vec![shown(&w.admin), shown(&w.alice), shown(&w.bob)]
    );
    let (status, _) = get(
        &w.s,
        &format!("/api/user?filter[email]={}", w.bob.email),
        &w.alice.basic(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // And events name every author's address.
    let mut alice = subscribed(&w.s, &w.alice, json!({"model": "note"})).await;
    create_as(&w.s, &w.bob, "note", json!({"text": "hi"})).await;
    let ev = alice.event().await;
    assert_eq!(ev["data"]["user_id"], w.bob.id.as_str(), "{ev}");
    assert_eq!(ev["data"]["user_email"], w.bob.email, "{ev}");
}

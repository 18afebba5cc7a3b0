//! `/bulkwrite` runs each operation through the write path, so the write hooks guard and
//! change bulk operations as they do REST writes.

use reqwest::StatusCode;
use serde_json::json;

use super::support::World;
use crate::harness;

#[tokio::test]
async fn bulk_operations_run_the_write_hooks() {
    let w = World::start(&[]).await;
    w.widget(json!({"name": "keep"})).await;
    let admin = w.admin.basic();
    let (status, body) = harness::post(
        &w.s,
        "/bulkwrite/widget",
        &admin,
        json!({"ordered": false, "query": [
            {"insertOne": {"document": {"name": "bulk-a", "tag": "x"}}},
            {"insertOne": {"document": {"name": "reject"}}},
            {"updateOne": {"filter": {"name": "bulk-a"}, "update": {"$set": {"tag": "y"}}}},
            {"replaceOne": {"filter": {"name": "bulk-a"}, "replacement": {"name": "bulk-b", "tag": "z"}}},
            {"updateOne": {"filter": {"name": "bulk-b"}, "update": {"$set": {"name": "reject"}}}},
            {"deleteOne": {"filter": {"name": "keep"}}}
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // (operation, error code or "ok")
    let outcomes: Vec<(String, String)> = body["data"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let code = r["error"]["code"].as_str().unwrap_or("ok");
            (r["op"].as_str().unwrap().to_owned(), code.to_owned())
        })
        .collect();
    let expected = [
        ("insertOne", "ok"),
        ("insertOne", "UnprocessableEntity"),
        ("updateOne", "ok"),
        ("replaceOne", "ok"),
        ("updateOne", "Forbidden"),
        ("deleteOne", "Conflict"),
    ]
    .map(|(o, c)| (o.to_owned(), c.to_owned()));
    assert_eq!(outcomes, expected, "{body}");
    assert_eq!(
        body["data"]["results"][1]["error"]["message"],
        "widgets may not be called reject"
    );
    assert_eq!(
        w.rec.take(),
        [
            "pre:post:*:widget",
            "pre:post",
            "post:post:widget",
            "pre:post:*:widget",
            "pre:post",
            "pre:put",
            "pre:update",
            "post:put:widget",
            "pre:put",
            "pre:update",
            "post:put:widget",
            "pre:put",
            "pre:delete",
        ]
    );
    // What the hooks changed is stored; what they rejected is not.
    let (_, list) = harness::get(&w.s, "/api/widget?sort=name", &admin).await;
    let stored: Vec<(String, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_owned(),
                d["tag"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        stored,
        [
            ("bulk-b".to_owned(), "Z".to_owned()),
            ("keep".to_owned(), String::new())
        ],
        "{list}"
    );
}

//! Create, read, update and delete round trips over every field type.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestServer;

#[tokio::test]
async fn create_get_update_round_trip() {
    let s = TestServer::open().await;
    let link = s.create("link", json!({"name": "L1"})).await;
    let (status, created) = s
        .post(
            "/api/test",
            json!({
                "foo": "Foo1", "bar": "Bar", "n": "5", "flag": "true", "when": "2020-05-10T09:55:15.957Z",
                "ref_id": link, "yack": {"yack": "yack", "shmack": 1}, "shmack": ["do", "ray", "me"],
                "fulltext": "In Xanadu", "address": {"street": "Long St"},
                "composite_array": [{"afoo": "a", "abar": "2"}], "code": "  ABC ", "secret": "s3", "password": "pw",
                "unknown": "dropped", "_id": "000000000000000000000000", "createdAt": "1999-01-01T00:00:00.000Z"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["status"], "ok");
    assert_eq!(created["message"], "test created");
    let doc = &created["data"];
    let id = doc["_id"].as_str().unwrap();
    assert_eq!(id.len(), 24);
    assert_ne!(id, "000000000000000000000000", "clients cannot choose _id");
    assert_eq!(doc["id"], doc["_id"]);
    assert_eq!(doc["n"], 5);
    assert_eq!(doc["flag"], true);
    assert_eq!(doc["when"], "2020-05-10T09:55:15.957Z");
    assert_eq!(doc["ref_id"], link.as_str());
    assert_eq!(doc["yack"], json!({"yack": "yack", "shmack": 1}));
    assert_eq!(doc["shmack"], json!(["do", "ray", "me"]));
    assert_eq!(
        doc["address"],
        json!({"street": "Long St", "city": "Cape Town"})
    );
    assert_eq!(doc["composite_array"], json!([{"afoo": "a", "abar": 2}]));
    assert_eq!(doc["code"], "abc");
    assert_eq!(doc["status"], "draft");
    assert_eq!(doc["_deleted"], false);
    assert_eq!(doc["__v"], 0);
    assert!(doc.get("unknown").is_none());
    assert!(
        doc.get("secret").is_none(),
        "private fields are never returned"
    );
    assert!(
        doc.get("password").is_none(),
        "passwords are never returned"
    );
    let created_at = doc["createdAt"].as_str().unwrap();
    assert_ne!(created_at, "1999-01-01T00:00:00.000Z");
    assert_eq!(
        created_at.len(),
        24,
        "ISO 8601 with milliseconds: {created_at}"
    );
    assert!(created_at.ends_with('Z'));

    let (status, got) = s.get(&format!("/api/test/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&got["data"], doc);

    let (status, updated) = s
        .put(&format!("/api/test/{id}"), json!({"foo": "Foo2", "n": 6}))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["message"], "test updated");
    assert_eq!(updated["data"]["foo"], "Foo2");
    assert_eq!(updated["data"]["bar"], "Bar", "a PUT is a PATCH");
    assert_eq!(updated["data"]["__v"], 1);
    let (status, updated) = s
        .post(&format!("/update/test/{id}"), json!({"foo": "Foo3"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["data"]["foo"], "Foo3");
    assert_eq!(updated["data"]["__v"], 2);
    assert!(updated["data"]["updatedAt"].as_str().unwrap() >= created_at);

    let (status, deleted) = s.delete(&format!("/api/test/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(
        deleted,
        json!({"status": "ok", "message": format!("test/{id} deleted")})
    );
    assert_eq!(
        s.get(&format!("/api/test/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
}

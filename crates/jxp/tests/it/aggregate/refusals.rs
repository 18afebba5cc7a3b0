//! What `/aggregate` refuses or narrows: bad pipelines (400s naming the stage), the reader's
//! scope and `$lookup` permissions, models that opt out, and answers over the size limit.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{CLOSED, NOADV, OWNED, TAG, agg, fixture, world};
use crate::harness::{Account, Auth, TestServer, assert_error, call, create_as};

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
    let post = |who: Option<&Account>, model: &str, body: &Value| {
        let path = format!("/aggregate/{model}");
        let body = body.clone();
        let who = who.cloned();
        async move {
            call(
                s,
                Method::POST,
                &path,
                &Auth::of(who.as_ref()),
                Some(body.clone()),
            )
            .await
        }
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
    let s = TestServer::open_with(&[("QUERY_LIMITS_MAX_RESPONSE_SIZE", "600")]).await;
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

//! The pipelines the database answers in one statement (`$match` + `$group`, a bare `$count`):
//! the same bodies as the in-memory executor gives for the same pipeline, the reader's scope
//! still applied, private fields still out of reach, `?explain=true` showing the SQL; and
//! pipelines it cannot take still answered in memory.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{OWNED, TAG, agg, world};
use crate::harness::{Account, Auth, TestServer, call, create_as};

/// A first stage no database runs, so the rest of the pipeline runs in memory.
fn in_memory(pipeline: &Value) -> Value {
    let mut stages = vec![json!({"$match": {"$expr": {"$eq": [1, 1]}}})];
    stages.extend(pipeline.as_array().unwrap().iter().cloned());
    Value::from(stages)
}

/// `?explain=true` as `who`: whether the database runs the pipeline's group, and its SQL.
async fn explained(s: &TestServer, who: &Account, model: &str, pipeline: &Value) -> Value {
    let (status, body) = call(
        s,
        Method::POST,
        &format!("/aggregate/{model}?explain=true"),
        &Auth::of(Some(who)),
        Some(pipeline.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

#[tokio::test]
async fn groups_in_the_database_answer_as_in_memory() {
    let w = world(&[]).await;
    let s = &w.s;
    for (i, body) in [
        json!({"foo": "apple", "n": 3, "flag": true, "status": "published", "when": "2024-01-05"}),
        json!({"foo": "apple", "n": 1.5, "flag": false}),
        json!({"foo": "pear", "n": 2, "status": "published"}),
        json!({"foo": "pear", "n": null, "flag": true}),
        json!({"n": 7.25, "secret": "s1"}),
        json!({"foo": "fig", "secret": "s2", "shmack": ["a"]}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = body;
        body["bar"] = json!(format!("b{i}"));
        create_as(s, &w.admin, "test", body).await;
    }
    let pushed = [
        json!([{"$group": {"_id": "$foo", "n": {"$sum": 1}, "total": {"$sum": "$n"}, "avg": {"$avg": "$n"}, "lo": {"$min": "$n"}, "hi": {"$max": "$n"}, "c": {"$count": {}}}}]),
        json!([{"$match": {"status": "published"}}, {"$group": {"_id": null, "total": {"$sum": "$n"}, "twice": {"$sum": 2}}}]),
        json!([{"$group": {"_id": {"f": "$foo", "flag": "$flag"}, "n": {"$sum": 1}}}, {"$sort": {"n": -1, "_id.f": 1}}]),
        json!([{"$group": {"_id": "$flag", "avg": {"$avg": "$n"}}}, {"$sort": {"_id": 1}}, {"$limit": 2}, {"$project": {"avg": 1}}]),
        json!([{"$match": {"n": {"$gt": 1}}}, {"$group": {"_id": "$status", "total": {"$sum": "$n"}}}, {"$skip": 1}]),
        json!([{"$match": {"foo": "nothing"}}, {"$group": {"_id": null, "n": {"$sum": 1}}}]),
        json!([{"$match": {"foo": "apple"}}, {"$count": "apples"}]),
        json!([{"$match": {"foo": "nothing"}}, {"$count": "none"}]),
    ];
    for pipeline in &pushed {
        let got = agg(s, "test", pipeline.clone()).await;
        assert_eq!(got, agg(s, "test", in_memory(pipeline)).await, "{pipeline}");
        if pipeline.to_string().contains("$group") {
            let plan = explained(s, &w.admin, "test", pipeline).await;
            assert_eq!(plan["in_database"], true, "{pipeline}: {plan}");
            assert!(
                plan["sql"].as_str().unwrap().starts_with("SELECT"),
                "{plan}"
            );
        }
    }
    assert_eq!(
        agg(s, "test", pushed[0].clone()).await,
        json!([
            {"_id": "apple", "n": 2, "total": 4.5, "avg": 2.25, "lo": 1.5, "hi": 3, "c": 2},
            {"_id": "pear", "n": 2, "total": 2, "avg": 2, "lo": 2, "hi": 2, "c": 2},
            {"_id": null, "n": 1, "total": 7.25, "avg": 7.25, "lo": 7.25, "hi": 7.25, "c": 1},
            {"_id": "fig", "n": 1, "total": 0, "avg": null, "lo": null, "hi": null, "c": 1}
        ])
    );
    assert_eq!(
        agg(s, "test", pushed[6].clone()).await,
        json!([{"apples": 2}])
    );
    assert_eq!(agg(s, "test", pushed[7].clone()).await, json!([]));

    // The sort, window and count of the groups join the group's statement.
    let tails = [
        (
            json!([{"$group": {"_id": "$foo", "n": {"$sum": 1}}}, {"$sort": {"n": -1, "_id": 1}}, {"$skip": 1}, {"$limit": 2}]),
            "LIMIT 2 OFFSET 1",
            json!([{"_id": "pear", "n": 2}, {"_id": null, "n": 1}]),
        ),
        (
            json!([{"$group": {"_id": "$foo", "n": {"$sum": 1}}}, {"$skip": 3}, {"$limit": 5}]),
            "LIMIT 5 OFFSET 3",
            json!([{"_id": "fig", "n": 1}]),
        ),
        (
            json!([{"$group": {"_id": "$foo"}}, {"$limit": 3}, {"$count": "groups"}]),
            "AS g_groups",
            json!([{"groups": 3}]),
        ),
        // A window past the last group is answered too.
        (
            json!([{"$group": {"_id": "$foo"}}, {"$skip": 10}]),
            "OFFSET 10",
            json!([]),
        ),
    ];
    for (pipeline, part, want) in tails {
        let got = agg(s, "test", pipeline.clone()).await;
        assert_eq!(got, want, "{pipeline}");
        assert_eq!(
            got,
            agg(s, "test", in_memory(&pipeline)).await,
            "{pipeline}"
        );
        // SQLite groups in the server first and shows the statement it would run past
        // its limit on groups in the plan; PostgreSQL runs the statement.
        let plan = explained(s, &w.admin, "test", &pipeline).await;
        let shown = format!("{} {}", plan["sql"].as_str().unwrap(), plan["plan"]);
        assert!(shown.contains(part), "{pipeline}: {plan}");
    }

    // What SQL cannot group exactly stays in memory and still answers: a private field (as
    // if absent), an array field, a Mixed one, an expression, $push, a $sort before the group.
    let fallback = [
        (
            json!([{"$group": {"_id": "$secret", "n": {"$sum": 1}}}]),
            json!([{"_id": null, "n": 6}]),
        ),
        (
            json!([{"$group": {"_id": null, "s": {"$sum": "$secret"}}}]),
            json!([{"_id": null, "s": 0}]),
        ),
        (
            json!([{"$group": {"_id": "$shmack", "n": {"$sum": 1}}}, {"$sort": {"n": 1}}]),
            json!([{"_id": ["a"], "n": 1}, {"_id": [], "n": 5}]),
        ),
        (
            json!([{"$match": {"foo": "pear"}}, {"$group": {"_id": {"$toUpper": "$foo"}, "names": {"$push": "$foo"}}}]),
            json!([{"_id": "PEAR", "names": ["pear", "pear"]}]),
        ),
        (
            json!([{"$match": {"foo": "apple"}}, {"$sort": {"n": 1}}, {"$group": {"_id": null, "first": {"$first": "$n"}}}]),
            json!([{"_id": null, "first": 1.5}]),
        ),
    ];
    for (pipeline, want) in fallback {
        assert_eq!(agg(s, "test", pipeline.clone()).await, want, "{pipeline}");
        let plan = explained(s, &w.admin, "test", &pipeline).await;
        assert_eq!(plan["in_database"], false, "{pipeline}: {plan}");
    }
}

#[tokio::test]
async fn groups_in_the_database_keep_to_the_readers_scope() {
    let w = world(&[("owned", OWNED), ("tag", TAG)]).await;
    let s = &w.s;
    for (who, title, n) in [
        (&w.alice, "a", json!(1)),
        (&w.alice, "a", json!(2.5)),
        (&w.bob, "b", json!(10)),
    ] {
        create_as(
            s,
            who,
            "owned",
            json!({"title": title, "n": n, "secret": "x"}),
        )
        .await;
    }
    let pipeline =
        json!([{"$group": {"_id": "$title", "total": {"$sum": "$n"}, "hi": {"$max": "$n"}}}]);
    assert_eq!(
        explained(s, &w.admin, "owned", &pipeline).await["in_database"],
        true
    );
    for (who, want) in [
        (&w.alice, json!([{"_id": "a", "total": 3.5, "hi": 2.5}])),
        (&w.bob, json!([{"_id": "b", "total": 10, "hi": 10}])),
        (
            &w.admin,
            json!([{"_id": "a", "total": 3.5, "hi": 2.5}, {"_id": "b", "total": 10, "hi": 10}]),
        ),
    ] {
        let (status, body) = call(
            s,
            Method::POST,
            "/aggregate/owned",
            &Auth::of(Some(who)),
            Some(pipeline.clone()),
        )
        .await;
        assert_eq!(
            (status, &body["data"]),
            (StatusCode::OK, &want),
            "{}",
            who.email
        );
    }
    // Grouping on the private field reveals nothing to anyone, admins included.
    let (status, body) = call(
        s,
        Method::POST,
        "/aggregate/owned",
        &Auth::of(Some(&w.admin)),
        Some(json!([{"$group": {"_id": "$secret", "n": {"$sum": 1}}}])),
    )
    .await;
    assert_eq!(
        (status, &body["data"]),
        (StatusCode::OK, &json!([{"_id": null, "n": 3}]))
    );
    // Explain is for admins.
    let (status, _) = call(
        s,
        Method::POST,
        "/aggregate/owned?explain=true",
        &Auth::of(Some(&w.alice)),
        Some(pipeline),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// PostgreSQL groups in a hash table, not by sorting every matching row; a grouping whose
/// statement the database refuses answers the caller's error and leaves no connection in a
/// transaction: every request after it, more than the pool holds, is answered as before.
#[tokio::test]
async fn groups_hash_and_a_refused_group_leaves_nothing_behind() {
    let w = world(&[]).await;
    let s = &w.s;
    for (i, (foo, n)) in [
        ("apple", json!(3)),
        ("pear", json!(1.5)),
        ("apple", json!(2)),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"foo": foo, "n": n, "bar": format!("h{i}")});
        create_as(s, &w.admin, "test", body).await;
    }
    let pipeline = json!([{"$group": {"_id": "$foo", "total": {"$sum": "$n"}}}]);
    let want = json!([{"_id": "apple", "total": 5}, {"_id": "pear", "total": 1.5}]);
    assert_eq!(agg(s, "test", pipeline.clone()).await, want);
    let plan = explained(s, &w.admin, "test", &pipeline).await;
    assert_eq!(plan["in_database"], true, "{plan}");
    let lines = plan["plan"].to_string();
    let postgres = crate::harness::test_postgres().is_some();
    if postgres {
        assert!(lines.contains("HashAggregate"), "{plan}");
        assert!(!lines.contains("GroupAggregate"), "{plan}");
    }
    // `\p{L}` is a regex PostgreSQL cannot compile (SQLite's runs it).
    let refused = json!([
        {"$match": {"foo": {"$regex": "\\p{L}"}}},
        {"$group": {"_id": "$foo", "total": {"$sum": "$n"}}}
    ]);
    let (status, body) = s.post("/aggregate/test", refused).await;
    if postgres {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    } else {
        assert_eq!((status, &body["data"]), (StatusCode::OK, &want), "{body}");
    }
    for _ in 0..24 {
        assert_eq!(agg(s, "test", pipeline.clone()).await, want);
        let (status, body) = s.get("/api/test?filter[foo]=pear").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
    }
}

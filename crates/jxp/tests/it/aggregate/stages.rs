//! What pipelines compute over HTTP: every stage, both body forms, the `$oid`/`$date`
//! wrappers, and private fields that never appear or match.

use serde_json::{Value, json};

use super::{agg, fixture, foos};

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

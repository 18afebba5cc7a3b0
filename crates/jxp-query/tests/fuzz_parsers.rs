//! Property-based fuzzing of everything that parses client input in this crate: Mongo-style
//! filters (`/query`, realtime filters), aggregation pipelines, update operators and the list
//! query string. The inputs are built from the grammar's own words (operators, field names,
//! awkward values) so that most of them get deep into the parsers. Whatever the input, a parser
//! answers `Ok` or `Err`, never panics; what it accepts renders to SQL that SQLite runs, and the
//! in-memory matcher and pipeline run on it without panicking.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code fails loudly.

use std::collections::HashMap;
use std::path::Path;

use jxp_model::Model;
use jxp_query::{
    Budget, Filter, SqlParam, SqlQuery, Update, matches, parse_list_params, parse_mongo_filter,
    parse_pipeline, render_pg_filter, render_pg_order, render_sqlite_filter, render_sqlite_order,
    run_pipeline,
};
use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::{Map, Value, json};

const MODEL: &str = r#"
name = "T"
[fields]
s = { type = "String", index = "text" }
n = "Number"
b = "Boolean"
d = "Date"
o = { type = "ObjectId", link = "T" }
tags = ["String"]
items = [{ k = "String", v = "Number" }]
addr = { city = "String", zip = "Number" }
any = "Mixed"
[perms]
all = "r"
"#;

fn model() -> Model {
    jxp_model::parse_model_toml("t", Path::new("t.toml"), MODEL).unwrap()
}

const KEYS: &[&str] = &[
    "s",
    "n",
    "b",
    "d",
    "o",
    "tags",
    "items",
    "items.k",
    "items.v",
    "addr",
    "addr.city",
    "any",
    "any.x",
    "_id",
    "_owner_id",
    "createdAt",
    "nope",
    "",
    "a.",
    ".b",
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$and",
    "$or",
    "$nor",
    "$not",
    "$exists",
    "$regex",
    "$options",
    "$elemMatch",
    "$size",
    "$all",
    "$text",
    "$search",
    "$type",
    "$mod",
    "$where",
    "$oid",
    "$date",
    "$match",
    "$sort",
    "$limit",
    "$skip",
    "$project",
    "$group",
    "$unwind",
    "$count",
    "$lookup",
    "$addFields",
    "$sum",
    "$avg",
    "$push",
    "from",
    "localField",
    "foreignField",
    "as",
    "path",
    "$set",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$rename",
    "$addToSet",
    "$pull",
    "$pop",
    "$currentDate",
    "$setOnInsert",
];

const STRINGS: &[&str] = &[
    "",
    "a",
    "x y",
    "$n",
    "$s",
    "t",
    "0123456789abcdef01234567",
    "2024-01-01T00:00:00Z",
    "((",
    "[a-",
    ".*",
    "\u{0}",
    "\"quoted\" OR NOT( *",
    "é漢字",
    "i",
    "-1",
    "1e400",
    "NaN",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-3i64..40).prop_map(|i| json!(i)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(STRINGS).prop_map(|s| json!(s)),
        "[a-z$.]{0,6}".prop_map(Value::String),
    ]
}

/// JSON built from the grammar's words, up to four levels deep.
fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

const FIELDS: &[&str] = &[
    "s",
    "n",
    "b",
    "d",
    "o",
    "tags",
    "items",
    "items.k",
    "items.v",
    "addr.city",
    "any",
    "any.x",
    "_id",
    "createdAt",
    "nope",
];

fn obj(kv: Vec<(String, Value)>) -> Value {
    Value::Object(kv.into_iter().collect())
}

/// What follows an operator: the shapes each takes, and sometimes anything at all.
fn operand(filter: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
    let scalars = prop::collection::vec(scalar(), 0..4).prop_map(Value::Array);
    prop_oneof![
        (
            prop::sample::select(&["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"][..]),
            scalar()
        )
            .prop_map(|(op, v)| json!({ op: v })),
        (prop::sample::select(&["$in", "$nin", "$all"][..]), scalars)
            .prop_map(|(op, v)| json!({ op: v })),
        any::<bool>().prop_map(|b| json!({"$exists": b})),
        (
            prop::sample::select(STRINGS),
            prop::sample::select(&["", "i", "x", "q"][..])
        )
            .prop_map(|(r, o)| json!({"$regex": r, "$options": o})),
        (0i64..4).prop_map(|n| json!({"$size": n})),
        filter.prop_map(|f| json!({"$elemMatch": f})),
        scalar().prop_map(|v| json!({"$not": {"$eq": v}})),
        value(),
    ]
}

/// Mongo-style filters, mostly well formed, so the parser's deeper paths are reached.
fn filter() -> BoxedStrategy<Value> {
    let leaf = prop::collection::vec((prop::sample::select(FIELDS), scalar()), 0..3)
        .prop_map(|kv| obj(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(
                (prop::sample::select(FIELDS), operand(inner.clone().boxed())),
                1..3
            )
            .prop_map(|kv| obj(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            (
                prop::sample::select(&["$and", "$or", "$nor"][..]),
                prop::collection::vec(inner, 0..3)
            )
                .prop_map(|(op, fs)| json!({ op: fs })),
        ]
    })
    .boxed()
}

fn stage() -> impl Strategy<Value = Value> {
    let field = || prop::sample::select(FIELDS);
    prop_oneof![
        filter().prop_map(|f| json!({"$match": f})),
        (field(), prop::sample::select(&[1, -1, 0][..])).prop_map(|(f, d)| json!({"$sort": {f: d}})),
        (-1i64..5).prop_map(|n| json!({"$limit": n})),
        (-1i64..5).prop_map(|n| json!({"$skip": n})),
        (field(), 0i64..2).prop_map(|(f, v)| json!({"$project": {f: v}})),
        (field(), field(), prop::sample::select(&["$sum", "$avg", "$min", "$max", "$push", "$first", "$bogus"][..]))
            .prop_map(|(g, f, acc)| json!({"$group": {"_id": format!("${g}"), "out": {acc: format!("${f}")}}})),
        field().prop_map(|f| json!({"$group": {"_id": null, "c": {"$sum": 1}, "f": format!("${f}")}})),
        field().prop_map(|f| json!({"$unwind": format!("${f}")})),
        Just(json!({"$count": "c"})),
        (field(), field()).prop_map(|(l, f)| json!({"$lookup": {"from": "t", "localField": l, "foreignField": f, "as": "j"}})),
        (field(), value()).prop_map(|(f, v)| json!({"$addFields": {f: v}})),
        value(),
    ]
}

fn docs() -> Vec<Map<String, Value>> {
    [
        json!({"_id": "0123456789abcdef01234567", "s": "a b", "n": 3, "b": true, "d": "2024-01-01T00:00:00.000Z",
               "tags": ["x", "y"], "items": [{"k": "a", "v": 1}], "addr": {"city": "t", "zip": 5}, "any": {"x": [1, "2"]}}),
        json!({"_id": "0123456789abcdef01234568", "s": null, "n": -1.5, "tags": [], "any": "text"}),
        json!({"_id": "0123456789abcdef01234569"}),
    ]
    .into_iter()
    .filter_map(|v| v.as_object().cloned())
    .collect()
}

/// A table shaped like the store's, with the documents above and the store's REGEXP.
fn database() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE t (rid INTEGER PRIMARY KEY, _id TEXT NOT NULL UNIQUE, doc BLOB NOT NULL,
             _owner_id TEXT, _deleted INTEGER NOT NULL DEFAULT 0, createdAt TEXT, updatedAt TEXT);",
    )
    .unwrap();
    conn.create_scalar_function(
        "regexp",
        2,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8,
        |ctx| {
            let pattern = ctx.get::<String>(0)?;
            let re = regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
            // As the store's REGEXP: SQLite may call it on a value that is not text (its AND
            // does not promise to skip the right side), which simply does not match.
            Ok(match ctx.get_raw(1) {
                rusqlite::types::ValueRef::Text(t) => {
                    re.is_match(std::str::from_utf8(t).unwrap_or_default())
                }
                _ => false,
            })
        },
    )
    .unwrap();
    for doc in docs() {
        conn.execute(
            "INSERT INTO t (_id, doc) VALUES (?1, jsonb(?2))",
            rusqlite::params![
                doc.get("_id").and_then(Value::as_str),
                serde_json::to_string(&doc).unwrap()
            ],
        )
        .unwrap();
    }
    conn
}

fn bind(p: &SqlParam) -> rusqlite::types::Value {
    match p {
        SqlParam::Null => rusqlite::types::Value::Null,
        SqlParam::Int(i) => rusqlite::types::Value::Integer(*i),
        SqlParam::Real(f) => rusqlite::types::Value::Real(*f),
        SqlParam::Text(s) => rusqlite::types::Value::Text(s.clone()),
    }
}

/// Runs what an accepted filter (and sort) renders to; SQLite must take it.
fn run_sql(conn: &Connection, filter: &Filter, sort: &[jxp_query::Sort]) {
    let mut q = SqlQuery::default();
    q.sql.push_str("SELECT _id FROM t WHERE ");
    render_sqlite_filter(filter, &mut q);
    render_sqlite_order(sort, &mut q);
    let params: Vec<rusqlite::types::Value> = q.params.iter().map(bind).collect();
    let mut stmt = conn
        .prepare(&q.sql)
        .unwrap_or_else(|e| panic!("{e}: {}", q.sql));
    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
        r.get::<_, String>(0)
    });
    // A user regex SQLite's function refuses is an error of the query, not of the SQL.
    if let Ok(rows) = rows {
        for row in rows {
            if let Err(e) = row {
                assert!(
                    e.to_string().contains("regex") || e.to_string().contains("Regex"),
                    "{e}: {}",
                    q.sql
                );
            }
        }
    }
    // PostgreSQL's rendering must not panic either (it runs in the store's own tests).
    let mut pg = SqlQuery::default();
    render_pg_filter(filter, &mut pg);
    render_pg_order(sort, &mut pg);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1500,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_mongo_filter_is_parsed_or_refused_and_what_is_accepted_runs(
        v in prop_oneof![filter(), value()]
    ) {
        let m = model();
        if let Ok(filter) = parse_mongo_filter(&m, &v) {
            for doc in docs() {
                let _ = matches(&filter, &doc);
            }
            run_sql(&database(), &filter, &[]);
        }
    }

    #[test]
    fn a_pipeline_is_parsed_or_refused_and_what_is_accepted_runs(
        stages in prop::collection::vec(stage(), 0..4)
    ) {
        let v = Value::Array(stages);
        if let Ok(stages) = parse_pipeline(&v) {
            let foreign: HashMap<String, Vec<Map<String, Value>>> =
                [("t".to_owned(), docs())].into_iter().collect();
            let mut budget = Budget::new(1 << 20, std::time::Duration::from_secs(5));
            let _ = run_pipeline(&stages, docs(), &foreign, 1000, &mut budget);
        }
    }

    #[test]
    fn an_update_is_parsed_or_refused_and_what_is_accepted_applies(
        v in prop_oneof![
            prop::collection::vec(
                (
                    prop::sample::select(&["$set", "$unset", "$inc", "$mul", "$min", "$max",
                        "$rename", "$push", "$addToSet", "$pull", "$pop", "$currentDate",
                        "$setOnInsert", "s", "$bogus"][..]),
                    prop::collection::vec((prop::sample::select(FIELDS), value()), 0..3)
                        .prop_map(|kv| obj(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
                ),
                0..3,
            )
            .prop_map(|kv| obj(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            value(),
        ]
    ) {
        if let Ok(update) = Update::parse(&v, &["password"]) {
            for mut doc in docs() {
                let _ = update.apply(&mut doc, false);
                let _ = update.apply(&mut doc, true);
            }
        }
    }

    #[test]
    fn a_list_query_string_is_parsed_or_refused_and_what_is_accepted_runs(
        pairs in prop::collection::vec(
            (
                prop_oneof![
                    prop::sample::select(&[
                        "filter[s]", "filter[n]", "filter[n][$gt]", "filter[n][$in]",
                        "filter[tags]", "filter[items.k]", "filter[addr.city][$regex]",
                        "filter[d][$lte]", "filter[o]", "filter[any.x]", "filter[nope]",
                        "filter[s][$bogus]", "filter[", "filter[]", "search[s]", "search[n]",
                        "search", "sort", "sort[n]", "sort[s]", "limit", "page", "fields",
                        "populate", "populate[o]", "autopopulate", "showDeleted", "count",
                    ][..]).prop_map(str::to_owned),
                    "[a-z\\[\\]$.]{0,10}",
                ],
                prop_oneof![
                    prop::sample::select(STRINGS).prop_map(str::to_owned),
                    prop::sample::select(&["1", "-1", "0", "100000000000000000000", "n", "-n",
                        "s,n", "true", "false", "o", "2024-01-01", "a,b,c"][..]).prop_map(str::to_owned),
                    ".{0,12}",
                ],
            ),
            0..6,
        )
    ) {
        let m = model();
        if let Ok(params) = parse_list_params(&m, &pairs) {
            let filter = params.filter.clone().and(params.search.clone());
            for doc in docs() {
                let _ = matches(&filter, &doc);
            }
            run_sql(&database(), &filter, &params.sort);
        }
    }
}

//! The in-memory matcher and the SQL renderings (SQLite always; PostgreSQL too when
//! `JXP_TEST_DATABASE_URL` names a server) must select the same documents for every filter: REST lists run the SQL, realtime delivery runs the matcher, and a document that
//! one shows and the other hides is a bug. Documents follow a small model (as validation
//! guarantees in the store, with fields missing or null at random); filters use every
//! operator and combinator, with values of every type, since `POST /query` lets a String field
//! be compared with a number and a Mixed-like value reach any path.
//!
//! This file holds the checks and the tests; `strategies` the model and the generators of
//! documents, filters and sorts; `databases` the SQLite and PostgreSQL tables they run on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code fails loudly.

mod databases;
mod groups;
mod strategies;

use std::collections::BTreeSet;

use jxp_query::{
    Filter, Op, Path, Sort, SqlQuery, matches, render_pg_order, render_sqlite_order, resolve_path,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::databases::{
    assert_sortable, database, load_pg, pg, pg_generated, pg_ids, sql_ids, sqlite_generated,
    with_ids,
};
use crate::strategies::{document, filter, leaf, model, sorts};

fn check(docs: &[Map<String, Value>], filters: &[Filter]) -> Result<(), TestCaseError> {
    if let Some(pg) = pg() {
        let pg = pg.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let by_pg = pg_ids(&pg, docs, filters);
        for (f, by_sql) in filters.iter().zip(by_pg) {
            let by_matcher: BTreeSet<String> = docs
                .iter()
                .filter(|d| matches(f, d))
                .filter_map(|d| d.get("_id").and_then(Value::as_str).map(str::to_owned))
                .collect();
            prop_assert_eq!(
                &by_matcher,
                &by_sql,
                "PostgreSQL: filter {:?}\ndocs {}",
                f,
                serde_json::to_string(docs).unwrap_or_default()
            );
        }
    }
    let conn = database(docs);
    for f in filters {
        let by_matcher: BTreeSet<String> = docs
            .iter()
            .filter(|d| matches(f, d))
            .filter_map(|d| d.get("_id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let by_sql = sql_ids(&conn, f);
        prop_assert_eq!(
            &by_matcher,
            &by_sql,
            "filter {:?}\ndocs {}",
            f,
            serde_json::to_string(docs).unwrap_or_default()
        );
    }
    Ok(())
}

/// Both databases order the documents the same way for `sort` (ties broken by `_id`).
fn check_order(docs: &[Map<String, Value>], sort: &[Sort]) -> Result<(), TestCaseError> {
    let Some(pg) = pg() else { return Ok(()) };
    let conn = database(docs);
    let mut q = SqlQuery {
        sql: "SELECT _id FROM t WHERE 1".into(),
        generated: Some(sqlite_generated()),
        ..SqlQuery::default()
    };
    render_sqlite_order(sort, &mut q);
    let mut stmt = conn.prepare(&q.sql).unwrap();
    let by_sqlite: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let pg = pg.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut q = SqlQuery {
        sql: "SELECT _id FROM t".into(),
        generated: Some(pg_generated()),
        ..SqlQuery::default()
    };
    render_pg_order(sort, &mut q);
    let by_pg: Vec<String> = pg.rt.block_on(async {
        load_pg(&pg, docs).await;
        assert_sortable(&pg).await;
        pg.client
            .query(&q.sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{e:?}: {}", q.sql))
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    prop_assert_eq!(
        &by_sqlite,
        &by_pg,
        "sort {:?}\ndocs {}",
        sort,
        serde_json::to_string(docs).unwrap_or_default()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn sort_orders_agree_on_both_databases(
        docs in prop::collection::vec(document(), 0..10),
        sort in sorts(),
    ) {
        check_order(&with_ids(docs), &sort)?;
    }

    #[test]
    fn single_conditions_agree(
        docs in prop::collection::vec(document(), 0..10),
        filters in prop::collection::vec(leaf(), 1..8),
    ) {
        check(&with_ids(docs), &filters)?;
    }

    #[test]
    fn combined_filters_agree(
        docs in prop::collection::vec(document(), 0..10),
        filters in prop::collection::vec(filter(), 1..6),
    ) {
        check(&with_ids(docs), &filters)?;
    }
}

/// Cases the generators found or that guard a specific rendering choice.
#[test]
fn known_cases_agree() {
    let m = model();
    let cond = |p: &str, op: Op, v: Value| Filter::cond(resolve_path(&m, p).unwrap().0, op, v);
    let docs = with_ids(vec![
        json!({"s": "abc", "n": 5, "obj": {"city": "a"}, "tags": ["x", null], "_deleted": false}),
        json!({"n": 9_007_199_254_740_993_i64, "obj": null, "tags": null, "_deleted": true}),
        json!({"s": "{\"city\":\"a\"}", "b": true, "_deleted": false}),
        json!({"_deleted": false}),
    ]
    .into_iter()
    .map(|v| v.as_object().cloned().unwrap())
    .collect());
    let filters = vec![
        // Text sorts above numbers in SQLite.
        cond("s", Op::Gt, json!(3)),
        cond("n", Op::Lt, json!("z")),
        // An object's JSON text is not a string.
        cond("obj", Op::Eq, json!("{\"city\":\"a\"}")),
        cond("obj", Op::Regex, json!("city")),
        cond("obj", Op::Gte, json!("")),
        cond("obj", Op::Eq, json!({"city": "a"})),
        // NOT over a missing value.
        Filter::Not(Box::new(cond("s", Op::Eq, json!("abc")))),
        Filter::Nor(vec![cond("n", Op::Gt, json!(1))]),
        // Nulls in $in / $nin.
        cond("s", Op::In, json!([null, "abc"])),
        cond("s", Op::Nin, json!([null, "x"])),
        // Large integers are compared exactly.
        cond("n", Op::Eq, json!(9_007_199_254_740_992_i64)),
        cond("n", Op::Gt, json!(9_007_199_254_740_992.0)),
        // A stored null array does not exist.
        cond("tags", Op::Exists, json!(true)),
        cond("obj.city", Op::Exists, json!(false)),
        // Columns hold one type.
        cond("_deleted", Op::Eq, json!("1")),
        cond("_deleted", Op::Lt, json!("a")),
        cond("createdAt", Op::Gt, json!(0)),
        cond("b", Op::Eq, json!(1)),
        // Whole-array operators see only arrays: a stored null is not an empty array.
        cond("tags", Op::Size, json!(0)),
        cond("tags", Op::Size, json!(2)),
        cond("tags", Op::All, json!([null])),
        cond("tags", Op::All, json!(["x", null])),
        cond("s", Op::All, json!(["abc"])),
        cond("s", Op::Size, json!(1)),
        Filter::ElemMatch {
            path: Path::new("tags", Some(0)),
            inner: Box::new(Filter::cond(Path::element(), Op::Exists, json!(false))),
        },
        Filter::Not(Box::new(Filter::ElemMatch {
            path: Path::new("tags", Some(0)),
            inner: Box::new(Filter::cond(Path::element(), Op::Eq, json!("x"))),
        })),
    ];
    check(&docs, &filters).unwrap();
}

/// A `$in` far beyond SQLite's 32,766 parameters travels as one parameter, and a wide `$or`
/// is nested so that SQLite's expression depth limit of 1,000 is not reached.
#[test]
fn huge_lists_and_wide_combinators_agree() {
    let m = model();
    let cond = |p: &str, op: Op, v: Value| Filter::cond(resolve_path(&m, p).unwrap().0, op, v);
    let docs = with_ids(
        vec![
            json!({"s": "abc", "n": 5, "tags": ["x"], "_deleted": false}),
            json!({"s": "v39999", "n": 39_999, "tags": ["v7"], "_deleted": false}),
            json!({"s": "zzz", "n": 1.5, "_deleted": true}),
        ]
        .into_iter()
        .map(|v| v.as_object().cloned().unwrap())
        .collect(),
    );
    let strings: Vec<Value> = (0..40_000).map(|i| json!(format!("v{i}"))).collect();
    let numbers: Vec<Value> = (0..40_000).map(Value::from).collect();
    let mut mixed = strings.clone();
    mixed.extend(numbers.iter().cloned());
    mixed.extend([json!(1.5), json!(null), json!({"city": "a"})]);
    let wide = |op: &str| -> Vec<Filter> {
        (0..990)
            .map(|i| cond(op, Op::Eq, json!(format!("v{i}"))))
            .collect()
    };
    let filters = vec![
        cond("s", Op::In, Value::Array(strings.clone())),
        cond("s", Op::Nin, Value::Array(strings)),
        cond("n", Op::In, Value::Array(numbers.clone())),
        cond("n", Op::Nin, Value::Array(numbers)),
        cond("n", Op::In, Value::Array(mixed.clone())),
        cond("tags", Op::In, Value::Array(mixed.clone())),
        cond("tags", Op::Nin, Value::Array(mixed)),
        Filter::Or(wide("s")),
        Filter::Nor(wide("s")),
        Filter::And(wide("tags")),
    ];
    check(&docs, &filters).unwrap();
}

//! `$match` + `$group` in SQL against the in-memory `$group`: for random documents (keys of
//! every declared kind, null or missing at random; numbers integer or fractional) and random
//! groupings, the rows the grouping's SQL answers decode to exactly the documents the
//! in-memory pipeline builds, in the same order, on SQLite and (when configured) PostgreSQL.
//! Fractions are quarters, so float totals are exact whatever order a database adds them in.
//! A value not of its field's declared kind makes decoding refuse (the caller then groups in
//! memory), never answer differently.

use std::collections::HashMap;

use jxp_query::{
    Budget, Cell, FieldKind, Filter, GroupField, Grouping, Path, PlainAcc, PlainKey,
    parse_pipeline, render_pg_group, render_sqlite_group, run_pipeline,
};
use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::databases::{database, load_pg, pg, pg_query, sqlite_params, with_ids};

/// Keys the documents may have: name, declared kind.
const FIELDS: &[(&str, FieldKind)] = &[
    ("k", FieldKind::Text),
    ("b", FieldKind::Bool),
    ("n", FieldKind::Number),
    ("m", FieldKind::Number),
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-5i64..5).prop_map(Value::from),
        (-40i64..40)
            .prop_filter("fractional", |q| q % 4 != 0)
            .prop_map(|q| json!(q as f64 / 4.0)),
        Just(json!(400_000_000_000_000_000i64)),
    ]
}

/// A value of a field's kind, null, or (with `odd`) of another kind.
fn value(kind: FieldKind, odd: bool) -> BoxedStrategy<Option<Value>> {
    let typed = match kind {
        FieldKind::Text => {
            prop_oneof![Just(json!("a")), Just(json!("b")), Just(json!("Ä"))].boxed()
        }
        FieldKind::Bool => any::<bool>().prop_map(Value::from).boxed(),
        FieldKind::Number => number().boxed(),
    };
    let mut options = vec![
        (4, typed.prop_map(Some).boxed()),
        (1, Just(Some(Value::Null)).boxed()),
        (1, Just(None).boxed()),
    ];
    if odd {
        options.push((1, Just(Some(json!("x"))).boxed()));
        options.push((1, Just(Some(json!(2.0))).boxed()));
        // Fits SQLite's integers but not PostgreSQL's 18-digit check.
        options.push((1, Just(Some(json!(i64::MAX))).boxed()));
    }
    prop::strategy::Union::new_weighted(options).boxed()
}

fn document(odd: bool) -> impl Strategy<Value = Map<String, Value>> {
    FIELDS
        .iter()
        .map(|(_, kind)| value(*kind, odd))
        .collect::<Vec<_>>()
        .prop_map(|values| {
            FIELDS
                .iter()
                .zip(values)
                .filter_map(|((name, _), v)| v.map(|v| ((*name).to_owned(), v)))
                .collect()
        })
}

fn field(name: &str) -> GroupField {
    let kind = FIELDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
        .unwrap();
    GroupField {
        path: Path::plain(name),
        kind,
    }
}

/// A grouping and the `$group` stage it stands for.
fn grouping() -> impl Strategy<Value = (Grouping, Value)> {
    let key = prop_oneof![
        Just((PlainKey::Null, Value::Null)),
        prop::sample::select(vec!["k", "b", "n"])
            .prop_map(|f| (PlainKey::Field(field(f)), json!(format!("${f}")))),
        Just((
            PlainKey::Object(vec![("x".into(), field("k")), ("y".into(), field("b"))]),
            json!({"x": "$k", "y": "$b"})
        )),
    ];
    let acc = prop_oneof![
        Just((PlainAcc::Count(1), json!({"$count": {}}))),
        (-3i64..4).prop_map(|c| (PlainAcc::Count(c), json!({"$sum": c}))),
        prop::sample::select(vec!["n", "m"])
            .prop_map(|f| (PlainAcc::Sum(field(f)), json!({"$sum": format!("${f}")}))),
        prop::sample::select(vec!["n", "m"])
            .prop_map(|f| (PlainAcc::Avg(field(f)), json!({"$avg": format!("${f}")}))),
        prop::sample::select(vec!["n", "m"])
            .prop_map(|f| (PlainAcc::Min(field(f)), json!({"$min": format!("${f}")}))),
        prop::sample::select(vec!["n", "m"])
            .prop_map(|f| (PlainAcc::Max(field(f)), json!({"$max": format!("${f}")}))),
    ];
    (key, prop::collection::vec(acc, 0..4)).prop_map(|((key, key_json), accs)| {
        let mut stage = Map::new();
        stage.insert("_id".into(), key_json);
        let mut plain = Vec::new();
        for (i, (acc, acc_json)) in accs.into_iter().enumerate() {
            stage.insert(format!("a{i}"), acc_json);
            plain.push((format!("a{i}"), acc));
        }
        let g = Grouping {
            filter: Filter::All,
            key,
            accs: plain,
        };
        (g, json!([{"$group": stage}]))
    })
}

fn in_memory(docs: &[Map<String, Value>], pipeline: &Value) -> Vec<Map<String, Value>> {
    let stages = parse_pipeline(pipeline).unwrap();
    let mut budget = Budget::unlimited();
    run_pipeline(
        &stages,
        docs.to_vec(),
        &HashMap::new(),
        usize::MAX,
        &mut budget,
    )
    .unwrap()
}

fn sqlite_rows(conn: &Connection, g: &Grouping) -> Vec<Vec<Cell>> {
    let q = render_sqlite_group("t", g);
    let params = sqlite_params(&q);
    let mut stmt = conn
        .prepare(&q.sql)
        .unwrap_or_else(|e| panic!("{e}: {}", q.sql));
    let width = stmt.column_count();
    stmt.query_map(rusqlite::params_from_iter(params), |r| {
        (0..width)
            .map(|i| {
                Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                    rusqlite::types::Value::Integer(n) => Cell::Int(n),
                    rusqlite::types::Value::Real(f) => Cell::Real(f),
                    rusqlite::types::Value::Text(s) => Cell::Text(s),
                    _ => Cell::Null,
                })
            })
            .collect()
    })
    .unwrap_or_else(|e| panic!("{e}: {}", q.sql))
    .collect::<Result<_, _>>()
    .unwrap_or_else(|e| panic!("{e}: {}", q.sql))
}

fn pg_rows(docs: &[Map<String, Value>], g: &Grouping) -> Option<Vec<Vec<Cell>>> {
    let pg = pg()?
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Some(pg.rt.block_on(async {
        load_pg(&pg, docs).await;
        let q = render_pg_group("t", g);
        let rows = pg_query(&pg, &q).await;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, Option<String>>(i).map_or(Cell::Null, Cell::Text))
                    .collect()
            })
            .collect()
    }))
}

fn check(
    docs: Vec<Map<String, Value>>,
    g: &Grouping,
    pipeline: &Value,
    odd: bool,
) -> Result<(), TestCaseError> {
    let docs = with_ids(docs);
    let expected = in_memory(&docs, pipeline);
    let conn = database(&docs);
    let mut answers = vec![("SQLite", sqlite_rows(&conn, g))];
    if let Some(rows) = pg_rows(&docs, g) {
        answers.push(("PostgreSQL", rows));
    }
    for (db, rows) in answers {
        match g.decode(&rows) {
            Some(got) => prop_assert_eq!(
                &got,
                &expected,
                "{}: {} over {}",
                db,
                pipeline,
                Value::from(docs.clone())
            ),
            None => prop_assert!(odd, "{db} refused well-typed data: {pipeline}"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn sql_groups_agree_with_memory(
        docs in prop::collection::vec(document(false), 0..12),
        (g, pipeline) in grouping(),
    ) {
        check(docs, &g, &pipeline, false)?;
    }

    #[test]
    fn sql_groups_refuse_or_agree_on_odd_data(
        docs in prop::collection::vec(document(true), 0..8),
        (g, pipeline) in grouping(),
    ) {
        check(docs, &g, &pipeline, true)?;
    }
}

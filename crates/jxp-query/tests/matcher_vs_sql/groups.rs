//! `$match` + `$group` in SQL against the in-memory `$group`: for random documents (keys of
//! every declared kind, null or missing at random; numbers integer or fractional) and random
//! groupings, the rows the grouping's SQL answers decode to exactly the documents the
//! in-memory pipeline builds, in the same order, on SQLite and (when configured) PostgreSQL.
//! Fractions are quarters, so float totals are exact whatever order a database adds them in.
//! A value not of its field's declared kind makes decoding refuse (the caller then groups in
//! memory), never answer differently.
//!
//! After the `$group` come random stages (`$sort` on the key, a count or another output
//! field, `$skip`, `$limit`, `$count`): those the grouping takes join its statement, the rest
//! run in memory over what it answered, and the whole must equal the in-memory pipeline. A
//! refused tail is retried as the caller does: the grouping alone, its tail in memory.
//!
//! The same grouping counted in a hash table over SQLite's scan of its fields (`HashGroups`,
//! what the SQLite store runs first), whole and as two `rid` ranges merged, must answer the
//! same rows' meaning too.

use std::collections::HashMap;

use jxp_query::{
    Budget, Cell, FieldKind, Filter, GroupField, GroupTail, Grouping, HashGroups, Path, PlainAcc,
    PlainKey, Stage, parse_pipeline, render_pg_group, render_sqlite_group,
    render_sqlite_group_scan, run_pipeline,
};
use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::databases::{database, load_pg, pg, pg_generated, pg_query, sqlite_params, with_ids};

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
    (key, prop::collection::vec(acc, 0..4), after()).prop_map(|((key, key_json), accs, after)| {
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
            tail: GroupTail::default(),
        };
        let mut pipeline = vec![json!({"$group": stage})];
        pipeline.extend(after);
        (g, Value::from(pipeline))
    })
}

/// Stages after the `$group`: maybe a `$sort` (on the key, a field of an object key, or an
/// output field), some `$skip`s and `$limit`s, maybe a `$count`.
fn after() -> impl Strategy<Value = Vec<Value>> {
    let on = prop::sample::select(vec!["_id", "_id.x", "_id.y", "a0", "a1", "a2"]);
    let sort = prop::option::of(prop::collection::vec((on, any::<bool>()), 1..3).prop_map(
        |keys| {
            let mut spec = Map::new();
            for (k, desc) in keys {
                spec.insert(k.to_owned(), json!(if desc { -1 } else { 1 }));
            }
            json!({ "$sort": spec })
        },
    ));
    let window = prop::collection::vec(
        prop_oneof![
            (0u64..4).prop_map(|n| json!({ "$skip": n })),
            (1u64..4).prop_map(|n| json!({ "$limit": n })),
        ],
        0..3,
    );
    let count = prop::option::of(Just(json!({"$count": "groups"})));
    (sort, window, count)
        .prop_map(|(sort, window, count)| sort.into_iter().chain(window).chain(count).collect())
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

fn run_in_memory(stages: &[Stage], docs: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    run_pipeline(
        stages,
        docs,
        &HashMap::new(),
        usize::MAX,
        &mut Budget::unlimited(),
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

/// The grouping's rows counted in a hash table over SQLite's scan of its fields; with
/// `split`, as two `rid` ranges counted apart and merged.
fn hashed_rows(conn: &Connection, g: &Grouping, split: bool) -> Vec<Vec<Cell>> {
    let ranges = if split {
        vec![Some((i64::MIN, 3)), Some((3, i64::MAX))]
    } else {
        vec![None]
    };
    let fields = g.scan_paths().len();
    let mut all: Option<HashGroups> = None;
    for range in ranges {
        let q = render_sqlite_group_scan("t", g, range);
        let params = sqlite_params(&q);
        let mut stmt = conn
            .prepare(&q.sql)
            .unwrap_or_else(|e| panic!("{e}: {}", q.sql));
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).unwrap();
        let mut groups = HashGroups::new(g.clone(), usize::MAX);
        while let Some(row) = rows.next().unwrap() {
            let id = row.get_ref(0).unwrap().as_str().unwrap();
            let texts: Vec<Option<&str>> = (1..=fields)
                .map(|i| row.get_ref(i).unwrap().as_str_or_null().unwrap())
                .collect();
            groups.push_texts(id, &texts).unwrap();
        }
        match all.as_mut() {
            None => all = Some(groups),
            Some(all) => all.merge(groups).unwrap(),
        }
    }
    all.unwrap().finish()
}

/// The grouping's rows on PostgreSQL, the documents loaded under the same lock (the tests
/// share one table), read through the generated columns of `k`, `n` and `m` when
/// `generated`: only where the documents hold nothing of another kind there, as the store
/// reads them only where its check constraint says so.
fn pg_rows(docs: &[Map<String, Value>], g: &Grouping, generated: bool) -> Vec<Vec<Cell>> {
    let pg = pg()
        .unwrap()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    pg.rt.block_on(async {
        load_pg(&pg, docs).await;
        let q = render_pg_group("t", g, generated.then(pg_generated));
        let rows = pg_query(&pg, &q).await;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, Option<String>>(i).map_or(Cell::Null, Cell::Text))
                    .collect()
            })
            .collect()
    })
}

/// What the caller answers from one database: the grouping with the tail it takes, then the
/// stages it does not take in memory; a refused tail retried without it; `None` when the
/// data check refuses the grouping itself. `Err` when well-typed data was refused.
fn answer(
    rows: &dyn Fn(&Grouping) -> Vec<Vec<Cell>>,
    g: &Grouping,
    stages: &[Stage],
) -> Option<Vec<Map<String, Value>>> {
    let mut with_tail = g.clone();
    let taken = with_tail.absorb(&stages[1..]);
    if let Some(got) = with_tail.decode(&rows(&with_tail)) {
        return Some(run_in_memory(&stages[1 + taken..], got));
    }
    let got = g.decode(&rows(g))?;
    Some(run_in_memory(&stages[1..], got))
}

/// Whether every document holds, in each field with a generated column (`k`, `n`, `m`), a
/// value of the column's kind, null, or nothing: what its check constraint asks.
fn fits_the_columns(docs: &[Map<String, Value>]) -> bool {
    docs.iter().all(|d| {
        FIELDS
            .iter()
            .all(|(name, kind)| match (d.get(*name), kind) {
                (None | Some(Value::Null), _) | (Some(Value::String(_)), FieldKind::Text) => true,
                (Some(Value::Number(_)), FieldKind::Number) => true,
                // `b` has no column: it is read from the document.
                (Some(_), FieldKind::Bool) => true,
                _ => false,
            })
    })
}

fn check(
    docs: Vec<Map<String, Value>>,
    g: &Grouping,
    pipeline: &Value,
    odd: bool,
) -> Result<(), TestCaseError> {
    let docs = with_ids(docs);
    let expected = in_memory(&docs, pipeline);
    let stages = parse_pipeline(pipeline).unwrap();
    let conn = database(&docs);
    let mut answers = vec![
        ("SQLite", answer(&|g| sqlite_rows(&conn, g), g, &stages)),
        (
            "SQLite hashed",
            answer(&|g| hashed_rows(&conn, g, false), g, &stages),
        ),
        (
            "SQLite hashed in two ranges",
            answer(&|g| hashed_rows(&conn, g, true), g, &stages),
        ),
    ];
    if pg().is_some() {
        answers.push((
            "PostgreSQL",
            answer(&|g| pg_rows(&docs, g, false), g, &stages),
        ));
        // The store reads the columns only where their check constraints hold: odd data
        // goes through them too when it holds only numbers (whole floats and long integers
        // among them) and text where the columns say so.
        if !odd || fits_the_columns(&docs) {
            answers.push((
                "PostgreSQL, generated columns",
                answer(&|g| pg_rows(&docs, g, true), g, &stages),
            ));
        }
    }
    for (db, got) in answers {
        match got {
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

/// A value the data check refuses, in a group outside the window the tail keeps, still
/// refuses the window: in memory `2.0` joins the group of `2`, which SQL keeps apart.
#[test]
fn a_window_is_refused_for_odd_data_outside_it() {
    let docs: Vec<Map<String, Value>> = [json!({"n": 3}), json!({"n": 2}), json!({"n": 2.0})]
        .into_iter()
        .filter_map(|d| d.as_object().cloned())
        .collect();
    let g = Grouping {
        filter: Filter::All,
        key: PlainKey::Field(field("n")),
        accs: vec![("a0".into(), PlainAcc::Count(1))],
        tail: GroupTail::default(),
    };
    for after in [
        json!([{"$skip": 1}, {"$limit": 1}]),
        json!([{"$sort": {"a0": -1}}, {"$limit": 1}]),
        json!([{"$skip": 1}, {"$count": "groups"}]),
    ] {
        let mut pipeline = vec![json!({"$group": {"_id": "$n", "a0": {"$count": {}}}})];
        pipeline.extend(after.as_array().cloned().unwrap_or_default());
        check(docs.clone(), &g, &Value::from(pipeline), true).unwrap();
    }
}

/// Read beside `m`'s `int8` column, a number that column does not hold is a float or an
/// integer of more than 18 digits. The data check must refuse the long integers: summed or
/// compared as floats they would answer a float where memory answers an integer.
#[test]
fn long_integers_beside_an_integer_column_are_refused_or_agree() {
    let long = [
        json!(i64::MAX),
        json!(-1_000_000_000_000_000_000i64),
        json!(1_000_000_000_000_000_000i64),
    ];
    for value in long {
        for docs in [
            vec![json!({"m": value})],
            vec![json!({"m": 1}), json!({"m": value})],
        ] {
            let docs: Vec<Map<String, Value>> = docs
                .into_iter()
                .filter_map(|d| d.as_object().cloned())
                .collect();
            for (op, acc) in [
                ("$sum", PlainAcc::Sum(field("m"))),
                ("$min", PlainAcc::Min(field("m"))),
                ("$max", PlainAcc::Max(field("m"))),
            ] {
                let g = Grouping {
                    filter: Filter::All,
                    key: PlainKey::Null,
                    accs: vec![("a0".into(), acc)],
                    tail: GroupTail::default(),
                };
                let pipeline = json!([{"$group": {"_id": null, "a0": {op: "$m"}}}]);
                check(docs.clone(), &g, &pipeline, true).unwrap();
            }
        }
    }
}

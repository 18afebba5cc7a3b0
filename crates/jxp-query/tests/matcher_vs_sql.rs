//! The in-memory matcher and the SQL renderings (SQLite always; PostgreSQL too when
//! `JXP_TEST_DATABASE_URL` names a server) must select the same documents for every filter: REST lists run the SQL, realtime delivery runs the matcher, and a document that
//! one shows and the other hides is a bug. Documents follow a small model (as validation
//! guarantees in the store, with fields missing or null at random); filters use every
//! operator and combinator, with values of every type, since `POST /query` lets a String field
//! be compared with a number and a Mixed-like value reach any path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code fails loudly.

use std::collections::BTreeSet;
use std::sync::Arc;

use jxp_model::{Field, FieldKind, FieldOptions, Model, ModelOptions, Perms, ScalarType};
use jxp_query::{
    Filter, Op, PG_FUNCTIONS, Path, Sort, SortDir, SqlParam, SqlQuery, matches, render_pg_filter,
    render_pg_order, render_sqlite_filter, render_sqlite_order, resolve_path,
};
use proptest::prelude::*;
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use serde_json::{Map, Value, json};

fn field(name: &str, kind: FieldKind) -> Field {
    Field {
        name: name.into(),
        kind,
        options: FieldOptions::default(),
    }
}

fn model() -> Model {
    let scalar = |name: &str, t| field(name, FieldKind::Scalar(t));
    Model {
        slug: "t".into(),
        name: "T".into(),
        fields: vec![
            scalar("s", ScalarType::String),
            scalar("n", ScalarType::Number),
            scalar("b", ScalarType::Boolean),
            scalar("d", ScalarType::Date),
            field(
                "tags",
                FieldKind::Array(Box::new(scalar("tags", ScalarType::String))),
            ),
            field(
                "items",
                FieldKind::Array(Box::new(field(
                    "items",
                    FieldKind::Object(vec![
                        scalar("k", ScalarType::String),
                        scalar("v", ScalarType::Number),
                    ]),
                ))),
            ),
            field(
                "obj",
                FieldKind::Object(vec![
                    scalar("city", ScalarType::String),
                    scalar("zip", ScalarType::Number),
                ]),
            ),
        ],
        perms: Perms::default(),
        options: ModelOptions::default(),
        builtin: false,
    }
}

/// The paths a filter may name, system fields (real columns in the store) included.
const PATHS: &[&str] = &[
    "s",
    "n",
    "b",
    "d",
    "tags",
    "obj",
    "obj.city",
    "obj.zip",
    "items",
    "items.k",
    "items.v",
    "_id",
    "id",
    "_deleted",
    "createdAt",
    "_owner_id",
    "__v",
];

/// Strings chosen to collide with each other, with dates, with ids and with JSON text.
const STRINGS: &[&str] = &[
    "",
    "a",
    "A",
    "ab",
    "Foo",
    "foo",
    "b",
    "5",
    "1",
    "true",
    "é",
    "É",
    "{\"city\":\"a\"}",
    "[\"a\"]",
    "[1]",
    "2020-01-01T00:00:00.000Z",
    "2021-06-01T12:00:00.000Z",
    "000000000000000000000001",
    "a\nb",
    "x\nfoo\nB",
];

const DATES: &[&str] = &[
    "2020-01-01T00:00:00.000Z",
    "2020-06-01T00:00:00.000Z",
    "2021-06-01T12:00:00.000Z",
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..4).prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!(-0.5)),
        Just(json!(2.0)),
        Just(json!(9_007_199_254_740_993_i64)),
        Just(json!(9_007_199_254_740_992_i64)),
        Just(json!(9_007_199_254_740_992.0)),
        Just(json!(1e20)),
    ]
}

fn string() -> impl Strategy<Value = Value> {
    prop::sample::select(STRINGS).prop_map(Value::from)
}

/// A field value as validation lets it be stored: its type, null, or absent (`None`).
fn maybe(v: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        5 => v.prop_map(Some),
    ]
}

fn document() -> impl Strategy<Value = Map<String, Value>> {
    let obj = (maybe(string()), maybe(number())).prop_map(|(city, zip)| {
        let mut o = Map::new();
        if let Some(c) = city {
            o.insert("city".into(), c);
        }
        if let Some(z) = zip {
            o.insert("zip".into(), z);
        }
        Value::Object(o)
    });
    let tags = prop::collection::vec(prop_oneof![6 => string(), 1 => Just(Value::Null)], 0..4)
        .prop_map(Value::Array);
    // Elements as validation stores them, plus the odd null or bare string that an element
    // query must not trip over.
    let item = prop_oneof![
        6 => (maybe(string()), maybe(number())).prop_map(|(k, v)| {
            let mut o = Map::new();
            if let Some(k) = k {
                o.insert("k".into(), k);
            }
            if let Some(v) = v {
                o.insert("v".into(), v);
            }
            Value::Object(o)
        }),
        1 => Just(Value::Null),
        1 => string(),
    ];
    let items = prop::collection::vec(item, 0..4).prop_map(Value::Array);
    (
        (
            maybe(string()),
            maybe(number()),
            maybe(any::<bool>().prop_map(Value::from)),
            maybe(prop::sample::select(DATES).prop_map(Value::from)),
        ),
        (maybe(tags), maybe(obj), maybe(items)),
        (
            any::<bool>(),
            prop::sample::select(DATES),
            prop::option::of(prop::sample::select(
                &["000000000000000000000001", "a1"][..],
            )),
            0i64..3,
        ),
    )
        .prop_map(
            |((s, n, b, d), (tags, obj, items), (deleted, created, owner, v))| {
                let mut doc = Map::new();
                for (k, v) in [
                    ("s", s),
                    ("n", n),
                    ("b", b),
                    ("d", d),
                    ("tags", tags),
                    ("obj", obj),
                    ("items", items),
                ] {
                    if let Some(v) = v {
                        doc.insert(k.into(), v);
                    }
                }
                doc.insert("_deleted".into(), Value::Bool(deleted));
                doc.insert("createdAt".into(), Value::from(created));
                doc.insert("updatedAt".into(), Value::from(created));
                doc.insert("__v".into(), Value::from(v));
                if let Some(o) = owner {
                    doc.insert("_owner_id".into(), Value::from(o));
                }
                doc
            },
        )
}

/// A filter value of any type, containers included.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => string(),
        3 => number(),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => prop::sample::select(DATES).prop_map(Value::from),
        1 => prop_oneof![
            Just(json!({"city": "a"})),
            Just(json!({"city": "a", "zip": 1})),
            Just(json!({"zip": 1, "city": "a"})),
            Just(json!(["a"])),
            Just(json!([])),
        ],
    ]
}

fn pattern() -> impl Strategy<Value = Value> {
    prop::sample::select(
        &[
            "a",
            "(?i)a",
            "^f",
            "o$",
            r"\d",
            r"\{",
            "(?i)é",
            "(?i)foo",
            "^$",
            "city",
            "(?i)2020",
            "1",
            "a.b",
            "(?s)a.b",
            "^foo",
            "(?m)^foo",
            "(?m)b$",
            "(?ims)^B$",
            "[^a]b",
            "(?x) f o",
        ][..],
    )
    .prop_map(Value::from)
}

fn condition() -> impl Strategy<Value = Filter> {
    let m = Arc::new(model());
    let op = prop_oneof![
        value().prop_map(|v| (Op::Eq, v)),
        value().prop_map(|v| (Op::Ne, v)),
        value().prop_map(|v| (Op::Gt, v)),
        value().prop_map(|v| (Op::Gte, v)),
        value().prop_map(|v| (Op::Lt, v)),
        value().prop_map(|v| (Op::Lte, v)),
        prop::collection::vec(value(), 0..4).prop_map(|v| (Op::In, Value::Array(v))),
        prop::collection::vec(value(), 0..4).prop_map(|v| (Op::Nin, Value::Array(v))),
        any::<bool>().prop_map(|b| (Op::Exists, Value::Bool(b))),
        pattern().prop_map(|p| (Op::Regex, p)),
        size().prop_map(|n| (Op::Size, n)),
        prop::collection::vec(value(), 0..4).prop_map(|v| (Op::All, Value::Array(v))),
    ];
    (prop::sample::select(PATHS), op).prop_map(move |(path, (op, value))| {
        let (path, _) = resolve_path(&m, path).expect("the test paths are in the model");
        Filter::cond(path, op, value)
    })
}

/// A `$size` argument: mostly valid, sometimes one the parser would refuse.
fn size() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (0u64..5).prop_map(Value::from),
        1 => Just(json!(-1)),
        1 => Just(json!(1.5)),
        1 => Just(json!("2")),
    ]
}

/// The element-level operators (every one but the whole-array ones), as `$elemMatch` holds.
fn elem_op() -> BoxedStrategy<(Op, Value)> {
    prop_oneof![
        value().prop_map(|v| (Op::Eq, v)),
        value().prop_map(|v| (Op::Ne, v)),
        value().prop_map(|v| (Op::Gt, v)),
        value().prop_map(|v| (Op::Gte, v)),
        value().prop_map(|v| (Op::Lt, v)),
        value().prop_map(|v| (Op::Lte, v)),
        prop::collection::vec(value(), 0..4).prop_map(|v| (Op::In, Value::Array(v))),
        prop::collection::vec(value(), 0..4).prop_map(|v| (Op::Nin, Value::Array(v))),
        any::<bool>().prop_map(|b| (Op::Exists, Value::Bool(b))),
        pattern().prop_map(|p| (Op::Regex, p)),
    ]
    .boxed()
}

/// Combinations of inner conditions, as `$elemMatch` may hold them.
fn combine(leaf: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Nor),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
    .boxed()
}

/// `$elemMatch` on the array of values, on the array of sub-documents (inner paths relative
/// to the element, a system name and a missing field among them), and on fields that are not
/// arrays at all, which must match nothing.
fn elem_match() -> BoxedStrategy<Filter> {
    let on_values = combine(
        elem_op()
            .prop_map(|(op, v)| Filter::cond(Path::element(), op, v))
            .boxed(),
    );
    let on_docs = combine(
        (
            prop::sample::select(&["k", "v", "_id", "zz"][..]),
            elem_op(),
        )
            .prop_map(|(p, (op, v))| Filter::cond(Path::plain(p), op, v))
            .boxed(),
    );
    prop_oneof![
        3 => on_values.prop_map(|inner| Filter::ElemMatch {
            path: Path::new("tags", Some(0)),
            inner: Box::new(inner),
        }),
        3 => on_docs.prop_map(|inner| Filter::ElemMatch {
            path: Path::new("items", Some(0)),
            inner: Box::new(inner),
        }),
        1 => (prop::sample::select(&["s", "obj", "n"][..]), prop_oneof![
            Just(Filter::All),
            elem_op().prop_map(|(op, v)| Filter::cond(Path::element(), op, v)),
        ])
            .prop_map(|(p, inner)| Filter::ElemMatch {
                path: Path::plain(p),
                inner: Box::new(inner),
            }),
    ]
    .boxed()
}

/// A single condition or `$elemMatch`.
fn leaf() -> BoxedStrategy<Filter> {
    prop_oneof![4 => condition().boxed(), 1 => elem_match()].boxed()
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Nor),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// A table shaped like the store's (documents as JSONB), with the store's REGEXP.
fn database(docs: &[Map<String, Value>]) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE t (
             rid INTEGER PRIMARY KEY,
             _id TEXT NOT NULL UNIQUE,
             doc BLOB NOT NULL,
             _owner_id TEXT,
             _deleted INTEGER NOT NULL DEFAULT 0,
             createdAt TEXT,
             updatedAt TEXT
         );
         CREATE INDEX iy_t__n ON t (json_extract(doc, '$.n'), _deleted);
         CREATE INDEX iy_t__s ON t (json_extract(doc, '$.s'), _deleted);",
    )
    .unwrap();
    conn.create_scalar_function(
        "regexp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let re: Arc<regex::Regex> = ctx.get_or_create_aux(
                0,
                |vr| -> Result<_, Box<dyn std::error::Error + Send + Sync + 'static>> {
                    Ok(regex::RegexBuilder::new(vr.as_str()?)
                        .size_limit(1 << 20)
                        .build()?)
                },
            )?;
            let text = match ctx.get_raw(1) {
                rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or_default(),
                _ => return Ok(false),
            };
            Ok(re.is_match(text))
        },
    )
    .unwrap();
    for doc in docs {
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        conn.execute(
            "INSERT INTO t (_id, doc, _owner_id, _deleted, createdAt, updatedAt)
             VALUES (?1, jsonb(?2), ?3, ?4, ?5, ?6)",
            rusqlite::params![
                text("_id"),
                serde_json::to_string(doc).unwrap(),
                text("_owner_id"),
                doc.get("_deleted")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                text("createdAt"),
                text("updatedAt"),
            ],
        )
        .unwrap();
    }
    conn
}

fn sql_ids(conn: &Connection, filter: &Filter) -> BTreeSet<String> {
    let mut q = SqlQuery {
        sql: "SELECT _id FROM t WHERE ".into(),
        params: Vec::new(),
    };
    render_sqlite_filter(filter, &mut q);
    let params: Vec<rusqlite::types::Value> = q
        .params
        .iter()
        .map(|p| match p {
            SqlParam::Null => rusqlite::types::Value::Null,
            SqlParam::Int(i) => rusqlite::types::Value::Integer(*i),
            SqlParam::Real(f) => rusqlite::types::Value::Real(*f),
            SqlParam::Text(s) => rusqlite::types::Value::Text(s.clone()),
        })
        .collect();
    let mut stmt = conn
        .prepare(&q.sql)
        .unwrap_or_else(|e| panic!("{e}: {}", q.sql));
    stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}: {}", q.sql))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {}", q.sql))
}

fn with_ids(docs: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    docs.into_iter()
        .enumerate()
        .map(|(i, mut d)| {
            d.insert("_id".into(), Value::from(format!("{:024x}", i + 1)));
            d
        })
        .collect()
}

/// A PostgreSQL connection with a table shaped like the store's, in a schema of its own, or
/// `None` when no server is configured. Cases take turns on it.
struct Pg {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

fn pg() -> Option<&'static std::sync::Mutex<Pg>> {
    static PG: std::sync::OnceLock<Option<std::sync::Mutex<Pg>>> = std::sync::OnceLock::new();
    PG.get_or_init(|| {
        let url = std::env::var("JXP_TEST_DATABASE_URL").ok()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let schema = format!(
                "mvs_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            );
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA {schema}; SET search_path = {schema};
                     {PG_FUNCTIONS}
                     CREATE TABLE t (
                         rid bigserial PRIMARY KEY,
                         _id text COLLATE \"C\" NOT NULL UNIQUE,
                         doc json NOT NULL,
                         _owner_id text COLLATE \"C\",
                         _deleted boolean NOT NULL DEFAULT false,
                         createdAt text COLLATE \"C\",
                         updatedAt text COLLATE \"C\"
                     );
                     CREATE INDEX ix_t__s ON t (((doc->>'s')) COLLATE \"C\");"
                ))
                .await
                .unwrap();
            client
        });
        Some(std::sync::Mutex::new(Pg { rt, client }))
    })
    .as_ref()
}

/// Replaces the rows of the PostgreSQL table with `docs`.
async fn load_pg(pg: &Pg, docs: &[Map<String, Value>]) {
    pg.client.batch_execute("TRUNCATE t").await.unwrap();
    for doc in docs {
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        pg.client
            .execute(
                "INSERT INTO t (_id, doc, _owner_id, _deleted, createdAt, updatedAt)
                     VALUES ($1, $2::text::json, $3, $4, $5, $6)",
                &[
                    &text("_id"),
                    &serde_json::to_string(doc).unwrap(),
                    &text("_owner_id"),
                    &doc.get("_deleted")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    &text("createdAt"),
                    &text("updatedAt"),
                ],
            )
            .await
            .unwrap();
    }
}

/// The ids each filter selects on PostgreSQL, after loading `docs` into the table.
fn pg_ids(pg: &Pg, docs: &[Map<String, Value>], filters: &[Filter]) -> Vec<BTreeSet<String>> {
    pg.rt.block_on(async {
        load_pg(pg, docs).await;
        let mut out = Vec::new();
        for f in filters {
            let mut q = SqlQuery {
                sql: "SELECT _id FROM t WHERE ".into(),
                params: Vec::new(),
            };
            render_pg_filter(f, &mut q);
            let params: Vec<Option<String>> = q.params.iter().map(SqlParam::to_pg_text).collect();
            let rows = pg
                .client
                .query_raw(&q.sql, params.iter())
                .await
                .unwrap_or_else(|e| panic!("{e:?}: {}", q.sql));
            use futures_util::TryStreamExt;
            let ids: Vec<tokio_postgres::Row> = rows
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("{e:?}: {}", q.sql));
            out.push(ids.iter().map(|r| r.get::<_, String>(0)).collect());
        }
        out
    })
}

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

/// Sort keys on any path, system columns and arrays included, either way.
fn sorts() -> impl Strategy<Value = Vec<Sort>> {
    let m = Arc::new(model());
    prop::collection::vec(
        (prop::sample::select(PATHS), any::<bool>()).prop_map(move |(path, asc)| Sort {
            path: resolve_path(&m, path).unwrap().0,
            dir: if asc { SortDir::Asc } else { SortDir::Desc },
        }),
        1..3,
    )
}

/// Both databases order the documents the same way for `sort` (ties broken by `_id`).
fn check_order(docs: &[Map<String, Value>], sort: &[Sort]) -> Result<(), TestCaseError> {
    let Some(pg) = pg() else { return Ok(()) };
    let conn = database(docs);
    let mut q = SqlQuery {
        sql: "SELECT _id FROM t WHERE 1".into(),
        params: Vec::new(),
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
        params: Vec::new(),
    };
    render_pg_order(sort, &mut q);
    let by_pg: Vec<String> = pg.rt.block_on(async {
        load_pg(&pg, docs).await;
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

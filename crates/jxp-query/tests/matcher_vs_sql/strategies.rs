//! The small model the documents follow, and the proptest generators of documents, filters
//! (every operator and combinator, `$elemMatch` included) and sort keys.

use std::sync::Arc;

use jxp_model::{Field, FieldKind, FieldOptions, Model, ModelOptions, Perms, ScalarType};
use jxp_query::{Filter, Op, Path, Sort, SortDir, resolve_path};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn field(name: &str, kind: FieldKind) -> Field {
    Field {
        name: name.into(),
        kind,
        options: FieldOptions::default(),
    }
}

pub(crate) fn model() -> Model {
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

pub(crate) fn document() -> impl Strategy<Value = Map<String, Value>> {
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
        large_list().prop_map(|v| (Op::In, v)),
        large_list().prop_map(|v| (Op::Nin, v)),
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

/// A list long enough that some of its comparison groups are bound as one JSON parameter
/// rather than a placeholder per value.
fn large_list() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec(value(), 9..40),
        prop::collection::vec(number(), 9..20),
        prop::collection::vec(string(), 9..20),
    ]
    .prop_map(Value::Array)
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
        large_list().prop_map(|v| (Op::In, v)),
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
pub(crate) fn leaf() -> BoxedStrategy<Filter> {
    prop_oneof![4 => condition().boxed(), 1 => elem_match()].boxed()
}

pub(crate) fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Nor),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// Sort keys on any path, system columns and arrays included, either way.
pub(crate) fn sorts() -> impl Strategy<Value = Vec<Sort>> {
    let m = Arc::new(model());
    prop::collection::vec(
        (prop::sample::select(PATHS), any::<bool>()).prop_map(move |(path, asc)| Sort {
            path: resolve_path(&m, path).unwrap().0,
            dir: if asc { SortDir::Asc } else { SortDir::Desc },
        }),
        1..3,
    )
}

//! Tests of list query-string parsing: filters with their casts, sort and paging, search,
//! populate, and the parameters refused.

use jxp_model::{
    Field, FieldKind, FieldOptions, IndexKind, Model, ModelOptions, Perms, ScalarType,
};
use serde_json::json;

use super::*;
use crate::ast::{Filter, Op, Path, SortDir};

fn field(name: &str, kind: FieldKind) -> Field {
    Field {
        name: name.into(),
        kind,
        options: FieldOptions::default(),
    }
}

fn with(mut f: Field, set: impl FnOnce(&mut FieldOptions)) -> Field {
    set(&mut f.options);
    f
}

fn link_field(name: &str, link: &str, map_to: Option<&str>) -> Field {
    with(field(name, FieldKind::Scalar(ScalarType::ObjectId)), |o| {
        o.link = Some(link.into());
        o.map_to = map_to.map(str::to_owned);
    })
}

fn model() -> Model {
    Model {
        slug: "test".into(),
        name: "Test".into(),
        fields: vec![
            field("foo", FieldKind::Scalar(ScalarType::String)),
            field("n", FieldKind::Scalar(ScalarType::Number)),
            field("d", FieldKind::Scalar(ScalarType::Date)),
            field("b", FieldKind::Scalar(ScalarType::Boolean)),
            field(
                "shmack",
                FieldKind::Array(Box::new(field(
                    "shmack",
                    FieldKind::Scalar(ScalarType::String),
                ))),
            ),
            field(
                "address",
                FieldKind::Object(vec![field("city", FieldKind::Scalar(ScalarType::String))]),
            ),
            with(
                field("fulltext", FieldKind::Scalar(ScalarType::String)),
                |o| {
                    o.index = IndexKind::Text;
                },
            ),
            link_field("link_id", "Link", None),
            link_field("other_link_id", "Link", Some("other_link")),
            Field {
                kind: FieldKind::Array(Box::new(link_field(
                    "array_link_id",
                    "Link",
                    Some("array_link"),
                ))),
                ..link_field("array_link_id", "Link", Some("array_link"))
            },
            with(link_field("hidden_id", "User", None), |o| o.private = true),
        ],
        perms: Perms::default(),
        options: ModelOptions::default(),
        builtin: false,
    }
}

fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
    q.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn parses_filters_with_casts() {
    let m = model();
    let cases = [
        (
            vec![("filter[n]", "5"), ("filter[address.city]", "Durban")],
            Filter::And(vec![
                Filter::cond(Path::plain("n"), Op::Eq, json!(5)),
                Filter::cond(Path::plain("address.city"), Op::Eq, json!("Durban")),
            ]),
        ),
        (
            vec![
                ("filter[d]", "$gte:2020-01-01"),
                ("filter[d]", "$lt:2021-01-01"),
            ],
            Filter::And(vec![
                Filter::cond(Path::plain("d"), Op::Gte, json!("2020-01-01T00:00:00.000Z")),
                Filter::cond(Path::plain("d"), Op::Lt, json!("2021-01-01T00:00:00.000Z")),
            ]),
        ),
        (
            vec![("filter[foo]", "a"), ("filter[foo]", "b")],
            Filter::cond(Path::plain("foo"), Op::In, json!(["a", "b"])),
        ),
        (
            vec![("filter[foo][]", "a")],
            Filter::cond(Path::plain("foo"), Op::Eq, json!("a")),
        ),
        (
            vec![("filter[shmack]", "do")],
            Filter::cond(Path::new("shmack", Some(0)), Op::Eq, json!("do")),
        ),
        (
            vec![("filter[foo]", "$regex:/^fo/i")],
            Filter::cond(Path::plain("foo"), Op::Regex, json!("(?i)^fo")),
        ),
        (
            vec![("filter[b]", "true"), ("filter[n]", "$in:1,2")],
            Filter::And(vec![
                Filter::cond(Path::plain("n"), Op::In, json!([1, 2])),
                Filter::cond(Path::plain("b"), Op::Eq, json!(true)),
            ]),
        ),
    ];
    for (q, expected) in cases {
        let p = parse_list_params(&m, &pairs(&q)).unwrap();
        assert_eq!(p.filter, expected, "{q:?}");
        assert!(p.filtered, "{q:?}");
    }
}

#[test]
fn rejects_bad_parameters() {
    let m = model();
    for q in [
        vec![("filter[nope]", "1")],
        vec![("filter[n]", "abc")],
        vec![("filter[d]", "$gte:not-a-date")],
        vec![("filter[foo]", "$bogus:1")],
        vec![("filter[foo]", "$regex:/(/")],
        vec![("limit", "0")],
        vec![("limit", "-3")],
        vec![("page", "x")],
        vec![("sort[nope]", "1")],
        vec![("sort[n]", "up")],
        vec![("sort", "-nope")],
        vec![("fields", "foo,nope")],
        vec![("filter[foo.bar]", "1")],
        vec![("filter[foo", "1")],
        vec![("sort[n", "1")],
        vec![("populate[link", "name")],
    ] {
        assert!(parse_list_params(&m, &pairs(&q)).is_err(), "{q:?}");
    }
}

#[test]
fn parses_sort_paging_and_flags() {
    let m = model();
    let p = parse_list_params(
        &m,
        &pairs(&[
            ("sort", "-n,foo"),
            ("sort[createdAt]", "-1"),
            ("limit", "10"),
            ("page", "2"),
            ("showDeleted", "true"),
            ("count", "true"),
        ]),
    )
    .unwrap();
    assert_eq!(p.sort.len(), 3);
    assert_eq!(p.sort[0].dir, SortDir::Desc);
    assert_eq!(p.sort[1].dir, SortDir::Asc);
    assert_eq!(
        (p.limit, p.page, p.show_deleted, p.count),
        (Some(10), Some(2), true, true)
    );
    assert!(!p.filtered);
}

#[test]
fn parses_search_and_full_text() {
    let m = model();
    let p = parse_list_params(
        &m,
        &pairs(&[
            ("search[foo]", "a.b"),
            ("search[shmack]", "Do"),
            ("filter[n]", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(
        p.search,
        Filter::And(vec![
            Filter::cond(Path::plain("foo"), Op::Regex, json!(r"(?i)a\.b")),
            Filter::cond(Path::new("shmack", Some(0)), Op::Regex, json!("(?i)Do")),
        ])
    );
    assert_eq!(p.filter, Filter::cond(Path::plain("n"), Op::Eq, json!(1)));
    assert!(p.filtered);
    let p = parse_list_params(&m, &pairs(&[("search", "kubla khan")])).unwrap();
    assert_eq!(p.text.as_deref(), Some("kubla khan"));
    assert!(p.filtered);
    for q in [
        vec![("search[n]", "1")],
        vec![("search[nope]", "x")],
        vec![("search[password]", "x")],
        vec![("search", "")],
        vec![("search", "   ")],
        vec![("search[foo", "x")],
        vec![("search", "a\0b")],
        vec![("search[foo]", "a\0b")],
    ] {
        assert!(parse_list_params(&m, &pairs(&q)).is_err(), "{q:?}");
    }
    let mut no_text = model();
    no_text.fields.retain(|f| f.name != "fulltext");
    let err = parse_list_params(&no_text, &pairs(&[("search", "x")])).unwrap_err();
    assert_eq!(err.0, "model test has no full-text index");
}

#[test]
fn parses_populate() {
    let m = model();
    let keys = |p: &ListParams| -> Vec<(String, String, bool, Option<Vec<String>>)> {
        p.populate
            .iter()
            .map(|x| (x.field.clone(), x.key.clone(), x.many, x.fields.clone()))
            .collect()
    };
    let p = parse_list_params(&m, &pairs(&[("populate", "link")])).unwrap();
    assert_eq!(
        keys(&p),
        vec![("link_id".into(), "link".into(), false, None)]
    );
    let p = parse_list_params(
        &m,
        &pairs(&[
            ("populate[]", "other_link"),
            ("populate[]", "array_link_id"),
        ]),
    )
    .unwrap();
    assert_eq!(
        keys(&p),
        vec![
            ("other_link_id".into(), "other_link".into(), false, None),
            ("array_link_id".into(), "array_link".into(), true, None),
        ]
    );
    let p = parse_list_params(
        &m,
        &pairs(&[("populate[link]", "name,x"), ("autopopulate", "1")]),
    )
    .unwrap();
    assert_eq!(
        keys(&p),
        vec![
            (
                "link_id".into(),
                "link".into(),
                false,
                Some(vec!["name".into(), "x".into()])
            ),
            ("other_link_id".into(), "other_link".into(), false, None),
            ("array_link_id".into(), "array_link".into(), true, None),
            ("_owner_id".into(), "_owner".into(), false, None),
            ("_updated_by_id".into(), "_updated_by".into(), false, None),
        ]
    );
    assert_eq!(p.populate[0].link, "Link");
    // The system links populate by key or field name, as JXP's `_owner`/`_updated_by`.
    let p = parse_list_params(
        &m,
        &pairs(&[("populate", "_owner"), ("populate[_updated_by_id]", "name")]),
    )
    .unwrap();
    assert_eq!(
        keys(&p),
        vec![
            ("_owner_id".into(), "_owner".into(), false, None),
            (
                "_updated_by_id".into(),
                "_updated_by".into(),
                false,
                Some(vec!["name".into()])
            ),
        ]
    );
    assert_eq!(p.populate[0].link, "User");
    for q in [
        vec![("populate", "nope")],
        vec![("populate", "foo")],
        vec![("populate", "hidden_id")],
        vec![("populate[user]", "name")],
    ] {
        assert!(parse_list_params(&m, &pairs(&q)).is_err(), "{q:?}");
    }
}

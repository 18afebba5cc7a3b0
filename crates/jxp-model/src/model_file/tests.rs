//! Tests of model-file parsing: the SPEC example in TOML and JSON, defaults, shapes and
//! options, and an error naming the culprit and line for each way a file can be wrong.

use std::path::Path;

use serde_json::json;

use crate::error::ModelError;
use crate::load::{parse_model_json, parse_model_toml};
use crate::schema::{FieldKind, IndexKind, Model, ScalarType, Strict};

/// The example file of SPEC §2.
pub(crate) const TEST_TOML: &str = r#"name = "Test"                      # display name; links name it: link = "Test"

[fields]
foo = "String"
bar = { type = "String", unique = true, index = true, default = "Some Default" }
user_id = { type = "ObjectId", link = "User" }
yack = "Mixed"
shmack = ["String"]
fulltext = { type = "String", index = "text" }
link_id = { type = "ObjectId", link = "Link" }
other_link_id = { type = "ObjectId", link = "Link", map_to = "other_link" }
array_link_id = [{ type = "ObjectId", link = "Link", map_to = "array_link" }]
composite_array = [{ afoo = "String", abar = "Number" }]
address = { street = "String", city = "String" }      # nested object: a table without `type`
date_field = { type = "Date", index = true }
n = { type = "Number", min = 0 }

[perms]
admin = "crud"
owner = "crud"
user = "cur"
all = "r"

[options]
callable = ["test"]
advanced_queries = { query = true, aggregate = true, bulkwrite = true }
"#;

fn toml(text: &str) -> Result<Model, ModelError> {
    parse_model_toml("test", Path::new("models/test.toml"), text)
}

/// The line and reason of an error, which must be `Invalid` for `models/test.toml`.
fn toml_err(text: &str) -> (Option<usize>, String) {
    match toml(text) {
        Err(ModelError::Invalid { file, line, reason }) => {
            assert_eq!(file, Path::new("models/test.toml"));
            (line, reason)
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

fn scalar(model: &Model, name: &str) -> ScalarType {
    match model.field(name).unwrap().kind {
        FieldKind::Scalar(t) => t,
        ref other => panic!("{name} is {other:?}"),
    }
}

#[test]
fn parses_the_spec_example() {
    let m = toml(TEST_TOML).unwrap();
    assert_eq!((m.slug.as_str(), m.name.as_str()), ("test", "Test"));
    let names: Vec<&str> = m.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "foo",
            "bar",
            "user_id",
            "yack",
            "shmack",
            "fulltext",
            "link_id",
            "other_link_id",
            "array_link_id",
            "composite_array",
            "address",
            "date_field",
            "n"
        ]
    );
    assert_eq!(scalar(&m, "foo"), ScalarType::String);
    assert_eq!(scalar(&m, "yack"), ScalarType::Mixed);
    let bar = &m.field("bar").unwrap().options;
    assert!(bar.unique);
    assert_eq!(bar.index, IndexKind::Normal);
    assert_eq!(bar.default, Some(json!("Some Default")));
    assert_eq!(
        m.field("user_id").unwrap().options.link.as_deref(),
        Some("User")
    );
    assert_eq!(m.field("fulltext").unwrap().options.index, IndexKind::Text);
    let other = &m.field("other_link_id").unwrap().options;
    assert_eq!(other.link.as_deref(), Some("Link"));
    assert_eq!(other.map_to.as_deref(), Some("other_link"));

    let shmack = m.field("shmack").unwrap();
    let FieldKind::Array(element) = &shmack.kind else {
        panic!("shmack is not an array")
    };
    assert_eq!(element.name, "shmack");
    assert!(matches!(
        element.kind,
        FieldKind::Scalar(ScalarType::String)
    ));

    let array_link = m.field("array_link_id").unwrap();
    let FieldKind::Array(element) = &array_link.kind else {
        panic!("array_link_id is not an array")
    };
    assert_eq!(element.options.link.as_deref(), Some("Link"));
    assert_eq!(element.options.map_to.as_deref(), Some("array_link"));
    // The path's options are readable off the array field too, as `leaf_fields` and
    // `field_at` return it.
    assert_eq!(array_link.options.link.as_deref(), Some("Link"));
    assert_eq!(array_link.options.map_to.as_deref(), Some("array_link"));

    let FieldKind::Array(element) = &m.field("composite_array").unwrap().kind else {
        panic!("composite_array is not an array")
    };
    let FieldKind::Object(children) = &element.kind else {
        panic!("composite_array elements are not objects")
    };
    assert_eq!(children.len(), 2);
    assert_eq!(
        m.field_at("composite_array.abar").unwrap().kind.scalar(),
        Some(ScalarType::Number)
    );

    let FieldKind::Object(children) = &m.field("address").unwrap().kind else {
        panic!("address is not an object")
    };
    assert_eq!(children[1].name, "city");
    assert_eq!(scalar(&m, "date_field"), ScalarType::Date);
    assert_eq!(m.field("n").unwrap().options.min, Some(json!(0)));

    assert_eq!(
        m.perms.groups,
        [
            ("admin", "crud"),
            ("owner", "crud"),
            ("user", "cur"),
            ("all", "r")
        ]
        .map(|(g, l)| (g.to_owned(), l.to_owned()))
    );
    assert_eq!(m.options.callable, ["test"]);
    assert!(m.options.advanced_queries.aggregate);
    assert!(m.options.soft_delete);
    assert_eq!(m.options.strict, Strict::Drop);
    assert!(!m.builtin);
}

#[test]
fn parses_the_same_model_from_json() {
    let text = r#"{
        "name": "Test",
        "fields": {
            "foo": "String",
            "bar": { "type": "String", "unique": true, "index": true, "default": "Some Default" },
            "shmack": ["String"],
            "fulltext": { "type": "String", "index": "text" },
            "array_link_id": [{ "type": "ObjectId", "link": "Link", "map_to": "array_link" }],
            "composite_array": [{ "afoo": "String", "abar": "Number" }],
            "address": { "street": "String", "city": "String" },
            "n": { "type": "Number", "min": 0 }
        },
        "perms": { "admin": "crud", "all": "r" },
        "options": { "callable": ["test"], "strict": "throw" }
    }"#;
    let m = parse_model_json("test", Path::new("models/test.json"), text).unwrap();
    assert_eq!(m.name, "Test");
    assert_eq!(m.fields.len(), 8);
    assert_eq!(
        m.field("bar").unwrap().options.default,
        Some(json!("Some Default"))
    );
    assert_eq!(m.field("fulltext").unwrap().options.index, IndexKind::Text);
    assert_eq!(
        m.field_at("array_link_id").unwrap().options.link.as_deref(),
        Some("Link")
    );
    assert_eq!(
        m.field_at("composite_array.afoo").unwrap().kind.scalar(),
        Some(ScalarType::String)
    );
    assert!(matches!(
        m.field("address").unwrap().kind,
        FieldKind::Object(_)
    ));
    assert!(m.perms.allows("all", 'r'));
    assert_eq!(m.options.strict, Strict::Throw);
}

#[test]
fn json_errors() {
    let err = parse_model_json(
        "test",
        Path::new("t.json"),
        "{\n  \"name\": \"T\",\n  \"fields\": {\n}}}",
    )
    .unwrap_err();
    assert!(
        matches!(err, ModelError::Invalid { line: Some(4), .. }),
        "{err}"
    );
    let err =
        parse_model_json("test", Path::new("t.json"), r#"{"fields": {"x": "Strng"}}"#).unwrap_err();
    assert!(
        err.to_string()
            .contains("field \"x\": unknown type \"Strng\""),
        "{err}"
    );
    let err = parse_model_json("test", Path::new("t.json"), "[1]").unwrap_err();
    assert!(err.to_string().contains("must be a table"), "{err}");
}

#[test]
fn defaults_and_shapes() {
    let m = toml(
        r#"
[fields]
tags = { type = ["String"], required = true, enum = ["a", "b"], lowercase = true }
anything = []
ids = { type = ["ObjectId"], link = "Link", index = true }
meta = { type = { a = "String" }, required = true }
when = { type = "Date", default = "now", min = "2020-01-01" }
count = { type = "Number", default = "5", enum = [1, "5"] }
deep = { inner = { x = { type = "Number", default = 1 } } }
"#,
    )
    .unwrap();
    assert_eq!(m.name, "Test", "the name defaults to the capitalised slug");
    assert!(m.perms.is_empty());

    let tags = m.field("tags").unwrap();
    assert!(tags.options.required);
    assert!(tags.options.enum_values.is_none() && !tags.options.lowercase);
    let FieldKind::Array(element) = &tags.kind else {
        panic!("tags")
    };
    assert_eq!(
        element.options.enum_values,
        Some(vec![json!("a"), json!("b")])
    );
    assert!(element.options.lowercase && !element.options.required);

    let FieldKind::Array(element) = &m.field("anything").unwrap().kind else {
        panic!("anything")
    };
    assert!(matches!(element.kind, FieldKind::Scalar(ScalarType::Mixed)));

    let ids = m.field("ids").unwrap();
    let FieldKind::Array(element) = &ids.kind else {
        panic!("ids")
    };
    assert_eq!(element.options.link.as_deref(), Some("Link"));
    assert_eq!(ids.options.index, IndexKind::Normal);
    assert_eq!(element.options.index, IndexKind::Normal);

    let meta = m.field("meta").unwrap();
    assert!(meta.options.required && matches!(meta.kind, FieldKind::Object(_)));

    let when = &m.field("when").unwrap().options;
    assert_eq!(when.default, Some(json!("now")));
    assert_eq!(when.min, Some(json!("2020-01-01T00:00:00.000Z")));

    let count = &m.field("count").unwrap().options;
    assert_eq!(count.default, Some(json!(5)), "defaults are stored cast");
    assert_eq!(count.enum_values, Some(vec![json!(1), json!(5)]));
    assert_eq!(
        m.field_at("deep.inner.x").unwrap().options.default,
        Some(json!(1))
    );
}

#[test]
fn options() {
    let m = toml(
        r#"
[fields]
a = "String"

[options]
internal = true
soft_delete = false
strict = "throw"
advanced_queries = { aggregate = false }
query_limits = { max = 500, default = 50 }
perms = { admin = "crud", "custom-group" = "" }
"#,
    )
    .unwrap();
    assert!(m.options.internal && !m.options.soft_delete);
    assert_eq!(m.options.strict, Strict::Throw);
    assert!(m.options.advanced_queries.query && !m.options.advanced_queries.aggregate);
    assert!(
        !m.options.advanced_queries.bulkwrite,
        "bulk writes are off unless a model opts in"
    );
    assert_eq!(
        m.options.query_limits.as_ref().and_then(|q| q.get("max")),
        Some(&json!(500))
    );
    assert!(m.perms.allows("admin", 'c'));
    assert_eq!(
        m.perms.groups[1],
        ("custom-group".to_owned(), String::new())
    );
    for strict in ["true", "false"] {
        let m = toml(&format!("[options]\nstrict = {strict}\n")).unwrap();
        assert_eq!(m.options.strict, Strict::Drop);
    }
}

#[test]
fn errors_name_the_culprit_and_line() {
    let cases: &[(&str, usize, &str)] = &[
        // Syntax.
        ("name = \"T\"\n[fields\nfoo = \"String\"\n", 2, ""),
        ("[fields]\nfoo = \"String\"\nfoo = \"Number\"\n", 3, ""),
        // Types and forms.
        (
            "[fields]\nfoo = \"String\"\nbar = \"Strng\"\n",
            3,
            "field \"bar\": unknown type \"Strng\"",
        ),
        (
            "[fields]\nbar = { type = \"Strng\" }\n",
            2,
            "unknown type \"Strng\"",
        ),
        (
            "[fields]\nbar = [\"String\", \"Number\"]\n",
            2,
            "field \"bar\": an array type must have exactly one element",
        ),
        (
            "[fields]\nbar = [[\"String\"]]\n",
            2,
            "field \"bar\": arrays of arrays",
        ),
        (
            "[fields]\nbar = 5\n",
            2,
            "field \"bar\": expected a type name",
        ),
        (
            "[fields]\n\n[fields.address]\ncity = \"Town\"\n",
            4,
            "field \"address.city\": unknown type \"Town\"",
        ),
        // Options.
        (
            "[fields]\nbar = { type = \"String\", uniq = true }\n",
            2,
            "field \"bar\": unknown option \"uniq\"",
        ),
        (
            "[fields]\nbar = { type = \"String\", unique = \"yes\" }\n",
            2,
            "field \"bar\": option \"unique\" must be true or false",
        ),
        (
            "[fields]\nbar = { type = \"String\", index = \"fulltext\" }\n",
            2,
            "option \"index\" must be true, false or \"text\"",
        ),
        (
            "[fields]\nbar = { type = \"Number\", index = \"text\" }\n",
            2,
            "field \"bar\": index = \"text\" needs a String field",
        ),
        (
            "[fields]\nbar = { type = \"String\", link = \"User\" }\n",
            2,
            "field \"bar\": option \"link\" needs an ObjectId field",
        ),
        (
            "[fields]\nbar = { type = \"ObjectId\", map_to = \"x\" }\n",
            2,
            "option \"map_to\" needs \"link\"",
        ),
        (
            "[fields]\nbar = { type = \"String\", minlength = -1 }\n",
            2,
            "option \"minlength\" must be a non-negative integer",
        ),
        (
            "[fields]\nbar = { type = \"String\", maxlength = 2.5 }\n",
            2,
            "option \"maxlength\" must be a non-negative integer",
        ),
        (
            "[fields]\nbar = { type = \"Number\", trim = true }\n",
            2,
            "option \"trim\" applies only to String fields",
        ),
        (
            "[fields]\nbar = { type = \"String\", min = 1 }\n",
            2,
            "option \"min\" applies only to Number and Date fields",
        ),
        (
            "[fields]\nbar = { type = \"Number\", max = \"ten\" }\n",
            2,
            "option \"max\" must be a number",
        ),
        (
            "[fields]\nbar = { type = \"Date\", min = \"someday\" }\n",
            2,
            "option \"min\" must be a date",
        ),
        (
            "[fields]\nbar = { type = \"Number\", enum = [1, \"x\"] }\n",
            2,
            "field \"bar\": enum value \"x\" is not a Number",
        ),
        (
            "[fields]\nbar = { type = \"Number\", default = \"x\" }\n",
            2,
            "field \"bar\": default: cannot cast \"x\" to Number",
        ),
        (
            "[fields]\nbar = { type = [\"Number\"], default = [1, \"x\"] }\n",
            2,
            "field \"bar\": default (at 1): cannot cast",
        ),
        (
            "[fields]\nbar = { type = \"String\", enum = [\"a\"], default = \"b\" }\n",
            2,
            "default: must be one of \"a\"",
        ),
        (
            "[fields]\nbar = { type = \"String\", match = \"[a-\" }\n",
            2,
            "field \"bar\": option \"match\" is not a valid regular expression: unclosed character class",
        ),
        (
            "[fields]\nbar = { type = \"String\", match = 5 }\n",
            2,
            "option \"match\" must be a regular expression string",
        ),
        // Field names.
        (
            "[fields]\n\"bad-name\" = \"String\"\n",
            2,
            "field \"bad-name\": a field name must start with a letter",
        ),
        (
            "[fields]\n\"1st\" = \"String\"\n",
            2,
            "field \"1st\": a field name",
        ),
        (
            "[fields]\n_id = \"String\"\n",
            2,
            "field \"_id\": \"_id\" is a system field",
        ),
        (
            "[fields]\ncreatedAt = \"Date\"\n",
            2,
            "\"createdAt\" is a system field",
        ),
        (
            "[fields]\na = { \"x.y\" = \"String\" }\n",
            2,
            "field \"a.x.y\": a field name",
        ),
        // Top level, perms and options.
        (
            "name = \"T\"\ncolour = \"red\"\n",
            2,
            "unknown top-level key \"colour\"",
        ),
        ("name = 5\n", 1, "\"name\" must be a non-empty string"),
        ("fields = \"String\"\n", 1, "\"fields\" must be a table"),
        (
            "[perms]\nadmin = \"crudx\"\nuser = \"rw\"\n",
            2,
            "perms group \"admin\": unknown letters \"x\"",
        ),
        (
            "[perms]\nuser = \"rw\"\n",
            2,
            "perms group \"user\": unknown letters \"w\"",
        ),
        (
            "[perms]\nuser = true\n",
            2,
            "perms group \"user\": expected a string",
        ),
        (
            "[perms]\n\"a b\" = \"r\"\n",
            2,
            "perms group \"a b\": a group name",
        ),
        (
            "[perms]\nadmin = \"r\"\n[options]\nperms = { admin = \"r\" }\n",
            4,
            "perms are given both",
        ),
        (
            "[options]\ninternal = \"yes\"\n",
            2,
            "option \"internal\" must be true or false",
        ),
        (
            "[options]\nstrict = \"loud\"\n",
            2,
            "option \"strict\" must be true, false or \"throw\"",
        ),
        (
            "[options]\ncallable = \"test\"\n",
            2,
            "option \"callable\" must be an array of strings",
        ),
        (
            "[options]\nadvanced_queries = { search = true }\n",
            2,
            "unknown option \"advanced_queries.search\"",
        ),
        (
            "[options]\nquery_limits = 5\n",
            2,
            "option \"query_limits\" must be a table",
        ),
        ("[options]\ncache = true\n", 2, "unknown option \"cache\""),
        ("x = 1e400\n", 1, "not a finite number"),
    ];
    for (text, line, reason) in cases {
        let (got_line, got_reason) = toml_err(text);
        assert_eq!(got_line, Some(*line), "{text}: {got_reason}");
        assert!(got_reason.contains(reason), "{text}: {got_reason}");
    }
}

#[test]
fn private_owner_hides_a_field_from_other_readers_only() {
    let m = toml(
        "[fields]\nemail = { type = \"String\", private = \"owner\" }\ntags = [{ type = \"String\", private = \"owner\" }]\nsecret = { type = \"String\", private = true }\nname = \"String\"\n",
    )
    .unwrap();
    let email = m.field("email").unwrap();
    assert!(email.is_owner_only() && !email.is_private());
    assert!(m.field("tags").unwrap().is_owner_only());
    assert!(!m.field("secret").unwrap().is_owner_only());
    assert!(m.has_owner_only());
    let doc = json!({"_id": "a", "email": "e", "tags": ["t"], "secret": "s", "name": "n"});
    let doc = doc.as_object().unwrap();
    let mine = crate::view_for(&m, doc, true);
    assert_eq!(mine.get("email"), Some(&json!("e")));
    assert!(mine.get("secret").is_none());
    let theirs = crate::view_for(&m, doc, false);
    assert!(theirs.get("email").is_none() && theirs.get("tags").is_none());
    assert_eq!(theirs.get("name"), Some(&json!("n")));
    assert_eq!(theirs.get("id"), Some(&json!("a")));

    for (text, reason) in [
        (
            "[fields]\na = { b = { type = \"String\", private = \"owner\" } }\n",
            "applies only to a top-level field",
        ),
        (
            "[fields]\na = { type = \"String\", private = \"owner\", index = \"text\" }\n",
            "cannot have a text index",
        ),
        (
            "[fields]\na = { type = \"String\", private = \"all\" }\n",
            "must be true, false or \"owner\"",
        ),
    ] {
        let (line, got) = toml_err(text);
        assert_eq!(line, Some(2), "{text}");
        assert!(got.contains(reason), "{got}");
    }
}

//! Property-based fuzzing of model files and of validation: a model file built from the
//! format's own lines (well formed, mistyped and nonsense, in any order) is loaded or refused
//! with an error, never a panic, in TOML and in JSON; and a model that loads validates any
//! document, answering `Ok` or a `ValidationError`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code fails loudly.

use std::path::Path;

use jxp_model::{Document, parse_model_json, parse_model_toml};
use proptest::prelude::*;
use serde_json::{Value, json};

const LINES: &[&str] = &[
    "name = \"T\"",
    "name = 3",
    "[fields]",
    "[perms]",
    "[options]",
    "[fields.addr]",
    "s = \"String\"",
    "n = \"Number\"",
    "b = \"Boolean\"",
    "d = \"Date\"",
    "m = \"Mixed\"",
    "x = \"Nope\"",
    "o = { type = \"ObjectId\", link = \"T\" }",
    "o2 = { type = \"ObjectId\", link = \"Missing\", map_to = \"\" }",
    "tags = [\"String\"]",
    "tags2 = [[\"String\"]]",
    "items = [{ k = \"String\", v = \"Number\" }]",
    "empty = []",
    "e = { type = \"String\", enum = [\"a\", 1] }",
    "r = { type = \"Number\", min = 5, max = 1 }",
    "r2 = { type = \"Number\", min = \"a\" }",
    "re = { type = \"String\", match = \"[a-\" }",
    "re2 = { type = \"String\", match = \"^a+$\", minlength = 2, maxlength = 1 }",
    "t = { type = \"String\", trim = true, lowercase = true, uppercase = true }",
    "u = { type = \"String\", unique = true, index = \"text\" }",
    "p = { type = \"String\", private = true, required = true, default = 4 }",
    "password = \"String\"",
    "_id = \"String\"",
    "city = \"String\"",
    "admin = \"crud\"",
    "user = \"cr\"",
    "owner = \"rud\"",
    "all = \"r\"",
    "all = \"xyz\"",
    "editors = \"cru\"",
    "groups = [\"editors\"]",
    "soft_delete = false",
    "soft_delete = 3",
    "strict = \"throw\"",
    "strict = \"maybe\"",
    "internal = true",
    "callable = [\"f\", 1]",
    "advanced_queries = { query = true, bulkwrite = \"yes\" }",
    "query_limits = { default = 20, max = 5, max_response_size = \"2xb\" }",
    "= \"x\"",
    "[[fields]]",
    "\u{0}",
    "é = \"String\"",
    "\"a.b\" = \"String\"",
];

const GOOD_FIELDS: &[&str] = &[
    "s = \"String\"",
    "n = \"Number\"",
    "b = \"Boolean\"",
    "d = \"Date\"",
    "m = \"Mixed\"",
    "o = { type = \"ObjectId\", link = \"T\" }",
    "tags = [\"String\"]",
    "items = [{ k = \"String\", v = \"Number\" }]",
    "addr = { city = \"String\", zip = \"Number\" }",
    "e = { type = \"String\", enum = [\"a\", \"b\"], default = \"a\" }",
    "r = { type = \"Number\", min = 1, max = 5 }",
    "re2 = { type = \"String\", match = \"^a+$\", minlength = 1, maxlength = 9 }",
    "t = { type = \"String\", trim = true, lowercase = true }",
    "u = { type = \"String\", unique = true, index = \"text\" }",
    "p = { type = \"String\", private = true, required = true }",
    "password = \"String\"",
    "dd = { type = \"Date\", index = true }",
];
const GOOD_PERMS: &[&str] = &[
    "admin = \"crud\"",
    "user = \"cr\"",
    "owner = \"rud\"",
    "all = \"r\"",
];
const GOOD_OPTIONS: &[&str] = &[
    "soft_delete = false",
    "strict = \"throw\"",
    "strict = false",
    "internal = true",
    "callable = [\"f\"]",
    "advanced_queries = { query = true, bulkwrite = true }",
    "query_limits = { default = 20, max = 50, max_response_size = \"2mb\" }",
];

/// A file in the format's order (name, `[fields]`, `[perms]`, `[options]`), each section's
/// lines drawn from all the lines, so most files get past the TOML and into the model's rules.
fn sectioned() -> impl Strategy<Value = String> {
    let lines = |good: &'static [&'static str]| {
        prop::collection::vec(
            prop_oneof![9 => prop::sample::select(good), 1 => prop::sample::select(LINES)],
            0..5,
        )
    };
    (lines(GOOD_FIELDS), lines(GOOD_PERMS), lines(GOOD_OPTIONS)).prop_map(
        |(fields, perms, options)| {
            format!(
                "name = \"T\"\n[fields]\n{}\n[perms]\n{}\n[options]\n{}\n",
                fields.join("\n"),
                perms.join("\n"),
                options.join("\n")
            )
        },
    )
}

fn document() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9 @.]{0,12}".prop_map(Value::String),
        Just(json!("2024-02-30T00:00:00Z")),
        Just(json!("0123456789abcdef01234567")),
    ];
    let value = scalar.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z]{1,3}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    });
    let keys = prop::sample::select(
        &[
            "s", "n", "b", "d", "m", "o", "tags", "items", "addr", "city", "e", "r", "re", "re2",
            "t", "u", "p", "password", "_id", "zzz",
        ][..],
    );
    prop::collection::vec((keys, value), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_model_file_loads_or_is_refused_and_what_loads_validates_any_document(
        text in prop_oneof![
            sectioned(),
            prop::collection::vec(
                prop_oneof![
                    4 => prop::sample::select(LINES).prop_map(str::to_owned),
                    1 => ".{0,16}",
                ],
                0..16,
            )
            .prop_map(|lines| lines.join("\n")),
        ],
        docs in prop::collection::vec(document(), 1..4),
    ) {
        if let Ok(model) = parse_model_toml("t", Path::new("t.toml"), &text) {
            for doc in docs {
                if let Value::Object(map) = doc {
                    let mut doc: Document = map;
                    let _ = model.validate(&mut doc);
                }
            }
        }
    }

    #[test]
    fn a_json_model_file_loads_or_is_refused(
        name in prop_oneof![Just(json!("T")), Just(json!(1)), Just(Value::Null)],
        fields in document(),
        perms in document(),
        options in document(),
    ) {
        let file = json!({"name": name, "fields": fields, "perms": perms, "options": options});
        let _ = parse_model_json("t", Path::new("t.json"), &file.to_string());
        let _ = parse_model_json("t", Path::new("t.json"), &fields.to_string());
    }
}

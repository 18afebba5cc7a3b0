//! What the store must create for each model: indexes, unique indexes, the text index and the
//! defaults of fields.

use jxp_model::{FieldKind, IndexKind, ScalarType, Schema, format_date, parse_date};
use jxp_query::GeneratedKind;
use jxp_store::{IndexSpec, TableSpec};
use serde_json::Value;

/// The table specs of every model in the schema.
pub fn table_specs(schema: &Schema) -> Vec<TableSpec> {
    schema
        .models
        .values()
        .map(|model| {
            let mut spec = TableSpec {
                model: model.slug.clone(),
                fields: model.fields.iter().map(|f| f.name.clone()).collect(),
                ..TableSpec::default()
            };
            for (path, field, in_array) in model.leaf_fields() {
                let o = &field.options;
                if o.index == IndexKind::Text {
                    spec.text_fields.push(path.clone());
                }
                if in_array {
                    continue;
                }
                let number = matches!(field.kind, FieldKind::Scalar(ScalarType::Number));
                if number && !o.unique && o.index != IndexKind::Normal {
                    spec.numbers.push(path.clone());
                }
                if o.unique || o.index == IndexKind::Normal {
                    // Dates and ids are stored as strings.
                    let kind = match field.kind {
                        FieldKind::Scalar(
                            ScalarType::String | ScalarType::Date | ScalarType::ObjectId,
                        ) => Some(GeneratedKind::Text),
                        FieldKind::Scalar(ScalarType::Number) => Some(GeneratedKind::Number),
                        _ => None,
                    };
                    spec.indexes.push(IndexSpec {
                        path,
                        unique: o.unique,
                        kind,
                    });
                }
            }
            for f in &model.fields {
                let Some(default) = &f.options.default else {
                    continue;
                };
                let value = match f.kind {
                    FieldKind::Object(_) => continue,
                    // A Date default is stored in the one date format; `now` is evaluated per
                    // document at write time, so it is not back-filled.
                    FieldKind::Scalar(ScalarType::Date) => match parse_date(default) {
                        Some(d) => Value::String(format_date(d)),
                        None => continue,
                    },
                    _ => default.clone(),
                };
                spec.defaults.push((f.name.clone(), value));
            }
            spec
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    use super::*;

    const THING: &str = r#"
name = "Thing"
[fields]
plain = "Number"
ranked = { type = "Number", index = true }
code = { type = "Number", unique = true }
label = "String"
scores = ["Number"]
[fields.size]
w = "Number"
"#;

    #[test]
    fn number_fields_no_index_covers_are_listed_for_their_columns() {
        let thing = jxp_model::parse_model_toml("thing", Path::new("thing"), THING);
        let Ok(thing) = thing else {
            panic!("the model does not parse: {thing:?}");
        };
        let schema = Schema {
            models: BTreeMap::from([("thing".to_owned(), Arc::new(thing))]),
        };
        let specs = table_specs(&schema);
        // Neither the indexed nor the unique number, nor one inside an array, nor a string.
        assert_eq!(specs[0].numbers, ["plain", "size.w"]);
        let indexed: Vec<_> = specs[0].indexes.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(indexed, ["ranked", "code"]);
    }
}

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

//! What the store knows of the tables it has migrated, and what schema evolution decides the
//! same way on both databases: table names, model names, the keys it keeps in `jxp_meta`, and
//! which defaults a migration fills in. The SQL of each database stays in its own module.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use jxp_model::is_ident;
use jxp_model::sync as lock;
use jxp_query::{Find, Generated, Grouping};
use serde_json::Value;

use crate::error::StoreError;
use crate::spec::TableSpec;

/// What the store knows of a migrated table.
#[derive(Debug, Clone, Default)]
pub(crate) struct TableInfo {
    /// Paths of the fields in the full-text index; empty when the model has none.
    pub text_fields: Vec<String>,
    /// Unique index name → field path, to name the field in a violation.
    pub unique_indexes: HashMap<String, String>,
    /// The generated columns the renderer reads (on PostgreSQL for indexed and Number
    /// fields, on SQLite for Number fields no index covers).
    pub generated: Option<Arc<Generated>>,
}

/// The migrated tables of a store, by model; shared by its readers and its writer.
#[derive(Debug, Default)]
pub(crate) struct Tables(RwLock<HashMap<String, TableInfo>>);

impl Tables {
    /// Records what a migration made.
    pub fn extend(&self, infos: HashMap<String, TableInfo>) {
        lock::write(&self.0).extend(infos);
    }

    /// Whether `model` has been migrated.
    /// Whether a grouping over `model` can run here (an unknown model is an error): only
    /// one whose paths SQL may write literally.
    pub fn check_grouping(&self, model: &str, grouping: &Grouping) -> Result<bool, StoreError> {
        self.check_model(model)?;
        Ok(grouping.renderable())
    }

    pub fn check_model(&self, model: &str) -> Result<(), StoreError> {
        if lock::read(&self.0).contains_key(model) {
            Ok(())
        } else {
            Err(StoreError::UnknownModel(model.to_owned()))
        }
    }

    /// The generated columns of a migrated model's table, if it has any.
    pub fn generated(&self, model: &str) -> Option<Arc<Generated>> {
        lock::read(&self.0).get(model)?.generated.clone()
    }

    /// The full-text fields of a migrated model.
    pub fn text_fields(&self, model: &str) -> Result<Vec<String>, StoreError> {
        lock::read(&self.0)
            .get(model)
            .map(|info| info.text_fields.clone())
            .ok_or_else(|| StoreError::UnknownModel(model.to_owned()))
    }

    /// Checks the model, and that it has a full-text index when `find` searches text.
    pub fn check_find(&self, model: &str, find: &Find) -> Result<(), StoreError> {
        let has_text = lock::read(&self.0)
            .get(model)
            .map(|info| !info.text_fields.is_empty())
            .ok_or_else(|| StoreError::UnknownModel(model.to_owned()))?;
        if find.text.is_some() && !has_text {
            return Err(StoreError::NoTextIndex {
                model: model.to_owned(),
            });
        }
        Ok(())
    }

    /// The field of the first unique index of `model` that `names` says a violation names;
    /// `_id` when none does (its own unique constraint).
    pub fn unique_field(&self, model: &str, names: impl Fn(&str) -> bool) -> String {
        lock::read(&self.0)
            .get(model)
            .and_then(|info| {
                info.unique_indexes
                    .iter()
                    .find(|(name, _)| names(name))
                    .map(|(_, path)| path.clone())
            })
            .unwrap_or_else(|| "_id".to_owned())
    }
}

/// `m_<slug>`: the table of a model. Slugs are checked to be plain identifiers at migration.
pub(crate) fn table_name(model: &str) -> String {
    format!("\"m_{model}\"")
}

/// The error of a migration of `model` that cannot go on, and why.
pub(crate) fn migration_error(model: &str) -> impl Fn(String) -> StoreError + '_ {
    move |reason| StoreError::Migration {
        model: model.to_owned(),
        reason,
    }
}

/// Refuses a model name that could not be part of a table name as it is.
pub(crate) fn check_model_name(model: &str) -> Result<(), StoreError> {
    if is_ident(model) {
        Ok(())
    } else {
        Err(migration_error(model)(
            "model names must be letters, digits and _".into(),
        ))
    }
}

/// The `jxp_meta` key under which the fields of a model's full-text index are kept.
pub(crate) fn text_fields_key(model: &str) -> String {
    format!("fts:{model}")
}

/// The `jxp_meta` key under which a model's field names are kept, to tell new fields from old.
pub(crate) fn fields_key(model: &str) -> String {
    format!("fields:{model}")
}

/// The `jxp_meta` value for the fields of `spec`.
pub(crate) fn fields_value(spec: &TableSpec) -> String {
    spec.fields.join(",")
}

/// The defaults of `spec` whose fields are not among the `known` ones (the `jxp_meta` value
/// kept by the last migration): the values existing documents that lack them get.
pub(crate) fn new_defaults<'a>(
    spec: &'a TableSpec,
    known: Option<&str>,
) -> Vec<(&'a str, &'a Value)> {
    let known: HashSet<&str> = known.map(|s| s.split(',').collect()).unwrap_or_default();
    spec.defaults
        .iter()
        .filter(|(field, _)| !known.contains(field.as_str()))
        .map(|(field, value)| (field.as_str(), value))
        .collect()
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec() -> TableSpec {
        TableSpec {
            model: "t".into(),
            defaults: vec![("a".into(), json!(1)), ("b".into(), json!("x"))],
            fields: vec!["a".into(), "b".into(), "c".into()],
            ..TableSpec::default()
        }
    }

    #[test]
    fn only_defaults_of_fields_the_last_migration_did_not_know_are_new() {
        let spec = spec();
        assert_eq!(
            new_defaults(&spec, None),
            vec![("a", &json!(1)), ("b", &json!("x"))]
        );
        assert_eq!(new_defaults(&spec, Some("a,c")), vec![("b", &json!("x"))]);
        assert!(new_defaults(&spec, Some(&fields_value(&spec))).is_empty());
    }

    #[test]
    fn tables_answer_for_migrated_models_only() {
        let tables = Tables::default();
        let info = TableInfo {
            text_fields: vec!["body".into()],
            unique_indexes: HashMap::from([("ux_t__email".to_owned(), "email".to_owned())]),
            generated: None,
        };
        tables.extend(HashMap::from([
            ("t".to_owned(), info),
            ("plain".to_owned(), TableInfo::default()),
        ]));
        assert!(tables.check_model("t").is_ok());
        assert_eq!(
            tables.check_model("nope"),
            Err(StoreError::UnknownModel("nope".into()))
        );
        let search = Find {
            text: Some("x".into()),
            ..Find::default()
        };
        assert!(tables.check_find("t", &search).is_ok());
        assert!(tables.check_find("plain", &Find::default()).is_ok());
        assert_eq!(
            tables.check_find("plain", &search),
            Err(StoreError::NoTextIndex {
                model: "plain".into()
            })
        );
        assert_eq!(tables.unique_field("t", |n| n == "ux_t__email"), "email");
        assert_eq!(tables.unique_field("t", |_| false), "_id");
        assert!(check_model_name("a_b1").is_ok());
        assert!(check_model_name("a-b").is_err());
    }
}

//! Link fields a list joins into its results (`populate`, `populate[key]=fields`,
//! `autopopulate`): which fields can be populated, under what key, and merging repeated
//! requests.

use jxp_model::{Field, Model};

use crate::error::QueryError;

/// One link field to populate.
#[derive(Debug, Clone, PartialEq)]
pub struct Populate {
    pub field: String,
    /// The linked model's display name, as `link` names it.
    pub link: String,
    /// The key the linked document(s) appear under in the result.
    pub key: String,
    /// Whether the field holds an array of ids (then the key holds an array of documents).
    pub many: bool,
    /// `populate[key]=f1,f2`: only these fields of each linked document (with `_id`); the
    /// core checks them against the linked model.
    pub fields: Option<Vec<String>>,
}

/// The key a link field's documents appear under: `map_to` if the field sets one, else the
/// linked model's name in lower case, as JXP names its populate virtuals (`link_id` with
/// `link = "Link"` → `link`).
fn populate_key(field: &Field) -> Option<String> {
    let link = field.options.link.as_deref()?;
    Some(
        field
            .options
            .map_to
            .clone()
            .unwrap_or_else(|| link.to_ascii_lowercase()),
    )
}

/// The system link fields every document has, as JXP's schema declares them: the creator and
/// the last updater, both users, shown as `_owner` and `_updated_by`.
const SYSTEM_LINKS: &[(&str, &str)] = &[("_owner_id", "_owner"), ("_updated_by_id", "_updated_by")];

/// The populatable link fields of a model, in field order and then the system links, first of
/// each key only (two fields that would show under one key cannot both be populated). Private
/// link fields are left out: populating one would reveal the id it hides.
pub(super) fn link_fields(model: &Model) -> Vec<Populate> {
    let mut out: Vec<Populate> = Vec::new();
    for field in &model.fields {
        if field.is_private() {
            continue;
        }
        let (Some(link), Some(key)) = (field.options.link.clone(), populate_key(field)) else {
            continue;
        };
        if out.iter().any(|p| p.key == key) {
            continue;
        }
        out.push(Populate {
            field: field.name.clone(),
            link,
            key,
            many: field.kind.is_array(),
            fields: None,
        });
    }
    for (field, key) in SYSTEM_LINKS {
        if model.field(field).is_none() && !out.iter().any(|p| p.key == *key) {
            out.push(Populate {
                field: (*field).to_owned(),
                link: "User".to_owned(),
                key: (*key).to_owned(),
                many: false,
                fields: None,
            });
        }
    }
    out
}

/// Adds a populate request for `name` (the result key, or the link field's own name).
pub(super) fn add_populate(
    model: &Model,
    out: &mut Vec<Populate>,
    name: &str,
    fields: Option<Vec<String>>,
) -> Result<(), QueryError> {
    let candidates = link_fields(model);
    let found = candidates
        .iter()
        .find(|p| p.key == name)
        .or_else(|| candidates.iter().find(|p| p.field == name))
        .ok_or_else(|| {
            QueryError::new(format!(
                "cannot populate \"{name}\": {} has no link field by that name",
                model.slug
            ))
        })?;
    match out.iter_mut().find(|p| p.key == found.key) {
        // Asked twice: a projection given either time applies.
        Some(existing) => {
            if fields.is_some() {
                existing.fields = fields;
            }
        }
        None => out.push(Populate {
            fields,
            ..found.clone()
        }),
    }
    Ok(())
}

//! The meaning of a model file's tree — `name`, `[fields]`, `[perms]`, `[options]` — turned
//! into a `Model`, with the offending line and name in every error. The `[fields]` tree is
//! read in `fields`, each field's options in `field_options`.

mod field_options;
mod fields;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::node::{Node, NodeValue};
use crate::schema::{AdvancedQueries, Model, ModelOptions, Perms, Strict};
use fields::FileParser;

/// Why a model file cannot be used, and where.
#[derive(Debug)]
pub(crate) struct Fault {
    pub line: Option<usize>,
    pub reason: String,
}

fn fault(line: Option<usize>, reason: impl Into<String>) -> Fault {
    Fault {
        line,
        reason: reason.into(),
    }
}

/// A parsed model and the line each field path was defined on, for errors found later (links
/// are checked once every model is known).
pub(crate) struct ParsedModel {
    pub model: Model,
    pub field_lines: BTreeMap<String, usize>,
    /// What works but is most likely a mistake (see `warnings`).
    pub warnings: Vec<Fault>,
}

/// The groups every model may name in `[perms]` without declaring them.
pub(crate) const BUILTIN_GROUPS: [&str; 4] = ["all", "user", "owner", "admin"];

/// Interprets the root of a model file.
pub(crate) fn model_from_node(slug: &str, root: &Node) -> Result<ParsedModel, Fault> {
    let NodeValue::Table(entries) = &root.value else {
        return Err(fault(
            root.line,
            format!("a model file must be a table, found {}", root.describe()),
        ));
    };
    let mut parser = FileParser::default();
    let mut name = None;
    let mut fields = Vec::new();
    let mut perms = None;
    let mut options = ModelOptions::default();
    for (key, node) in entries {
        match key.as_str() {
            "name" => name = Some(model_name(node)?),
            "fields" => fields = parser.fields(table(node, "\"fields\"")?, "")?,
            "perms" => set_perms(&mut perms, node)?,
            "options" => parse_options(node, &mut options, &mut perms)?,
            other => {
                return Err(fault(
                    node.line,
                    format!(
                        "unknown top-level key \"{other}\" (expected name, fields, perms or options)"
                    ),
                ));
            }
        }
    }
    let model = Model {
        slug: slug.to_owned(),
        name: name.unwrap_or_else(|| capitalised(slug)),
        fields,
        perms: perms.unwrap_or_default(),
        options,
        builtin: false,
    };
    let warnings = warnings(&model, entries);
    Ok(ParsedModel {
        model,
        field_lines: parser.field_lines,
        warnings,
    })
}

/// A model without perms (which no caller may use), and each `[perms]` group that is neither
/// built-in nor declared in `[options] groups`, with its line.
fn warnings(model: &Model, entries: &[(String, Node)]) -> Vec<Fault> {
    if model.perms.is_empty() {
        return vec![fault(
            None,
            format!(
                "model \"{}\" has no [perms]: every route answers 403 to every caller, admins included (add [perms] to serve it)",
                model.slug
            ),
        )];
    }
    let perms_node = entries.iter().find_map(|(key, node)| match key.as_str() {
        "perms" => Some(node),
        "options" => table(node, "")
            .ok()?
            .iter()
            .find(|(k, _)| k == "perms")
            .map(|(_, n)| n),
        _ => None,
    });
    let Some(Ok(groups)) = perms_node.map(|n| table(n, "")) else {
        return Vec::new();
    };
    groups
        .iter()
        .filter(|(group, _)| {
            !BUILTIN_GROUPS.contains(&group.as_str()) && !model.options.groups.contains(group)
        })
        .map(|(group, letters)| {
            fault(
                letters.line,
                format!(
                    "perms group \"{group}\" is neither built-in ({}) nor declared in [options] groups: a misspelling? A custom group is declared with groups = [\"{group}\"] in [options]",
                    BUILTIN_GROUPS.join(", ")
                ),
            )
        })
        .collect()
}

fn model_name(node: &Node) -> Result<String, Fault> {
    match &node.value {
        NodeValue::Str(s) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(fault(node.line, "\"name\" must be a non-empty string")),
    }
}

fn capitalised(slug: &str) -> String {
    let mut chars = slug.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn table<'a>(node: &'a Node, what: &str) -> Result<&'a [(String, Node)], Fault> {
    match &node.value {
        NodeValue::Table(entries) => Ok(entries),
        _ => Err(fault(
            node.line,
            format!("{what} must be a table, found {}", node.describe()),
        )),
    }
}

fn bool_of(node: &Node, what: &str) -> Result<bool, Fault> {
    match node.value {
        NodeValue::Bool(b) => Ok(b),
        _ => Err(fault(
            node.line,
            format!("{what} must be true or false, found {}", node.describe()),
        )),
    }
}

fn set_perms(perms: &mut Option<Perms>, node: &Node) -> Result<(), Fault> {
    if perms.is_some() {
        return Err(fault(
            node.line,
            "perms are given both at the top level and in options",
        ));
    }
    let mut groups = Vec::new();
    for (group, letters) in table(node, "\"perms\"")? {
        if !is_group_name(group) {
            return Err(fault(
                letters.line,
                format!(
                    "perms group \"{group}\": a group name may only contain A-Z, a-z, 0-9, _ and -"
                ),
            ));
        }
        let NodeValue::Str(letters_text) = &letters.value else {
            return Err(fault(
                letters.line,
                format!(
                    "perms group \"{group}\": expected a string of the letters c, r, u, d, found {}",
                    letters.describe()
                ),
            ));
        };
        let bad: String = letters_text
            .chars()
            .filter(|c| !"crud".contains(*c))
            .collect();
        if !bad.is_empty() {
            return Err(fault(
                letters.line,
                format!(
                    "perms group \"{group}\": unknown letters \"{bad}\" (only c, r, u, d are allowed)"
                ),
            ));
        }
        groups.push((group.clone(), letters_text.clone()));
    }
    *perms = Some(Perms { groups });
    Ok(())
}

fn parse_options(
    node: &Node,
    options: &mut ModelOptions,
    perms: &mut Option<Perms>,
) -> Result<(), Fault> {
    for (key, value) in table(node, "\"options\"")? {
        let what = format!("option \"{key}\"");
        match key.as_str() {
            "internal" => options.internal = bool_of(value, &what)?,
            "soft_delete" => options.soft_delete = bool_of(value, &what)?,
            "strict" => {
                options.strict = match &value.value {
                    NodeValue::Str(s) if s == "throw" => Strict::Throw,
                    NodeValue::Bool(_) => Strict::Drop,
                    _ => {
                        return Err(fault(
                            value.line,
                            format!("{what} must be true, false or \"throw\""),
                        ));
                    }
                }
            }
            "advanced_queries" => options.advanced_queries = advanced_queries(value)?,
            "query_limits" => {
                table(value, &what)?;
                if let Value::Object(map) = value.to_json() {
                    options.query_limits = Some(map);
                }
            }
            "callable" => options.callable = strings(value, "callable")?,
            "groups" => options.groups = group_names(value)?,
            "perms" => set_perms(perms, value)?,
            other => {
                return Err(fault(value.line, format!("unknown option \"{other}\"")));
            }
        }
    }
    Ok(())
}

fn advanced_queries(node: &Node) -> Result<AdvancedQueries, Fault> {
    let mut out = AdvancedQueries::default();
    for (key, value) in table(node, "option \"advanced_queries\"")? {
        let what = format!("option \"advanced_queries.{key}\"");
        match key.as_str() {
            "query" => out.query = bool_of(value, &what)?,
            "aggregate" => out.aggregate = bool_of(value, &what)?,
            "bulkwrite" => out.bulkwrite = bool_of(value, &what)?,
            other => {
                return Err(fault(
                    value.line,
                    format!(
                        "unknown option \"advanced_queries.{other}\" (expected query, aggregate or bulkwrite)"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// `[options] groups`: custom group names, by the rule `[perms]` keys follow.
fn group_names(node: &Node) -> Result<Vec<String>, Fault> {
    let names = strings(node, "groups")?;
    if let Some(bad) = names.iter().find(|g| !is_group_name(g)) {
        return Err(fault(
            node.line,
            format!("option \"groups\": \"{bad}\" is not a group name (A-Z, a-z, 0-9, _ and -)"),
        ));
    }
    Ok(names)
}

fn is_group_name(group: &str) -> bool {
    !group.is_empty()
        && group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn strings(node: &Node, option: &str) -> Result<Vec<String>, Fault> {
    let err = || {
        fault(
            node.line,
            format!("option \"{option}\" must be an array of strings"),
        )
    };
    let NodeValue::Array(items) = &node.value else {
        return Err(err());
    };
    items
        .iter()
        .map(|item| match &item.value {
            NodeValue::Str(s) => Ok(s.clone()),
            _ => Err(err()),
        })
        .collect()
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
pub(crate) mod tests;

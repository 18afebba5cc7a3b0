//! The `[fields]` tree of a model file: field names, type names, arrays and nested objects,
//! and the line each field path was defined on.

use std::collections::BTreeMap;

use super::field_options::{field_options, finish, share_array_options};
use super::{Fault, fault};
use crate::document::SYSTEM_FIELDS;
use crate::node::{Node, NodeValue};
use crate::schema::{Field, FieldKind, FieldOptions, ScalarType};

/// Walks `[fields]`, remembering where each field path was defined.
#[derive(Default)]
pub(super) struct FileParser {
    pub(super) field_lines: BTreeMap<String, usize>,
}

impl FileParser {
    pub(super) fn fields(
        &mut self,
        entries: &[(String, Node)],
        prefix: &str,
    ) -> Result<Vec<Field>, Fault> {
        entries
            .iter()
            .map(|(name, node)| self.field(name, node, prefix))
            .collect()
    }

    fn field(&mut self, name: &str, node: &Node, prefix: &str) -> Result<Field, Fault> {
        let path = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        };
        if let Some(line) = node.line {
            self.field_lines.insert(path.clone(), line);
        }
        check_field_name(name, &path, prefix.is_empty(), node.line)?;
        self.field_body(name, &path, node)
    }

    /// The field a definition describes: a type name, an array form, a table with `type`
    /// (a field with options), or a table without (a nested object). Array elements come
    /// through here too, under their parent's name.
    fn field_body(&mut self, name: &str, path: &str, node: &Node) -> Result<Field, Fault> {
        let typed = match &node.value {
            NodeValue::Table(entries) => entries
                .iter()
                .find(|(k, _)| k == "type")
                .map(|(_, type_node)| (entries, type_node)),
            _ => None,
        };
        let (mut kind, mut options) = match typed {
            Some((entries, type_node)) => (
                self.kind(name, path, type_node)?,
                field_options(path, entries)?,
            ),
            None => (self.kind(name, path, node)?, FieldOptions::default()),
        };
        if let FieldKind::Array(element) = &mut kind {
            share_array_options(&mut options, &mut element.options);
            finish(element, path, node.line)?;
        }
        let mut field = Field {
            name: name.to_owned(),
            kind,
            options,
        };
        finish(&mut field, path, node.line)?;
        Ok(field)
    }

    /// The kind written in a type position: `"String"`, `[element]`, or a table of fields.
    fn kind(&mut self, name: &str, path: &str, node: &Node) -> Result<FieldKind, Fault> {
        match &node.value {
            NodeValue::Str(type_name) => {
                Ok(FieldKind::Scalar(scalar_type(path, type_name, node.line)?))
            }
            NodeValue::Array(items) => match items.as_slice() {
                [] => Ok(FieldKind::Array(Box::new(Field {
                    name: name.to_owned(),
                    kind: FieldKind::Scalar(ScalarType::Mixed),
                    options: FieldOptions::default(),
                }))),
                [element] => {
                    if matches!(element.value, NodeValue::Array(_)) {
                        return Err(fault(
                            element.line.or(node.line),
                            format!("field \"{path}\": arrays of arrays are not supported"),
                        ));
                    }
                    let element_field = self.field_body(name, path, element)?;
                    Ok(FieldKind::Array(Box::new(element_field)))
                }
                _ => Err(fault(
                    node.line,
                    format!("field \"{path}\": an array type must have exactly one element"),
                )),
            },
            NodeValue::Table(entries) => Ok(FieldKind::Object(self.fields(entries, path)?)),
            _ => Err(fault(
                node.line,
                format!(
                    "field \"{path}\": expected a type name, an array or a table, found {}",
                    node.describe()
                ),
            )),
        }
    }
}

fn check_field_name(name: &str, path: &str, top: bool, line: Option<usize>) -> Result<(), Fault> {
    let mut chars = name.chars();
    let well_formed = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err(fault(
            line,
            format!(
                "field \"{path}\": a field name must start with a letter or _ and contain only A-Z, a-z, 0-9 and _"
            ),
        ));
    }
    // Nested objects may reuse these names: only the document's own level holds system fields.
    if top && SYSTEM_FIELDS.contains(&name) {
        return Err(fault(
            line,
            format!("field \"{path}\": \"{name}\" is a system field the server maintains"),
        ));
    }
    Ok(())
}

fn scalar_type(path: &str, name: &str, line: Option<usize>) -> Result<ScalarType, Fault> {
    match name {
        "String" => Ok(ScalarType::String),
        "Number" => Ok(ScalarType::Number),
        "Boolean" => Ok(ScalarType::Boolean),
        "Date" => Ok(ScalarType::Date),
        "ObjectId" => Ok(ScalarType::ObjectId),
        "Mixed" => Ok(ScalarType::Mixed),
        other => Err(fault(
            line,
            format!(
                "field \"{path}\": unknown type \"{other}\" (expected String, Number, Boolean, Date, ObjectId or Mixed)"
            ),
        )),
    }
}

//! The meaning of a model file's tree — `name`, `[fields]`, `[perms]`, `[options]` — turned
//! into a `Model`, with the offending line and name in every error.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use crate::cast::{cast, format_date, parse_date};
use crate::document::SYSTEM_FIELDS;
use crate::node::{Node, NodeValue};
use crate::schema::{
    AdvancedQueries, Field, FieldKind, FieldOptions, IndexKind, Model, ModelOptions, Perms,
    ScalarType, Strict,
};
use crate::validate::{is_date_now, validate_value};

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
}

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
    Ok(ParsedModel {
        model,
        field_lines: parser.field_lines,
    })
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
        if group.is_empty()
            || !group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
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
            "callable" => options.callable = callable(value)?,
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

fn callable(node: &Node) -> Result<Vec<String>, Fault> {
    let err = || fault(node.line, "option \"callable\" must be an array of strings");
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

/// Walks `[fields]`, remembering where each field path was defined.
#[derive(Default)]
struct FileParser {
    field_lines: BTreeMap<String, usize>,
}

impl FileParser {
    fn fields(&mut self, entries: &[(String, Node)], prefix: &str) -> Result<Vec<Field>, Fault> {
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

/// Reads the options of a typed field, checking each value's own type; whether an option
/// fits the field's type is `finish`'s job.
fn field_options(path: &str, entries: &[(String, Node)]) -> Result<FieldOptions, Fault> {
    let mut opts = FieldOptions::default();
    for (key, node) in entries {
        let what = format!("field \"{path}\": option \"{key}\"");
        let wrong = |expected: &str| {
            fault(
                node.line,
                format!("{what} must be {expected}, found {}", node.describe()),
            )
        };
        match key.as_str() {
            "type" => {}
            "required" => opts.required = bool_of(node, &what)?,
            "unique" => opts.unique = bool_of(node, &what)?,
            "lowercase" => opts.lowercase = bool_of(node, &what)?,
            "uppercase" => opts.uppercase = bool_of(node, &what)?,
            "trim" => opts.trim = bool_of(node, &what)?,
            "private" => opts.private = bool_of(node, &what)?,
            "index" => {
                opts.index = match &node.value {
                    NodeValue::Bool(true) => IndexKind::Normal,
                    NodeValue::Bool(false) => IndexKind::None,
                    NodeValue::Str(s) if s == "text" => IndexKind::Text,
                    _ => return Err(wrong("true, false or \"text\"")),
                }
            }
            "default" => opts.default = Some(node.to_json()),
            "enum" => match node.to_json() {
                Value::Array(values) => opts.enum_values = Some(values),
                _ => return Err(wrong("an array")),
            },
            "min" | "max" => {
                let bound = match &node.value {
                    NodeValue::Number(_) | NodeValue::Str(_) => node.to_json(),
                    _ => return Err(wrong("a number or a date string")),
                };
                if key == "min" {
                    opts.min = Some(bound);
                } else {
                    opts.max = Some(bound);
                }
            }
            "minlength" | "maxlength" => {
                let length = match &node.value {
                    NodeValue::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
                    _ => None,
                }
                .ok_or_else(|| wrong("a non-negative integer"))?;
                if key == "minlength" {
                    opts.minlength = Some(length);
                } else {
                    opts.maxlength = Some(length);
                }
            }
            "match" => {
                let NodeValue::Str(source) = &node.value else {
                    return Err(wrong("a regular expression string"));
                };
                let pattern = Regex::new(source).map_err(|e| {
                    // The regex crate draws the pattern with a caret over several lines; its
                    // last line is the diagnosis, which is what fits a one-line error.
                    let text = e.to_string();
                    let cause = text.lines().last().unwrap_or_default();
                    let cause = cause.strip_prefix("error: ").unwrap_or(cause);
                    fault(
                        node.line,
                        format!("{what} is not a valid regular expression: {cause}"),
                    )
                })?;
                opts.pattern = Some(pattern);
            }
            "link" | "map_to" => {
                let text = match &node.value {
                    NodeValue::Str(s) if !s.is_empty() => s.clone(),
                    _ => return Err(wrong("a non-empty string")),
                };
                if key == "link" {
                    opts.link = Some(text);
                } else {
                    opts.map_to = Some(text);
                }
            }
            other => {
                return Err(fault(
                    node.line,
                    format!("field \"{path}\": unknown option \"{other}\""),
                ));
            }
        }
    }
    Ok(opts)
}

/// Splits the options of an array field between the array and its element. Options about
/// the path (index, unique, link, map_to, private) end up on both, because the store, the
/// populate code and the public view read them off the field at that path; options about
/// each value (enum, bounds, lengths, match, transforms) belong to the element, where
/// validation applies them. `required` and `default` stay where they were written.
fn share_array_options(outer: &mut FieldOptions, element: &mut FieldOptions) {
    fn share<T: Clone>(a: &mut Option<T>, b: &mut Option<T>) {
        if a.is_none() {
            a.clone_from(b);
        } else if b.is_none() {
            b.clone_from(a);
        }
    }
    outer.unique |= element.unique;
    element.unique = outer.unique;
    outer.private |= element.private;
    element.private = outer.private;
    if outer.index == IndexKind::None {
        outer.index = element.index;
    } else if element.index == IndexKind::None {
        element.index = outer.index;
    }
    share(&mut outer.link, &mut element.link);
    share(&mut outer.map_to, &mut element.map_to);

    fn take<T>(from: &mut Option<T>, to: &mut Option<T>) {
        if let Some(v) = from.take() {
            to.get_or_insert(v);
        }
    }
    take(&mut outer.enum_values, &mut element.enum_values);
    take(&mut outer.min, &mut element.min);
    take(&mut outer.max, &mut element.max);
    take(&mut outer.minlength, &mut element.minlength);
    take(&mut outer.maxlength, &mut element.maxlength);
    take(&mut outer.pattern, &mut element.pattern);
    element.lowercase |= std::mem::take(&mut outer.lowercase);
    element.uppercase |= std::mem::take(&mut outer.uppercase);
    element.trim |= std::mem::take(&mut outer.trim);
}

/// Checks that each option fits the field's type, and brings `enum`, `min`/`max` and
/// `default` into the form validation compares against. Running it twice changes nothing.
fn finish(field: &mut Field, path: &str, line: Option<usize>) -> Result<(), Fault> {
    let err = |reason: String| Err(fault(line, format!("field \"{path}\": {reason}")));
    let scalar = match &field.kind {
        FieldKind::Scalar(ty) => Some(*ty),
        _ => None,
    };
    let element_scalar = field.kind.scalar();
    let opts = &mut field.options;

    if opts.index == IndexKind::Text && element_scalar != Some(ScalarType::String) {
        return err("index = \"text\" needs a String field".to_owned());
    }
    if opts.link.is_some() && element_scalar != Some(ScalarType::ObjectId) {
        return err("option \"link\" needs an ObjectId field".to_owned());
    }
    if opts.map_to.is_some() && opts.link.is_none() {
        return err("option \"map_to\" needs \"link\"".to_owned());
    }
    let string_only = [
        ("minlength", opts.minlength.is_some()),
        ("maxlength", opts.maxlength.is_some()),
        ("match", opts.pattern.is_some()),
        ("lowercase", opts.lowercase),
        ("uppercase", opts.uppercase),
        ("trim", opts.trim),
    ];
    if scalar != Some(ScalarType::String)
        && let Some((name, _)) = string_only.iter().find(|(_, set)| *set)
    {
        return err(format!("option \"{name}\" applies only to String fields"));
    }
    for (name, bound) in [("min", &mut opts.min), ("max", &mut opts.max)] {
        let Some(value) = bound else { continue };
        match scalar {
            Some(ScalarType::Number) if value.is_number() => {}
            Some(ScalarType::Number) => return err(format!("option \"{name}\" must be a number")),
            Some(ScalarType::Date) => match parse_date(value) {
                Some(date) => *value = Value::String(format_date(date)),
                None => return err(format!("option \"{name}\" must be a date")),
            },
            _ => {
                return err(format!(
                    "option \"{name}\" applies only to Number and Date fields"
                ));
            }
        }
    }
    if let Some(values) = &mut opts.enum_values {
        match field.kind {
            FieldKind::Scalar(ScalarType::Mixed) => {}
            FieldKind::Scalar(ty) => {
                for value in values.iter_mut() {
                    if value.is_null() {
                        continue;
                    }
                    match cast(ty, value) {
                        Some(cast_value) => *value = cast_value,
                        None => {
                            return err(format!("enum value {value} is not a {}", ty.name()));
                        }
                    }
                }
            }
            _ => return err("option \"enum\" needs a scalar field".to_owned()),
        }
    }
    if let Some(default) = field.options.default.clone()
        && !is_date_now(field, &default)
    {
        let mut value = default;
        validate_value(field, &mut value, path, Strict::Throw).or_else(|e| {
            err(format!(
                "default{}: {}",
                shown_path(&e.field, path),
                e.reason
            ))
        })?;
        field.options.default = Some(value);
    }
    Ok(())
}

/// The part of a validation error's path below the field, so a default's error names the
/// element or key at fault.
fn shown_path(error_path: &str, path: &str) -> String {
    error_path
        .strip_prefix(path)
        .map(|rest| rest.trim_start_matches('.'))
        .filter(|rest| !rest.is_empty())
        .map(|rest| format!(" (at {rest})"))
        .unwrap_or_default()
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
pub(crate) mod tests {
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
        let err = parse_model_json("test", Path::new("t.json"), r#"{"fields": {"x": "Strng"}}"#)
            .unwrap_err();
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
}

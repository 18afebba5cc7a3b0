//! A model file as a plain tree with line numbers, so TOML and JSON files go through one
//! interpreter and semantic errors can point at the line that caused them.

use serde_json::{Map, Number, Value};
use toml::de::{DeTable, DeValue};

/// One value of a model file and the line it was written on: the key's line for a table
/// entry, the element's line for an array item, `None` where the format gives no positions.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub line: Option<usize>,
    pub value: NodeValue,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeValue {
    Null,
    Bool(bool),
    Number(Number),
    /// Strings, and TOML datetimes in their written form.
    Str(String),
    Array(Vec<Node>),
    /// Entries in file order.
    Table(Vec<(String, Node)>),
}

/// A file that does not parse: where (if the parser knows) and the parser's message.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub line: Option<usize>,
    pub message: String,
}

impl Node {
    /// What kind of value this is, for error messages ("found a number").
    pub fn describe(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::Array(_) => "an array",
            NodeValue::Table(_) => "a table",
        }
    }

    /// The value as JSON, for options kept as written (`default`, `enum`, `query_limits`).
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => Value::Number(n.clone()),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::Array(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Table(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

/// Parses TOML text, keeping the line of every key and array element.
pub(crate) fn from_toml(text: &str) -> Result<Node, SyntaxError> {
    let root = DeTable::parse(text).map_err(|e| SyntaxError {
        line: e.span().map(|span| line_at(text, span.start)),
        message: e.message().trim_end().to_owned(),
    })?;
    table_node(text, root.get_ref(), Some(1))
}

/// Parses JSON text. serde_json gives no positions for values, so the nodes carry no lines.
pub(crate) fn from_json(text: &str) -> Result<Node, SyntaxError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // The message ends with the position, which the error already reports as its line.
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        SyntaxError {
            line: (e.line() > 0).then_some(e.line()),
            message: full.strip_suffix(&suffix).unwrap_or(&full).to_owned(),
        }
    })?;
    Ok(json_node(&value))
}

fn table_node(text: &str, table: &DeTable<'_>, line: Option<usize>) -> Result<Node, SyntaxError> {
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in table {
        let key_line = Some(line_at(text, key.span().start));
        let node = value_node(text, key.get_ref(), value.get_ref(), key_line)?;
        entries.push((key.get_ref().to_string(), node));
    }
    Ok(Node {
        line,
        value: NodeValue::Table(entries),
    })
}

/// Converts one TOML value; `key` names the entry in the errors numbers can raise.
fn value_node(
    text: &str,
    key: &str,
    value: &DeValue<'_>,
    line: Option<usize>,
) -> Result<Node, SyntaxError> {
    let bad_number = |what: &str| SyntaxError {
        line,
        message: format!("\"{key}\": {what}"),
    };
    let value = match value {
        DeValue::String(s) => NodeValue::Str(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(|n| NodeValue::Number(n.into()))
            .map_err(|_| bad_number("integer out of range"))?,
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(NodeValue::Number)
            .ok_or_else(|| bad_number("not a finite number"))?,
        DeValue::Boolean(b) => NodeValue::Bool(*b),
        DeValue::Datetime(d) => NodeValue::Str(d.to_string()),
        DeValue::Array(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            for item in items {
                let item_line = Some(line_at(text, item.span().start));
                nodes.push(value_node(text, key, item.get_ref(), item_line)?);
            }
            NodeValue::Array(nodes)
        }
        DeValue::Table(table) => return table_node(text, table, line),
    };
    Ok(Node { line, value })
}

fn json_node(value: &Value) -> Node {
    let value = match value {
        Value::Null => NodeValue::Null,
        Value::Bool(b) => NodeValue::Bool(*b),
        Value::Number(n) => NodeValue::Number(n.clone()),
        Value::String(s) => NodeValue::Str(s.clone()),
        Value::Array(items) => NodeValue::Array(items.iter().map(json_node).collect()),
        Value::Object(map) => {
            NodeValue::Table(map.iter().map(|(k, v)| (k.clone(), json_node(v))).collect())
        }
    };
    Node { line: None, value }
}

/// The 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    1 + text.bytes().take(offset).filter(|b| *b == b'\n').count()
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_and_elements_carry_their_lines() {
        let text = "name = \"X\"\n\n[fields]\nfoo = \"String\"\ntags = [\n  \"a\",\n  \"b\",\n]\n";
        let root = from_toml(text).unwrap();
        let NodeValue::Table(top) = &root.value else {
            panic!("not a table")
        };
        assert_eq!(top[0].1.line, Some(1));
        let NodeValue::Table(fields) = &top[1].1.value else {
            panic!("fields not a table")
        };
        assert_eq!(fields[0].0, "foo");
        assert_eq!(fields[0].1.line, Some(4));
        let NodeValue::Array(items) = &fields[1].1.value else {
            panic!("tags not an array")
        };
        assert_eq!(items[1].line, Some(7));
    }

    #[test]
    fn syntax_errors_have_lines() {
        let err = from_toml("a = 1\nb = \n").unwrap_err();
        assert_eq!(err.line, Some(2));
        let err = from_toml("a = 1\na = 2\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{}", err.message);
        let err = from_json("{\n\"a\": 1,\n}").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(!err.message.contains("line"), "{}", err.message);
    }

    #[test]
    fn converts_to_json() {
        let root = from_toml("a = [1, 2.5, true, \"x\"]\nb = { c = 1979-05-27 }\n").unwrap();
        assert_eq!(
            root.to_json(),
            serde_json::json!({"a": [1, 2.5, true, "x"], "b": {"c": "1979-05-27"}})
        );
    }
}

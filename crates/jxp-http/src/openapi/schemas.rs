//! A model as JSON Schema (the 2020-12 dialect OpenAPI 3.1 uses): the document as the API
//! answers it, the body that creates one and the body that updates one. Types, `required`,
//! `enum`, bounds and patterns come from the model file; a `link` is an ObjectId, and the key
//! where `populate` puts the linked document is a `$ref` to that model's schema.

use jxp_model::{Field, FieldKind, Model, ScalarType, Schema};
use serde_json::{Map, Value, json};

/// A 24-hex-character ObjectId.
pub(super) const OBJECT_ID: &str = "^[0-9a-fA-F]{24}$";

/// Which of a model's three shapes is described.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// As GET answers it: system fields, no private field.
    Document,
    /// A POST body: the model's fields, `required` as the model says, passwords included.
    Create,
    /// A PUT body: any subset of the fields.
    Update,
}

impl Shape {
    /// The component name of `model` in this shape; slugs are lower case, so these never
    /// meet the fixed components, which are capitalised.
    pub(super) fn name(self, model: &Model) -> String {
        match self {
            Shape::Document => model.slug.clone(),
            Shape::Create => format!("{}.create", model.slug),
            Shape::Update => format!("{}.update", model.slug),
        }
    }
}

/// The schema of `model` in `shape`.
pub(super) fn model_schema(schema: &Schema, model: &Model, shape: Shape) -> Value {
    let mut out = object(schema, &model.fields, shape);
    if shape == Shape::Document
        && let Some(obj) = out.as_object_mut()
    {
        let mut props = system_fields();
        if let Some(Value::Object(fields)) = obj.remove("properties") {
            props.extend(fields);
        }
        for (key, value) in populated(schema, model) {
            props.entry(key).or_insert(value);
        }
        obj.insert("properties".into(), Value::Object(props));
        let mut required = vec![json!("_id")];
        if let Some(Value::Array(r)) = obj.remove("required") {
            required.extend(r);
        }
        obj.insert("required".into(), Value::Array(required));
        obj.insert(
            "description".into(),
            json!(format!(
                "A {} document as the API answers it (private fields never appear; `fields=` narrows it).",
                model.name
            )),
        );
    }
    out
}

/// The fields every document has, set by the server.
fn system_fields() -> Map<String, Value> {
    let id = json!({ "type": "string", "pattern": OBJECT_ID, "readOnly": true });
    let date = json!({ "type": "string", "format": "date-time", "readOnly": true });
    let mut m = Map::new();
    m.insert("_id".into(), id.clone());
    m.insert("id".into(), id.clone());
    m.insert("_owner_id".into(), nullable(id.clone()));
    m.insert("_updated_by_id".into(), nullable(id));
    m.insert(
        "_deleted".into(),
        json!({ "type": "boolean", "readOnly": true }),
    );
    m.insert("createdAt".into(), date.clone());
    m.insert("updatedAt".into(), date);
    m.insert(
        "__v".into(),
        json!({ "type": "integer", "minimum": 0, "readOnly": true }),
    );
    m
}

fn object(schema: &Schema, fields: &[Field], shape: Shape) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in fields {
        if shape == Shape::Document && f.is_private() {
            continue;
        }
        props.insert(f.name.clone(), field(schema, f, shape));
        // An owner-only field is missing from what other readers get, so it is never required
        // of a document.
        let owner_only = shape == Shape::Document && f.is_owner_only();
        if f.options.required && shape != Shape::Update && !owner_only {
            required.push(Value::String(f.name.clone()));
        }
    }
    let mut out = json!({ "type": "object", "properties": props });
    if !required.is_empty() {
        out["required"] = Value::Array(required);
    }
    out
}

fn field(schema: &Schema, f: &Field, shape: Shape) -> Value {
    let value = match &f.kind {
        FieldKind::Scalar(t) => scalar(schema, f, *t),
        FieldKind::Array(inner) => json!({ "type": "array", "items": field(schema, inner, shape) }),
        FieldKind::Object(children) => object(schema, children, shape),
    };
    // A field that is not required may be sent, and so stored and answered, as null.
    if f.options.required || matches!(f.kind, FieldKind::Scalar(ScalarType::Mixed)) {
        value
    } else {
        nullable(value)
    }
}

fn scalar(schema: &Schema, f: &Field, t: ScalarType) -> Value {
    let o = &f.options;
    let mut out = Map::new();
    match t {
        ScalarType::String => {
            out.insert("type".into(), json!("string"));
            if let Some(n) = o.minlength {
                out.insert("minLength".into(), json!(n));
            }
            if let Some(n) = o.maxlength {
                out.insert("maxLength".into(), json!(n));
            }
            if let Some(p) = &o.pattern {
                out.insert("pattern".into(), json!(p.as_str()));
            }
        }
        ScalarType::Number => {
            out.insert("type".into(), json!("number"));
            if let Some(v) = o.min.as_ref().filter(|v| v.is_number()) {
                out.insert("minimum".into(), v.clone());
            }
            if let Some(v) = o.max.as_ref().filter(|v| v.is_number()) {
                out.insert("maximum".into(), v.clone());
            }
        }
        ScalarType::Boolean => {
            out.insert("type".into(), json!("boolean"));
        }
        ScalarType::Date => {
            out.insert("type".into(), json!("string"));
            out.insert("format".into(), json!("date-time"));
            let bounds = [("min", &o.min), ("max", &o.max)];
            let said: Vec<String> = bounds
                .iter()
                .filter_map(|(n, v)| v.as_ref().map(|v| format!("{n} {v}")))
                .collect();
            if !said.is_empty() {
                out.insert("description".into(), json!(said.join(", ")));
            }
        }
        ScalarType::ObjectId => {
            out.insert("type".into(), json!("string"));
            out.insert("pattern".into(), json!(OBJECT_ID));
        }
        ScalarType::Mixed => {}
    }
    if let Some(values) = &o.enum_values {
        out.insert("enum".into(), Value::Array(values.clone()));
    }
    if let Some(d) = &o.default {
        out.insert("default".into(), d.clone());
    }
    if f.is_password() {
        out.insert("format".into(), json!("password"));
        out.insert("writeOnly".into(), json!(true));
    }
    let mut value = Value::Object(out);
    if let Some(target) = o.link.as_deref().and_then(|l| schema.by_link(l)) {
        value["x-link"] = json!(target.slug);
        value["description"] = json!(format!("The id of a {}.", target.name));
    }
    value
}

/// The keys `populate` adds to a document: each top-level link field's linked documents under
/// its `map_to` (or the linked model's name in lower case), and the creator and last updater
/// under `_owner` and `_updated_by`, as `jxp_query`'s populate names them.
fn populated(schema: &Schema, model: &Model) -> Map<String, Value> {
    let mut out = Map::new();
    let doc_ref =
        |target: &Model| json!({ "$ref": format!("#/components/schemas/{}", target.slug) });
    for f in model.fields.iter().filter(|f| !f.is_private()) {
        let element = match &f.kind {
            FieldKind::Array(inner) => inner.as_ref(),
            _ => f,
        };
        let Some(link) = element.options.link.as_deref() else {
            continue;
        };
        let Some(target) = schema.by_link(link) else {
            continue;
        };
        let key = element
            .options
            .map_to
            .clone()
            .unwrap_or_else(|| link.to_ascii_lowercase());
        let one = doc_ref(target);
        let value = if f.kind.is_array() {
            json!({ "type": "array", "items": one })
        } else {
            json!({ "anyOf": [one, { "type": "null" }] })
        };
        out.entry(key).or_insert(json!({
            "allOf": [value],
            "readOnly": true,
            "description": format!("With populate: the {} that {} names.", target.name, f.name),
        }));
    }
    if let Some(user) = schema.get("user") {
        for key in ["_owner", "_updated_by"] {
            out.entry(key.to_owned()).or_insert(json!({
                "allOf": [{ "anyOf": [doc_ref(user), { "type": "null" }] }],
                "readOnly": true,
                "description": "With populate: the user.",
            }));
        }
    }
    out
}

/// `value`, or null. A `type` gains `"null"` (and an `enum` the null value); anything else is
/// wrapped in `anyOf`.
fn nullable(mut value: Value) -> Value {
    let Some(obj) = value.as_object_mut() else {
        return value;
    };
    match obj.get("type").cloned() {
        Some(Value::String(t)) if !obj.contains_key("anyOf") => {
            obj.insert("type".into(), json!([t, "null"]));
            if let Some(Value::Array(values)) = obj.get_mut("enum")
                && !values.contains(&Value::Null)
            {
                values.push(Value::Null);
            }
            value
        }
        _ => json!({ "anyOf": [value, { "type": "null" }] }),
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("thing.toml"),
            r#"name = "Thing"
[fields]
title = { type = "String", required = true, minlength = 2, maxlength = 10, match = "^[a-z]+$" }
kind = { type = "String", enum = ["a", "b"] }
n = { type = "Number", min = 0, max = 5 }
tags = ["String"]
owner = { type = "ObjectId", link = "User" }
secret = { type = "String", private = true }
[perms]
all = "r"
"#,
        )
        .unwrap();
        jxp_model::load_dir(dir.path()).unwrap()
    }

    #[test]
    fn a_model_becomes_a_json_schema_with_its_rules() {
        let schema = schema();
        let model = schema.get("thing").unwrap();
        let doc = model_schema(&schema, model, Shape::Document);
        let props = &doc["properties"];
        assert_eq!(doc["required"], json!(["_id", "title"]));
        assert_eq!(
            props["title"],
            json!({ "type": "string", "minLength": 2, "maxLength": 10, "pattern": "^[a-z]+$" })
        );
        assert_eq!(
            props["kind"],
            json!({ "type": ["string", "null"], "enum": ["a", "b", null] })
        );
        assert_eq!(props["n"]["minimum"], json!(0));
        assert_eq!(props["n"]["maximum"], json!(5));
        assert_eq!(props["tags"]["type"], json!(["array", "null"]));
        assert_eq!(props["owner"]["x-link"], json!("user"));
        assert_eq!(
            props["user"]["allOf"][0]["anyOf"][0]["$ref"],
            json!("#/components/schemas/user")
        );
        assert!(
            props.get("secret").is_none(),
            "private fields are never answered"
        );
        assert_eq!(props["_id"]["pattern"], json!(OBJECT_ID));

        let create = model_schema(&schema, model, Shape::Create);
        assert!(create["properties"].get("secret").is_some());
        assert!(create["properties"].get("_id").is_none());
        assert_eq!(create["required"], json!(["title"]));
        let update = model_schema(&schema, model, Shape::Update);
        assert!(update.get("required").is_none());
    }
}

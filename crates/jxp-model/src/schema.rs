//! The parsed form of model files: a `Schema` of `Model`s, each with typed fields, perms and
//! options. Every identifier the store puts into SQL (table names, JSON paths) comes from here,
//! and the loader only admits names made of `[A-Za-z0-9_]`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// All models of one server, keyed by slug (the lower-case URL name).
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub models: BTreeMap<String, Arc<Model>>,
}

impl Schema {
    /// The model served at `/api/<slug>`.
    pub fn get(&self, slug: &str) -> Option<&Arc<Model>> {
        self.models.get(slug)
    }

    /// The model a `link = "Name"` refers to: matched on the display name first (as JXP
    /// does), then on the slug.
    pub fn by_link(&self, link: &str) -> Option<&Arc<Model>> {
        self.models
            .values()
            .find(|m| m.name == link)
            .or_else(|| self.models.get(&link.to_ascii_lowercase()))
    }

    /// Every `(model, field path)` whose field links to `target`: the referrers checked before
    /// a delete and followed by a cascade. Paths are dotted (`address.owner_id`); a path into
    /// an array of ids is included with `array = true`.
    pub fn referrers_of(&self, target: &Model) -> Vec<(Arc<Model>, String, bool)> {
        let mut out = Vec::new();
        for model in self.models.values() {
            for (path, field, array) in model.leaf_fields() {
                if let Some(link) = &field.options.link
                    && self.by_link(link).is_some_and(|m| m.slug == target.slug)
                {
                    out.push((model.clone(), path, array));
                }
            }
        }
        out
    }
}

/// One model file.
#[derive(Debug, Clone)]
pub struct Model {
    /// Lower-case URL name, from the file name (`models/test.toml` → `test`).
    pub slug: String,
    /// Display name used by `link` (`name = "Test"`); defaults to the slug with a capital.
    pub name: String,
    /// Fields in file order.
    pub fields: Vec<Field>,
    pub perms: Perms,
    pub options: ModelOptions,
    /// Whether this is one of the built-in models (`user`, `apikey`, …) loaded by default.
    pub builtin: bool,
}

impl Model {
    /// The top-level field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field at a dotted path (`address.city`), descending through nested objects and
    /// into the element type of arrays (`composite_array.abar`).
    pub fn field_at(&self, path: &str) -> Option<&Field> {
        let mut fields = &self.fields;
        let mut found: Option<&Field> = None;
        for part in path.split('.') {
            let field = fields.iter().find(|f| f.name == part)?;
            found = Some(field);
            fields = match field.kind.element() {
                FieldKind::Object(children) => children,
                _ => &EMPTY,
            };
        }
        found
    }

    /// Whether a top-level field is `private = "owner"`, so what a reader sees of a document
    /// depends on whose it is.
    pub fn has_owner_only(&self) -> bool {
        self.fields.iter().any(Field::is_owner_only)
    }

    /// Every scalar leaf as `(dotted path, field, inside an array)`, depth first.
    pub fn leaf_fields(&self) -> Vec<(String, &Field, bool)> {
        fn walk<'a>(
            prefix: &str,
            fields: &'a [Field],
            in_array: bool,
            out: &mut Vec<(String, &'a Field, bool)>,
        ) {
            for f in fields {
                let path = if prefix.is_empty() {
                    f.name.clone()
                } else {
                    format!("{prefix}.{}", f.name)
                };
                let array = in_array || matches!(f.kind, FieldKind::Array(_));
                match f.kind.element() {
                    FieldKind::Object(children) => walk(&path, children, array, out),
                    _ => out.push((path, f, array)),
                }
            }
        }
        let mut out = Vec::new();
        walk("", &self.fields, false, &mut out);
        out
    }
}

static EMPTY: Vec<Field> = Vec::new();

/// One field of a model (or of a nested object).
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    pub options: FieldOptions,
}

impl Field {
    /// Private fields (and every field called `password`) never leave the core.
    pub fn is_private(&self) -> bool {
        self.options.private || self.name == "password"
    }

    /// Whether the field is shown only to admins and the document's owner.
    pub fn is_owner_only(&self) -> bool {
        self.options.owner_only && !self.is_private()
    }

    /// A `password` field is stored as a bcrypt hash.
    pub fn is_password(&self) -> bool {
        self.name == "password"
    }
}

/// The scalar types of SPEC §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    String,
    Number,
    Boolean,
    Date,
    ObjectId,
    Mixed,
}

impl ScalarType {
    pub fn name(self) -> &'static str {
        match self {
            ScalarType::String => "String",
            ScalarType::Number => "Number",
            ScalarType::Boolean => "Boolean",
            ScalarType::Date => "Date",
            ScalarType::ObjectId => "ObjectId",
            ScalarType::Mixed => "Mixed",
        }
    }
}

/// The shape of a field's value.
#[derive(Debug, Clone)]
pub enum FieldKind {
    Scalar(ScalarType),
    /// `["String"]`, `[{ type = "ObjectId", link = … }]` or `[{ afoo = "String" }]`; the
    /// element's options live on the element's `Field` (its `name` is the parent's).
    Array(Box<Field>),
    /// A table without `type`: a nested object with its own fields.
    Object(Vec<Field>),
}

impl FieldKind {
    /// The element kind for arrays, the kind itself otherwise.
    pub fn element(&self) -> &FieldKind {
        match self {
            FieldKind::Array(inner) => &inner.kind,
            other => other,
        }
    }

    /// The scalar type of this field or of its array elements.
    pub fn scalar(&self) -> Option<ScalarType> {
        match self.element() {
            FieldKind::Scalar(t) => Some(*t),
            _ => None,
        }
    }

    pub fn is_array(&self) -> bool {
        matches!(self, FieldKind::Array(_))
    }
}

/// Which index a field asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexKind {
    #[default]
    None,
    /// `index = true`: an ordinary index.
    Normal,
    /// `index = "text"`: part of the model's full-text index.
    Text,
}

/// Field options of SPEC §2, as Mongoose names them.
#[derive(Debug, Clone, Default)]
pub struct FieldOptions {
    pub required: bool,
    pub unique: bool,
    pub index: IndexKind,
    pub default: Option<Value>,
    pub enum_values: Option<Vec<Value>>,
    pub min: Option<Value>,
    pub max: Option<Value>,
    pub minlength: Option<usize>,
    pub maxlength: Option<usize>,
    /// Compiled from `match`.
    pub pattern: Option<regex::Regex>,
    pub lowercase: bool,
    pub uppercase: bool,
    pub trim: bool,
    /// Display name of the linked model.
    pub link: Option<String>,
    pub map_to: Option<String>,
    pub private: bool,
    /// `private = "owner"`: shown only to admins and to the document's owner (`_owner_id`; a
    /// user owns their own record), and refused in the filters and sorts of anyone else.
    pub owner_only: bool,
}

/// Per-group permission letters (`crud`), as written in `[perms]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Perms {
    /// Group name → letters, in file order; groups include `all`, `user`, `owner`, `admin`
    /// and custom groups.
    pub groups: Vec<(String, String)>,
}

impl Perms {
    /// No perms at all: the model is not served.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether `group` has `letter` (one of `c`, `r`, `u`, `d`).
    pub fn allows(&self, group: &str, letter: char) -> bool {
        self.groups
            .iter()
            .any(|(g, letters)| g == group && letters.contains(letter))
    }
}

/// What happens to fields not in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strict {
    /// Dropped silently (Mongoose's default).
    #[default]
    Drop,
    /// Rejected with 400 (`strict = "throw"`).
    Throw,
}

/// `advanced_queries = { query, aggregate, bulkwrite }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvancedQueries {
    pub query: bool,
    pub aggregate: bool,
    pub bulkwrite: bool,
}

impl Default for AdvancedQueries {
    fn default() -> Self {
        AdvancedQueries {
            query: true,
            aggregate: true,
            // JXP: bulk writes are for admins unless a model opts in.
            bulkwrite: false,
        }
    }
}

/// `[options]` of a model file.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    pub internal: bool,
    pub soft_delete: bool,
    pub strict: Strict,
    pub advanced_queries: AdvancedQueries,
    /// Per-model query limits (`query_limits = { max = 500, ... }`), kept as written; the
    /// query layer interprets them.
    pub query_limits: Option<serde_json::Map<String, Value>>,
    pub callable: Vec<String>,
    /// Custom groups `[perms]` may name (`groups = ["editors"]`), declared so that a group
    /// that is neither built-in nor declared, most often a misspelling, is a warning.
    pub groups: Vec<String>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            internal: false,
            soft_delete: true,
            strict: Strict::Drop,
            advanced_queries: AdvancedQueries::default(),
            query_limits: None,
            callable: Vec::new(),
            groups: Vec::new(),
        }
    }
}

//! The five MCP tools, JXP's names and arguments: `jxp_list_models`, `jxp_describe_model`,
//! `jxp_find`, `jxp_count` and `jxp_export_csv`. Each turns its arguments into the list
//! request `GET /api/:model` would parse and calls the same `App` read as that route, so the
//! permissions, owner rules, private fields, read hooks and query limits are REST's; MCP adds
//! only its own limits (`MCP_DEFAULT_LIMIT`, `MCP_MAX_LIMIT`, `MCP_MAX_RESPONSE_SIZE`).

use std::sync::Arc;

use jxp_core::{Access, CoreError, Identity, ListRequest};
use jxp_model::{FieldKind, IndexKind, Model};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::McpSettings;
use super::visible::readable;
use crate::AppState;
use crate::error::ApiError;
use crate::routes::{csv_columns, csv_render, fields_json, list_request};

/// Why a tool call produced no answer; its text is what the MCP client shows.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ToolError {
    #[error("{0}")]
    Arguments(String),
    #[error("{} ({}): {}", .0.status.canonical_reason().unwrap_or("Error"), .0.status.as_u16(), .0.message)]
    Api(ApiError),
    #[error(
        "the answer would be {len} bytes, over the MCP limit of {max}: ask for fewer fields or a smaller limit"
    )]
    TooLarge { len: usize, max: u64 },
}

impl From<CoreError> for ToolError {
    fn from(e: CoreError) -> Self {
        ToolError::Api(e.into())
    }
}

impl From<ApiError> for ToolError {
    fn from(e: ApiError) -> Self {
        ToolError::Api(e)
    }
}

/// The tool names, in the order `tools/list` answers them.
pub(crate) const NAMES: [&str; 5] = [
    "jxp_list_models",
    "jxp_describe_model",
    "jxp_find",
    "jxp_count",
    "jxp_export_csv",
];

/// The tools' definitions for `tools/list`.
pub(crate) fn definitions() -> Vec<Tool> {
    let model =
        json!({"type": "string", "description": "The model's slug, as jxp_list_models names it."});
    let filter = json!({"type": "object", "description": "A MongoDB-style filter, e.g. {\"status\": \"active\"} or {\"n\": {\"$gte\": 3}}."});
    let search =
        json!({"type": "string", "description": "Words to find in the model's full-text index."});
    let fields = json!({"type": "string", "description": "Comma-separated fields to return, e.g. \"_id,name\"."});
    let sort = json!({"type": "string", "description": "A field to sort on; a leading - sorts descending."});
    let limit = json!({"type": "integer", "minimum": 1, "description": "Documents per page (the MCP default when absent, at most the MCP maximum)."});
    let page = json!({"type": "integer", "minimum": 1, "description": "Page number, from 1."});
    let skip = json!({"type": "integer", "minimum": 0, "description": "Documents to skip: a whole number of pages."});
    let populate = json!({"description": "Link fields to expand: \"author\", or {\"author\": \"name,email\"}.", "anyOf": [{"type": "string"}, {"type": "object"}]});
    let id = json!({"type": "string", "description": "One document's id; list arguments other than fields and populate are ignored."});
    let list_props = |extra: &[(&str, &Value)]| {
        let mut props = Map::new();
        for (k, v) in [
            ("model", &model),
            ("filter", &filter),
            ("search", &search),
            ("fields", &fields),
            ("sort", &sort),
            ("limit", &limit),
            ("page", &page),
            ("skip", &skip),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            props.insert(k.to_owned(), v.clone());
        }
        schema(Value::Object(props), &["model"])
    };
    let count_props = {
        let mut props = Map::new();
        props.insert("model".into(), model.clone());
        props.insert("filter".into(), filter.clone());
        props.insert("search".into(), search.clone());
        schema(Value::Object(props), &["model"])
    };
    let read_only = ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false);
    [
        Tool::new(
            NAMES[0],
            "The models you may read through MCP, with their names and whether you see every document or only your own.",
            schema(json!({}), &[]),
        ),
        Tool::new(
            NAMES[1],
            "One model's fields and types, which are indexed, which link to other models (what populate expands) and whether it has full-text search.",
            schema(json!({ "model": model }), &["model"]),
        ),
        Tool::new(
            NAMES[2],
            "A page of documents of a model, or one by id, as GET /api/<model> answers them. Always pass fields and a small limit.",
            list_props(&[("populate", &populate), ("id", &id)]),
        ),
        Tool::new(
            NAMES[3],
            "How many documents of a model you may see that match a filter or search.",
            count_props,
        ),
        Tool::new(
            NAMES[4],
            "A page of documents as CSV text (a header row, then one row per document); links are not expanded.",
            list_props(&[]),
        ),
    ]
    .into_iter()
    .map(|t| t.with_annotations(read_only.clone()))
    .collect()
}

fn schema(properties: Value, required: &[&str]) -> Arc<JsonObject> {
    let mut out = JsonObject::new();
    out.insert("type".into(), json!("object"));
    out.insert("properties".into(), properties);
    if !required.is_empty() {
        out.insert("required".into(), json!(required));
    }
    Arc::new(out)
}

/// The arguments every tool but `jxp_list_models` takes; each uses those it knows.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    model: Option<String>,
    id: Option<String>,
    filter: Option<Value>,
    search: Option<String>,
    populate: Option<Value>,
    fields: Option<Value>,
    sort: Option<String>,
    limit: Option<u64>,
    page: Option<u64>,
    skip: Option<u64>,
}

impl Args {
    /// What reading the resource `jxp://<slug>[/<id>]` asks of `jxp_find`.
    pub(crate) fn for_resource(slug: &str, id: Option<&str>) -> Self {
        Args {
            model: Some(slug.to_owned()),
            id: id.map(str::to_owned),
            ..Args::default()
        }
    }

    pub(crate) fn parse(raw: Option<JsonObject>) -> Result<Self, ToolError> {
        match raw {
            None => Ok(Args::default()),
            Some(obj) => serde_json::from_value(Value::Object(obj))
                .map_err(|e| ToolError::Arguments(format!("bad arguments: {e}"))),
        }
    }
}

/// One tool call, as the caller `who`.
pub(crate) struct Call<'a> {
    pub state: &'a AppState,
    pub settings: &'a McpSettings,
    pub who: &'a Identity,
}

impl Call<'_> {
    /// Runs the tool `name`; the answer is the text the client gets.
    pub(crate) async fn run(&self, name: &str, args: Args) -> Result<String, ToolError> {
        let text = match name {
            "jxp_list_models" => self.list_models()?,
            "jxp_describe_model" => self.describe(&args)?,
            "jxp_find" => self.find(&args).await?,
            "jxp_count" => self.count(&args).await?,
            "jxp_export_csv" => self.export_csv(&args).await?,
            other => return Err(ToolError::Arguments(format!("no tool named {other}"))),
        };
        let max = self.settings.max_response_size;
        if max > 0 && text.len() as u64 > max {
            return Err(ToolError::TooLarge {
                len: text.len(),
                max,
            });
        }
        Ok(text)
    }

    /// The model `args` names, if this caller may read it through MCP.
    fn model(&self, args: &Args) -> Result<(&Arc<Model>, Access), ToolError> {
        let slug = args
            .model
            .as_deref()
            .ok_or_else(|| ToolError::Arguments("model is required".into()))?;
        let unknown = || ToolError::from(CoreError::UnknownModel(slug.to_owned()));
        let model = self.state.app.model(slug).map_err(|_| unknown())?;
        let access = readable(self.settings, model, self.who).ok_or_else(unknown)?;
        Ok((model, access))
    }

    fn list_models(&self) -> Result<String, ToolError> {
        let models: Vec<Value> = self
            .state
            .app
            .schema()
            .models
            .values()
            .filter_map(|m| {
                let access = readable(self.settings, m, self.who)?;
                Some(json!({"model": m.slug, "name": m.name, "access": access_name(access)}))
            })
            .collect();
        to_text(&json!({ "models": models }))
    }

    fn describe(&self, args: &Args) -> Result<String, ToolError> {
        let (model, access) = self.model(args)?;
        let public: Vec<_> = model
            .fields
            .iter()
            .filter(|f| !f.is_private())
            .cloned()
            .collect();
        let indexed: Vec<&str> = public
            .iter()
            .filter(|f| f.options.index != IndexKind::None || f.options.unique)
            .map(|f| f.name.as_str())
            .collect();
        let links: Vec<Value> = public
            .iter()
            .filter_map(|f| {
                let target = match &f.kind {
                    FieldKind::Array(inner) => inner.options.link.as_ref(),
                    _ => f.options.link.as_ref(),
                }?;
                Some(json!({"field": f.name, "model": target}))
            })
            .collect();
        to_text(&json!({
            "model": model.slug,
            "name": model.name,
            "access": access_name(access),
            "fields": fields_json(&public),
            "system_fields": ["_id", "_owner_id", "createdAt", "updatedAt", "_deleted"],
            "indexed": indexed,
            "links": links,
            "full_text_search": jxp_query::has_text_index(model),
        }))
    }

    async fn find(&self, args: &Args) -> Result<String, ToolError> {
        let (model, _) = self.model(args)?;
        let slug = &model.slug;
        if let Some(id) = &args.id {
            let pairs = shaping_pairs(args)?;
            let params = list_request(model, &pairs)?.params;
            let doc = self
                .state
                .app
                .get_one_view(self.who, slug, id, &params)
                .await?;
            return to_text(&json!({ "data": doc }));
        }
        let req = self.list_request(model, args, true)?;
        let out = self.state.app.list(self.who, slug, &req).await?;
        let mut body = Map::new();
        body.insert("model".into(), json!(slug));
        if let Some(c) = out.count {
            body.insert("count".into(), json!(c));
        }
        body.insert("limit".into(), json!(req.params.limit));
        body.insert("page".into(), json!(req.params.page.unwrap_or(1)));
        if let Some(next) = out.next_page {
            body.insert("next_page".into(), json!(next));
        }
        body.insert(
            "data".into(),
            Value::Array(out.data.into_iter().map(Value::Object).collect()),
        );
        to_text(&Value::Object(body))
    }

    async fn count(&self, args: &Args) -> Result<String, ToolError> {
        let (model, _) = self.model(args)?;
        let req = self.list_request(model, args, false)?;
        let count = self
            .state
            .app
            .count(self.who, &model.slug, &req.params)
            .await?;
        to_text(&json!({ "count": count }))
    }

    async fn export_csv(&self, args: &Args) -> Result<String, ToolError> {
        let (model, _) = self.model(args)?;
        if args.populate.is_some() {
            return Err(ToolError::Arguments(
                "jxp_export_csv does not expand links: leave out populate".into(),
            ));
        }
        let req = self.list_request(model, args, true)?;
        let columns = csv_columns(model, req.params.fields.as_deref());
        let out = self.state.app.list(self.who, &model.slug, &req).await?;
        Ok(csv_render(&columns, &out.data))
    }

    /// The list request `GET /api/:model` would make of these arguments, with MCP's limits
    /// when `paged`, and the `filter` object ANDed in as `/query` does it.
    fn list_request(
        &self,
        model: &Model,
        args: &Args,
        paged: bool,
    ) -> Result<ListRequest, ToolError> {
        let mut pairs = shaping_pairs(args)?;
        if let Some(search) = &args.search {
            pairs.push(("search".into(), search.clone()));
        }
        if paged {
            if let Some(sort) = &args.sort {
                pairs.push(("sort".into(), sort.clone()));
            }
            let limit = args
                .limit
                .filter(|l| *l > 0)
                .unwrap_or(self.settings.default_limit)
                .min(self.settings.max_limit)
                .max(1);
            pairs.push(("limit".into(), limit.to_string()));
            let page = match (args.page, args.skip) {
                (Some(_), Some(s)) if s > 0 => {
                    return Err(ToolError::Arguments("pass page or skip, not both".into()));
                }
                (_, Some(s)) if s % limit != 0 => {
                    return Err(ToolError::Arguments(format!(
                        "skip must be a whole number of pages of {limit}: use page instead"
                    )));
                }
                (_, Some(s)) => s / limit + 1,
                (Some(p), None) => p.max(1),
                (None, None) => 1,
            };
            pairs.push(("page".into(), page.to_string()));
        }
        let mut req = list_request(model, &pairs)?;
        if let Some(filter) = &args.filter {
            if !filter.is_object() {
                return Err(ToolError::Arguments("filter must be an object".into()));
            }
            let resolved =
                jxp_query::resolve_wrappers(filter, chrono::Utc::now()).map_err(CoreError::from)?;
            let parsed =
                jxp_query::parse_mongo_filter(model, &resolved).map_err(CoreError::from)?;
            if filter.as_object().is_some_and(|o| !o.is_empty()) {
                req.params.filtered = true;
            }
            req.params.filter = std::mem::take(&mut req.params.filter).and(parsed);
        }
        Ok(req)
    }
}

/// The arguments that shape each document (`fields`, `populate`) as query-string pairs.
fn shaping_pairs(args: &Args) -> Result<Vec<(String, String)>, ToolError> {
    let mut pairs = Vec::new();
    match &args.fields {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => pairs.push(("fields".into(), s.clone())),
        Some(Value::Array(items)) => {
            let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let names = names.ok_or_else(|| {
                ToolError::Arguments("fields must be a string or a list of strings".into())
            })?;
            pairs.push(("fields".into(), names.join(",")));
        }
        Some(_) => {
            return Err(ToolError::Arguments(
                "fields must be a string or a list of strings".into(),
            ));
        }
    }
    match &args.populate {
        None | Some(Value::Null) => {}
        // `populate[author]=name,email` as a query string, or a plain list of link fields.
        Some(Value::String(s)) if s.contains('=') => {
            let parsed: Vec<(String, String)> = serde_urlencoded::from_str(s)
                .map_err(|e| ToolError::Arguments(format!("bad populate: {e}")))?;
            pairs.extend(parsed);
        }
        Some(Value::String(s)) => pairs.push(("populate".into(), s.clone())),
        Some(Value::Object(map)) => {
            for (field, v) in map {
                let names = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(true) | Value::Null => String::new(),
                    _ => {
                        return Err(ToolError::Arguments(
                            "populate's values are comma-separated field names".into(),
                        ));
                    }
                };
                pairs.push((format!("populate[{field}]"), names));
            }
        }
        Some(_) => {
            return Err(ToolError::Arguments(
                "populate must be a string or an object".into(),
            ));
        }
    }
    Ok(pairs)
}

fn access_name(access: Access) -> &'static str {
    match access {
        Access::OwnOnly => "own documents only",
        _ => "all documents",
    }
}

fn to_text(v: &Value) -> Result<String, ToolError> {
    serde_json::to_string(v).map_err(|e| ToolError::Api(ApiError::internal(e)))
}

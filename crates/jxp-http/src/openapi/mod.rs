//! `GET /openapi.json` (OpenAPI 3.1) and `GET /asyncapi.json` (AsyncAPI 3), generated from the
//! loaded models. Each document is built once per model set and kept as bytes: the schema is
//! compared by identity on every request, so a new model set (a restart with changed model
//! files, or an app rebuilt in-process) gets a new document, and a request otherwise costs a
//! copy of a reference count.

mod asyncapi;
mod paths;
mod schemas;

use std::sync::RwLock;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use jxp_core::QueryLimits;
use jxp_model::Schema;
use jxp_model::sync::{read, write};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::extract::Caller;
use schemas::Shape;

/// The documents of one model set, by who reads them (admins also see internal models).
#[derive(Default)]
pub(crate) struct Documents {
    cached: RwLock<Vec<(Kind, usize, Bytes)>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    OpenApi { admin: bool },
    AsyncApi,
}

impl Documents {
    fn get(&self, kind: Kind, schema: &Schema, build: impl FnOnce() -> Value) -> Bytes {
        let id = std::ptr::from_ref(schema) as usize;
        if let Some((_, _, bytes)) = read(&self.cached)
            .iter()
            .find(|(k, s, _)| *k == kind && *s == id)
        {
            return bytes.clone();
        }
        // Writing out a `Value` cannot fail: its keys are strings and its numbers finite.
        let bytes = Bytes::from(serde_json::to_vec(&build()).unwrap_or_default());
        let mut cached = write(&self.cached);
        cached.retain(|(k, s, _)| *k != kind && *s == id);
        cached.push((kind, id, bytes.clone()));
        bytes
    }
}

fn json_response(bytes: Bytes) -> Response {
    let mut response = bytes.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Builds the documents ahead of their first request (off the async threads), so that one is
/// answered from the cache too.
pub(crate) fn warm(state: &AppState) {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let schema = state.app.schema();
        let url = &state.app.settings().auth.api_url;
        let limits = &state.app.settings().query_limits;
        for admin in [false, true] {
            state
                .api_documents
                .get(Kind::OpenApi { admin }, schema, || {
                    openapi_document(schema, url, admin, limits)
                });
        }
        state
            .api_documents
            .get(Kind::AsyncApi, schema, || asyncapi::document(schema, url));
    });
}

pub(crate) async fn openapi(State(state): State<AppState>, Caller(who): Caller) -> Response {
    let admin = who.is_admin();
    let schema = state.app.schema();
    let url = &state.app.settings().auth.api_url;
    let limits = &state.app.settings().query_limits;
    json_response(
        state
            .api_documents
            .get(Kind::OpenApi { admin }, schema, || {
                openapi_document(schema, url, admin, limits)
            }),
    )
}

pub(crate) async fn asyncapi(State(state): State<AppState>) -> Response {
    let schema = state.app.schema();
    let url = &state.app.settings().auth.api_url;
    json_response(
        state
            .api_documents
            .get(Kind::AsyncApi, schema, || asyncapi::document(schema, url)),
    )
}

/// The models a document describes: the served ones (with perms), internal ones to admins only.
pub(super) fn described(schema: &Schema, admin: bool) -> impl Iterator<Item = &jxp_model::Model> {
    schema
        .models
        .values()
        .filter(move |m| !m.perms.is_empty() && (admin || !m.options.internal))
        .map(AsRef::as_ref)
}

/// The OpenAPI 3.1 document for `schema`, served at `url`.
pub(crate) fn openapi_document(
    schema: &Schema,
    url: &str,
    admin: bool,
    limits: &QueryLimits,
) -> Value {
    let mut components = Map::new();
    let mut paths_map = Map::new();
    let mut tags = Vec::new();
    for model in described(schema, admin) {
        for shape in [Shape::Document, Shape::Create, Shape::Update] {
            components.insert(
                shape.name(model),
                schemas::model_schema(schema, model, shape),
            );
        }
        paths::model_paths(model, &limits.for_model(model), &mut paths_map);
        let perms: Vec<String> = model
            .perms
            .groups
            .iter()
            .map(|(g, l)| format!("{g}: {l}"))
            .collect();
        tags.push(json!({
            "name": model.slug,
            "description": format!("{} documents. Permissions (crud per group): {}.", model.name, perms.join(", ")),
        }));
    }
    paths::server_paths(&mut paths_map);
    // A link to a model this reader is not shown still needs its target to resolve.
    for model in schema.models.values() {
        components
            .entry(model.slug.clone())
            .or_insert_with(|| json!({ "type": "object", "description": "A document of a model not described here." }));
    }
    components.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": { "type": "string", "description": "The error's name, such as BadRequest or Forbidden." },
                "message": { "type": "string", "description": "Why." },
            },
        }),
    );
    let error = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "jxp API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST API generated from this server's model files. Realtime changes: the WebSocket feed at /websocket, described at /asyncapi.json.",
        },
        "servers": [{ "url": url }],
        "tags": tags,
        "security": [{ "apiKeyHeader": [] }, { "apiKeyQuery": [] }, { "bearer": [] }, { "basic": [] }, {}],
        "paths": paths_map,
        "components": {
            "schemas": components,
            "parameters": paths::parameters(),
            "responses": {
                "BadRequest": error("Bad input: malformed JSON, a wrong type, a bad id or an unknown operator."),
                "Unauthorized": error("Failed login, or no credentials where they are required."),
                "Forbidden": error("Not allowed, or not authenticated on an API route."),
                "NotFound": error("No such model, document or route."),
                "Conflict": error("A unique value already taken, or a delete with referrers."),
                "TooLarge": error("The request or the answer is too large."),
                "RateLimited": error("Too many attempts; see Retry-After."),
                "Unavailable": error("Too many connections."),
                "ServerError": error("A fault of the server, logged with the request id the message gives."),
            },
            "securitySchemes": {
                "apiKeyHeader": { "type": "apiKey", "in": "header", "name": "X-API-Key", "description": "A user's API key." },
                "apiKeyQuery": { "type": "apiKey", "in": "query", "name": "apikey", "description": "A user's API key in the query string." },
                "bearer": { "type": "http", "scheme": "bearer", "description": "An access token from /login, or a JWT from /login/getjwt." },
                "basic": { "type": "http", "scheme": "basic", "description": "Email and password." },
            },
        },
    })
}

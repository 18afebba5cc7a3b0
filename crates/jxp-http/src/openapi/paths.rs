//! The routes of SPEC §3 as OpenAPI path items: each served model's document, query and
//! function routes, then the server's own (login family, groups, models, cache, health,
//! WebSocket, metrics and these documents).

use jxp_core::QueryLimits;
use jxp_model::Model;
use serde_json::{Map, Value, json};

use super::schemas::{OBJECT_ID, Shape};

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_body(schema: Value) -> Value {
    json!({ "content": { "application/json": { "schema": schema } } })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// One operation; `errors` names components under `#/components/responses`.
fn op(
    tag: &str,
    id: String,
    summary: String,
    params: Vec<Value>,
    body: Option<Value>,
    success: (&str, Value),
    errors: &[(&str, &str)],
) -> Value {
    let mut responses = Map::new();
    responses.insert(success.0.into(), success.1);
    for (status, name) in errors {
        responses.insert(
            (*status).into(),
            json!({ "$ref": format!("#/components/responses/{name}") }),
        );
    }
    let mut out = json!({
        "tags": [tag],
        "operationId": id,
        "summary": summary,
        "responses": responses,
    });
    if !params.is_empty() {
        out["parameters"] = Value::Array(params);
    }
    if let Some(body) = body {
        out["requestBody"] = body;
    }
    out
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "schema": schema, "description": description })
}

fn path_id() -> Value {
    json!({ "$ref": "#/components/parameters/id" })
}

/// The names of the list parameters under `#/components/parameters`, in order; `limit`,
/// whose default and cap are the model's own, is written in each model's routes.
const LIST_PARAMS: &[&str] = &[
    "filter",
    "search",
    "sort",
    "limit",
    "page",
    "fields",
    "populate",
    "autopopulate",
    "showDeleted",
    "count",
];

/// The query string of lists, counts and CSV (SPEC §3), by reference (written once under
/// `components`, it does not repeat in every model's routes), but for `limit`, which says
/// this model's page sizes.
fn list_params(limits: &QueryLimits) -> Vec<Value> {
    LIST_PARAMS
        .iter()
        .map(|name| match *name {
            "limit" => limit_parameter(limits),
            name => json!({ "$ref": format!("#/components/parameters/{name}") }),
        })
        .collect()
}

/// `limit` as the model's query limits have it: a default and a cap that a larger page is cut
/// to, or, with the limits off, every matching document unless one is asked for.
fn limit_parameter(limits: &QueryLimits) -> Value {
    if limits.enabled {
        query(
            "limit",
            json!({ "type": "integer", "minimum": 1, "default": limits.default }),
            &format!(
                "Page size: {} unless given; a larger one than {} is cut to {}.",
                limits.default, limits.max, limits.max
            ),
        )
    } else {
        query(
            "limit",
            json!({ "type": "integer", "minimum": 1 }),
            "Page size: every matching document unless given.",
        )
    }
}

/// `#/components/parameters`: the document id in a path and the list parameters.
pub(super) fn parameters() -> Map<String, Value> {
    let mut out: Map<String, Value> = list_parameters()
        .into_iter()
        .filter_map(|p| Some((p["name"].as_str()?.to_owned(), p)))
        .collect();
    out.insert(
        "id".into(),
        json!({
            "name": "id", "in": "path", "required": true,
            "schema": { "type": "string", "pattern": OBJECT_ID },
            "description": "The document's `_id`.",
        }),
    );
    out
}

fn list_parameters() -> Vec<Value> {
    let deep = |name: &str, description: &str| {
        json!({
            "name": name, "in": "query", "style": "deepObject", "explode": true,
            "schema": { "type": "object", "additionalProperties": { "type": "string" } },
            "description": description,
        })
    };
    // (name, type, description) of the plain parameters.
    const PLAIN: &[(&str, &str, &str)] = &[
        (
            "search",
            "string",
            "Full-text search over the model's text index; `search[field]=text` is a case-insensitive contains.",
        ),
        (
            "sort",
            "string",
            "`sort=field`, `sort=-field`, or `sort[field]=1|-1`.",
        ),
        ("page", "integer", "Page number, from 1."),
        ("fields", "string", "Comma-separated fields to answer."),
        (
            "populate",
            "string",
            "Link fields to replace by their documents.",
        ),
        ("autopopulate", "boolean", "Populate every link field."),
        ("showDeleted", "boolean", "Include soft-deleted documents."),
        ("count", "boolean", "Answer the total `count` too."),
    ];
    let mut out = vec![deep(
        "filter",
        "`filter[field]=value`, or an operator: `$gte:`, `$gt:`, `$lte:`, `$lt:`, `$ne:`, `$in:a,b`, `$nin:`, `$exists:`, `$regex:/re/flags`.",
    )];
    out.extend(PLAIN.iter().map(|(name, kind, description)| {
        let schema = if *kind == "integer" {
            json!({ "type": kind, "minimum": 1 })
        } else {
            json!({ "type": kind })
        };
        query(name, schema, description)
    }));
    out
}

fn list_schema(doc: &str) -> Value {
    json!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": { "type": "array", "items": schema_ref(doc) },
            "count": { "type": "integer" },
            "limit": { "type": "integer" },
            "page": { "type": "integer" },
            "page_count": { "type": "integer" },
            "next": { "type": "string" },
            "has_more": { "type": "boolean" },
            "limit_capped": { "type": "boolean" },
        },
    })
}

fn written(doc: &str) -> Value {
    json!({
        "type": "object",
        "required": ["status", "message", "data"],
        "properties": {
            "status": { "const": "ok" },
            "message": { "type": "string" },
            "data": schema_ref(doc),
        },
    })
}

const READ_ERRORS: &[(&str, &str)] = &[
    ("400", "BadRequest"),
    ("403", "Forbidden"),
    ("404", "NotFound"),
    ("413", "TooLarge"),
    ("500", "ServerError"),
];
const WRITE_ERRORS: &[(&str, &str)] = &[
    ("400", "BadRequest"),
    ("403", "Forbidden"),
    ("404", "NotFound"),
    ("409", "Conflict"),
    ("500", "ServerError"),
];

/// Every route of one served model, keyed by path.
pub(super) fn model_paths(model: &Model, limits: &QueryLimits, paths: &mut Map<String, Value>) {
    let slug = &model.slug;
    let name = &model.name;
    let tag = slug.as_str();
    let doc = Shape::Document.name(model);
    let create = schema_ref(&Shape::Create.name(model));
    let update = schema_ref(&Shape::Update.name(model));
    let one = json!({ "type": "object", "required": ["data"], "properties": { "data": schema_ref(&doc) } });
    paths.insert(
        format!("/api/{slug}"),
        json!({
            "get": op(tag, format!("list_{slug}"), format!("List {name} documents"), list_params(limits), None, ("200", ok("A page of documents.", list_schema(&doc))), READ_ERRORS),
            "post": op(tag, format!("create_{slug}"), format!("Create a {name}"), vec![], Some(json_body(create)), ("200", ok("Created.", written(&doc))), WRITE_ERRORS),
        }),
    );
    let delete_params = vec![
        path_id(),
        query(
            "_permaDelete",
            json!({ "type": "string", "enum": ["1", "true"] }),
            "Delete for good instead of soft-deleting.",
        ),
        query(
            "_cascade",
            json!({ "type": "string", "enum": ["1", "true"] }),
            "Delete the documents that refer to this one too (otherwise 409).",
        ),
    ];
    let deleted = json!({
        "type": "object",
        "properties": { "status": { "const": "ok" }, "message": { "type": "string" } },
    });
    let update_op = |id: String| {
        op(
            tag,
            id,
            format!("Update a {name} (only the fields sent)"),
            vec![path_id()],
            Some(json_body(update.clone())),
            ("200", ok("Updated.", written(&doc))),
            WRITE_ERRORS,
        )
    };
    paths.insert(
        format!("/api/{slug}/{{id}}"),
        json!({
            "get": op(tag, format!("get_{slug}"), format!("One {name}"), vec![path_id(), json!({ "$ref": "#/components/parameters/populate" })], None, ("200", ok("The document.", one)), READ_ERRORS),
            "put": update_op(format!("update_{slug}")),
            "delete": op(tag, format!("delete_{slug}"), format!("Delete a {name}"), delete_params, None, ("200", ok("Deleted.", deleted)), WRITE_ERRORS),
        }),
    );
    paths.insert(
        format!("/update/{slug}/{{id}}"),
        json!({ "post": update_op(format!("post_update_{slug}")) }),
    );
    paths.insert(
        format!("/count/{slug}"),
        json!({ "get": op(tag, format!("count_{slug}"), format!("Count {name} documents"), list_params(limits), None, ("200", ok("The count.", json!({ "type": "object", "required": ["count"], "properties": { "count": { "type": "integer", "minimum": 0 } } }))), READ_ERRORS) }),
    );
    paths.insert(
        format!("/csv/{slug}"),
        json!({ "get": op(tag, format!("csv_{slug}"), format!("List {name} documents as CSV"), list_params(limits), None, ("200", json!({ "description": "CSV, a header row then one row per document.", "content": { "text/csv": { "schema": { "type": "string" } } } })), READ_ERRORS) }),
    );
    let advanced = &model.options.advanced_queries;
    if advanced.query {
        let body = json!({ "type": "object", "required": ["query"], "properties": { "query": { "type": "object", "description": "A Mongo-style filter ($and, $or, $in, $regex, …)." } } });
        paths.insert(
            format!("/query/{slug}"),
            json!({ "post": op(tag, format!("query_{slug}"), format!("Find {name} documents with a Mongo-style filter"), list_params(limits), Some(json_body(body)), ("200", ok("A page of documents.", list_schema(&doc))), READ_ERRORS) }),
        );
    }
    if advanced.aggregate {
        let body = json!({ "anyOf": [
            { "type": "array", "items": { "type": "object" } },
            { "type": "object", "required": ["query"], "properties": { "query": { "type": "array", "items": { "type": "object" } } } },
        ] });
        paths.insert(
            format!("/aggregate/{slug}"),
            json!({ "post": op(tag, format!("aggregate_{slug}"), format!("Run an aggregation pipeline over {name}"), vec![], Some(json_body(body)), ("200", ok("The pipeline's output.", json!({ "type": "object", "properties": { "data": { "type": "array" } } }))), READ_ERRORS) }),
        );
    }
    if advanced.bulkwrite {
        let body = json!({ "type": "array", "items": { "type": "object", "description": "One of insertOne, updateOne, replaceOne, deleteOne (admins also updateMany, deleteMany)." } });
        paths.insert(
            format!("/bulkwrite/{slug}"),
            json!({ "post": op(tag, format!("bulkwrite_{slug}"), format!("Several writes to {name} in one request"), vec![], Some(json_body(body)), ("200", ok("The result of each operation.", json!({ "type": "object" }))), WRITE_ERRORS) }),
        );
    }
    for function in &model.options.callable {
        let data = json!({ "type": "object", "properties": { "data": {} } });
        let call = |id: String, params: Vec<Value>, post: bool| {
            let verb = if post { "post" } else { "get" };
            op(
                tag,
                format!("{id}_{verb}"),
                format!("Call {function} on {name}"),
                params,
                post.then(|| json_body(json!({ "type": "object" }))),
                ("200", ok("What the function answers.", data.clone())),
                WRITE_ERRORS,
            )
        };
        let id = format!("call_{slug}_{function}");
        paths.insert(
            format!("/call/{slug}/{function}"),
            json!({ "get": call(id.clone(), vec![], false), "post": call(id, vec![], true) }),
        );
        let id = format!("call_{slug}_item_{function}");
        paths.insert(
            format!("/call/{slug}/{{id}}/{function}"),
            json!({ "get": call(id.clone(), vec![path_id()], false), "post": call(id, vec![path_id()], true) }),
        );
    }
}

/// The server's own routes.
pub(super) fn server_paths(paths: &mut Map<String, Value>) {
    let any = json!({ "type": "object" });
    let status = json!({ "type": "object", "properties": { "status": { "type": "string" }, "message": { "type": "string" } } });
    let session = json!({
        "type": "object",
        "properties": {
            "user_id": { "type": "string" }, "token": { "type": "string" },
            "token_expires": { "type": "string" }, "refresh_token": { "type": "string" },
            "refresh_token_expires": { "type": "string" }, "provider": { "type": "string" },
            "apikey": { "type": "string" },
        },
    });
    let login_body = json!({ "type": "object", "required": ["email", "password"], "properties": { "email": { "type": "string" }, "password": { "type": "string", "format": "password" } } });
    let refresh_body = json!({ "type": "object", "required": ["refresh_token"], "properties": { "refresh_token": { "type": "string" } } });
    let email_body = json!({ "type": "object", "required": ["email"], "properties": { "email": { "type": "string" } } });
    let setup_body = json!({ "type": "object", "required": ["email", "password", "name"], "properties": { "email": { "type": "string" }, "password": { "type": "string", "format": "password" }, "name": { "type": "string" } } });
    let auth_errors: &[(&str, &str)] = &[
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("429", "RateLimited"),
    ];
    let admin_errors: &[(&str, &str)] = &[("403", "Forbidden")];
    let refresh = op(
        "auth",
        "refresh".into(),
        "A new token pair from a refresh token".into(),
        vec![],
        Some(json_body(refresh_body.clone())),
        ("200", ok("The new session.", session.clone())),
        auth_errors,
    );
    let mut login_refresh = refresh.clone();
    login_refresh["operationId"] = json!("login_refresh");
    let logout = |id: &str| {
        op(
            "auth",
            id.into(),
            "Revoke the caller's token (`?all=true`: every token of the user)".into(),
            vec![query(
                "all",
                json!({ "type": "boolean" }),
                "Revoke every login of the user.",
            )],
            None,
            ("200", ok("Logged out.", status.clone())),
            &[("403", "Forbidden")],
        )
    };
    let groups_param = json!({ "name": "user_id", "in": "path", "required": true, "schema": { "type": "string", "pattern": OBJECT_ID } });
    let groups_op = |verb: &str, summary: &str, body: bool| {
        op(
            "groups",
            format!("groups_{verb}"),
            summary.into(),
            vec![groups_param.clone()],
            body.then(|| json_body(json!({ "type": "object", "properties": { "group": { "anyOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" } }] } } }))),
            ("200", ok("The user's groups.", any.clone())),
            &[("400", "BadRequest"), ("403", "Forbidden"), ("404", "NotFound")],
        )
    };
    let entries = [
        (
            "/login",
            json!({ "post": op("auth", "login".into(), "Sign in with email and password".into(), vec![], Some(json_body(login_body)), ("200", ok("The session: tokens and their expiry.", session.clone())), auth_errors) }),
        ),
        ("/refresh", json!({ "post": refresh })),
        ("/login/refresh", json!({ "post": login_refresh })),
        ("/login/logout", json!({ "get": logout("login_logout") })),
        ("/logout", json!({ "get": logout("logout") })),
        (
            "/login/getjwt",
            json!({ "post": op("auth", "getjwt".into(), "A JWT for a user (admins)".into(), vec![], Some(json_body(email_body.clone())), ("200", ok("The JWT.", json!({ "type": "object", "properties": { "email": { "type": "string" }, "token": { "type": "string" } } }))), admin_errors) }),
        ),
        (
            "/login/recover",
            json!({ "post": op("auth", "recover".into(), "Email a password recovery link".into(), vec![], Some(json_body(email_body)), ("200", ok("Sent (whether or not the user exists).", status.clone())), auth_errors) }),
        ),
        (
            "/setup",
            json!({ "post": op("auth", "setup".into(), "Create the first admin while no user exists".into(), vec![], Some(json_body(setup_body)), ("200", ok("The admin created.", any.clone())), &[("400", "BadRequest"), ("403", "Forbidden")]) }),
        ),
        (
            "/groups/{user_id}",
            json!({
                "get": groups_op("get", "A user's groups", false),
                "put": groups_op("add", "Add groups to a user", true),
                "post": groups_op("replace", "Replace a user's groups", true),
                "delete": groups_op("remove", "Remove groups from a user", true),
            }),
        ),
        (
            "/model",
            json!({ "get": op("models", "models".into(), "The models the caller may know of".into(), vec![], None, ("200", ok("Models with their perms.", json!({ "type": "array", "items": any.clone() }))), &[]) }),
        ),
        (
            "/model/{model}",
            json!({ "get": op("models", "model".into(), "One model's definition".into(), vec![json!({ "name": "model", "in": "path", "required": true, "schema": { "type": "string" } })], None, ("200", ok("Fields, perms and options.", any.clone())), &[("404", "NotFound")]) }),
        ),
        (
            "/cache/stats",
            json!({ "get": op("cache", "cache_stats".into(), "Response cache statistics (admins)".into(), vec![], None, ("200", ok("Statistics.", any.clone())), admin_errors) }),
        ),
        (
            "/cache/clear",
            json!({ "get": op("cache", "cache_clear".into(), "Empty the response cache (admins)".into(), vec![], None, ("200", ok("Emptied.", any.clone())), admin_errors) }),
        ),
        (
            "/healthz",
            json!({ "get": op("server", "healthz".into(), "Liveness, the store included".into(), vec![], None, ("200", ok("Alive.", json!({ "type": "object", "properties": { "status": { "const": "ok" } } }))), &[("500", "ServerError")]) }),
        ),
        (
            "/websocket",
            json!({ "get": op("server", "websocket".into(), "The realtime feed: a WebSocket upgrade (see /asyncapi.json)".into(), vec![], None, ("101", json!({ "description": "Switching to the WebSocket protocol." })), &[("400", "BadRequest"), ("403", "Forbidden"), ("503", "Unavailable")]) }),
        ),
        (
            "/metrics",
            json!({ "get": { "tags": ["server"], "operationId": "metrics", "summary": "Prometheus metrics (admins, or Authorization: Bearer METRICS_TOKEN)", "responses": {
            "200": { "description": "Prometheus text format.", "content": { "text/plain": { "schema": { "type": "string" } } } },
            "401": { "$ref": "#/components/responses/Unauthorized" },
            "403": { "$ref": "#/components/responses/Forbidden" },
        } } }),
        ),
        (
            "/openapi.json",
            json!({ "get": { "tags": ["server"], "operationId": "openapi", "summary": "This document", "security": [{}], "responses": { "200": ok("OpenAPI 3.1.", any.clone()) } } }),
        ),
        (
            "/asyncapi.json",
            json!({ "get": { "tags": ["server"], "operationId": "asyncapi", "summary": "The WebSocket protocol as AsyncAPI 3", "security": [{}], "responses": { "200": ok("AsyncAPI 3.0.", any.clone()) } } }),
        ),
    ];
    for (path, item) in entries {
        paths.insert(path.into(), item);
    }
}

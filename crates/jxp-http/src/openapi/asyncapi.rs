//! The WebSocket feed of SPEC §5 as an AsyncAPI 3.0 document: the requests a client sends
//! (`ping`, `auth`, `subscribe`, `unsubscribe`), the one reply each gets, and the events
//! pushed to it, with each served model's document schema for the events' `item`.

use jxp_model::Schema;
use serde_json::{Map, Value, json};

use super::schemas::{self, Shape};

fn message(name: &str, summary: &str, payload: Value) -> Value {
    json!({
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": payload,
    })
}

fn request(action: &str, data: Value) -> Value {
    let mut properties = json!({
        "action": { "const": action },
        "msg_id": { "type": ["string", "number"], "description": "Echoed in the reply." },
    });
    let mut required = vec![json!("action"), json!("msg_id")];
    if !data.is_null() {
        properties["data"] = data;
        required.push(json!("data"));
    }
    json!({ "type": "object", "required": required, "properties": properties })
}

/// A frame the server pushes: the connection's id and `data`.
fn pushed(data: Value) -> Value {
    json!({
        "type": "object",
        "required": ["client_id", "data"],
        "properties": { "client_id": { "type": "string" }, "data": data },
    })
}

pub(super) fn document(schema: &Schema, url: &str) -> Value {
    let (protocol, host) = match url.split_once("://") {
        Some(("https", host)) => ("wss", host),
        Some((_, host)) => ("ws", host),
        None => ("ws", url),
    };
    let host = host.trim_end_matches('/');
    let mut model_schemas = Map::new();
    let mut items = Vec::new();
    let mut slugs = Vec::new();
    for model in super::described(schema, false) {
        model_schemas.insert(
            model.slug.clone(),
            schemas::model_schema(schema, model, Shape::Document),
        );
        items.push(json!({ "$ref": format!("#/components/schemas/{}", model.slug) }));
        slugs.push(json!(model.slug));
    }
    for model in schema.models.values() {
        model_schemas
            .entry(model.slug.clone())
            .or_insert_with(|| json!({ "type": "object" }));
    }
    let subscription = json!({
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": { "type": "string", "enum": slugs.clone() },
            "id": { "type": "string", "description": "Only this document's put and del events." },
            "filter": { "type": "object", "description": "Field conditions that must all hold: values, or /query operators." },
            "since": { "type": "integer", "minimum": 0, "description": "Replay the retained events after this seq, then continue live." },
        },
    });
    let credentials = json!({
        "type": "object",
        "description": "email and password, or apikey, or token.",
        "properties": {
            "email": { "type": "string" }, "password": { "type": "string" },
            "apikey": { "type": "string" }, "token": { "type": "string" },
        },
    });
    let messages = json!({
        "ping": message("ping", "Answered with result \"pong!\".", request("ping", Value::Null)),
        "auth": message("auth", "Authenticates the connection (replaces any earlier identity); result \"Authed\".", request("auth", credentials)),
        "subscribe": message("subscribe", "Subscribes to a model's changes, or one document's; needs auth and the right to read.", request("subscribe", subscription.clone())),
        "unsubscribe": message("unsubscribe", "Ends exactly the subscription with the same data.", request("unsubscribe", subscription)),
        "okay": message("okay", "The reply to a request that succeeded.", json!({
            "type": "object",
            "required": ["status", "client_id"],
            "properties": {
                "action": { "type": "string" }, "status": { "const": "okay" },
                "msg_id": { "type": ["string", "number"] }, "client_id": { "type": "string" },
                "result": {},
            },
        })),
        "error": message("error", "The reply to a request that failed; the connection stays open.", json!({
            "type": "object",
            "required": ["status", "client_id", "message"],
            "properties": {
                "action": { "type": "string" }, "status": { "const": "error" },
                "msg_id": { "type": ["string", "number"] }, "client_id": { "type": "string" },
                "message": { "type": "string" },
            },
        })),
        "event": message("event", "A committed create (post), update (put) or delete (del) the subscriber may read, in seq order per model.", pushed(json!({
            "type": "object",
            "required": ["event", "modelname", "item", "seq"],
            "properties": {
                "event": { "type": "string", "enum": ["post", "put", "del", "enter", "leave"] },
                "modelname": { "type": "string", "enum": slugs },
                "item": { "anyOf": items },
                "user_id": { "type": ["string", "null"] },
                "user_name": { "type": ["string", "null"] },
                "user_email": { "type": ["string", "null"] },
                "seq": { "type": "integer", "minimum": 1 },
            },
        }))),
        "deauth": message("deauth", "The connection's identity ended (logout, expiry, password change); nothing more arrives until it authenticates again.", pushed(json!({
            "type": "object",
            "properties": { "event": { "const": "deauth" }, "reason": { "type": "string" } },
        }))),
    });
    let to = |names: &[&str]| -> Value {
        names
            .iter()
            .map(|n| json!({ "$ref": format!("#/channels/feed/messages/{n}") }))
            .collect()
    };
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "jxp realtime feed",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON text frames. Every request gets exactly one reply; events are pushed for the subscriptions held. Frames above WS_MAX_MESSAGE_BYTES close the socket with 1009, a client that reads too slowly is closed with 1013, shutdown closes with 1001.",
        },
        "servers": { "jxp": { "host": host, "protocol": protocol, "pathname": "/websocket" } },
        "channels": {
            "feed": {
                "address": "/websocket",
                "messages": messages,
            },
        },
        "operations": {
            "sendRequest": { "action": "send", "channel": { "$ref": "#/channels/feed" }, "messages": to(&["ping", "auth", "subscribe", "unsubscribe"]) },
            "receiveReply": { "action": "receive", "channel": { "$ref": "#/channels/feed" }, "messages": to(&["okay", "error"]) },
            "receiveEvent": { "action": "receive", "channel": { "$ref": "#/channels/feed" }, "messages": to(&["event", "deauth"]) },
        },
        "components": { "schemas": model_schemas },
    })
}

//! The example's application: the hooks and functions of a small to-do API, registered on
//! `jxp::Server::builder()`. `main.rs` serves it; the integration tests drive the same
//! builder.

use std::path::PathBuf;

use jxp::{Filter, HookError, Op, Path, ReadEvent, Server, WriteEvent};
use serde_json::{Value, json};

/// The example's model directory.
pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/todo_hooks/models")
}

/// The server with the example's hooks and functions; settings are added by the caller.
pub fn builder() -> jxp::Builder {
    register(Server::builder())
}

/// Adds the example's models, hooks and functions to `builder`.
pub fn register(builder: jxp::Builder) -> jxp::Builder {
    builder
        .models(models_dir())
        // Titles are trimmed before validation, and an empty one is refused with our own
        // message.
        .pre_write(WriteEvent::Post, "todo", |ctx| async move {
            let mut doc = ctx.doc;
            let title = doc
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_owned();
            if title.is_empty() {
                return Err(HookError::bad_request("a todo needs a title"));
            }
            doc.insert("title".into(), Value::String(title));
            Ok(doc)
        })
        // A finished todo stays finished.
        .pre_write(WriteEvent::Put, "todo", |ctx| async move {
            let was_done = ctx.current.as_ref().and_then(|c| c.get("done")) == Some(&json!(true));
            if was_done && ctx.doc.get("done") == Some(&json!(false)) {
                return Err(HookError::reject(409, "a finished todo cannot be reopened"));
            }
            Ok(ctx.doc)
        })
        // Everyone but an admin sees only their own todos, in lists and one by one.
        .pre_read(ReadEvent::Get, "todo", |ctx| async move {
            Ok(own_rows(&ctx.identity))
        })
        .pre_read(ReadEvent::GetOne, "todo", |ctx| async move {
            Ok(own_rows(&ctx.identity))
        })
        // A callback after every committed create.
        .post_write(WriteEvent::Post, "*", |ctx| async move {
            tracing::info!(model = %ctx.model, id = %ctx.id, "created");
            Ok(())
        })
        // The login answer carries a greeting.
        .post_login(|ctx| async move {
            let name = ctx
                .user
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("there");
            let mut extra = jxp::Document::new();
            extra.insert("greeting".into(), json!(format!("Welcome back, {name}")));
            Ok(extra)
        })
        // GET /call/todo/stats: the caller's open and finished todos.
        .function("todo", "stats", |ctx| async move {
            let pipeline = json!([{ "$group": { "_id": "$done", "n": { "$sum": 1 } } }]);
            let groups = ctx
                .app
                .aggregate(&ctx.identity, "todo", Some(&pipeline))
                .await?;
            let count = |done: bool| {
                groups
                    .iter()
                    .find(|g| g.get("_id") == Some(&json!(done)))
                    .and_then(|g| g.get("n").cloned())
                    .unwrap_or(json!(0))
            };
            Ok(json!({ "open": count(false), "done": count(true) }))
        })
        // POST /call/todo/:id/complete: finishes a todo through the write path, so
        // subscribers get the `put` event.
        .function("todo", "complete", |ctx| async move {
            let Some(item) = ctx.item else {
                return Err(HookError::bad_request(
                    "call complete on a todo: /call/todo/:id/complete",
                ));
            };
            let id = item.get("_id").and_then(Value::as_str).unwrap_or_default();
            let mut patch = jxp::Document::new();
            patch.insert("done".into(), json!(true));
            let done = ctx
                .app
                .update(&ctx.identity, "todo", id, patch, Default::default())
                .await?;
            Ok(Value::Object(done))
        })
}

fn own_rows(identity: &jxp::Identity) -> Filter {
    match &identity.user {
        Some(user) if !user.admin => Filter::cond(Path::plain("_owner_id"), Op::Eq, json!(user.id)),
        _ => Filter::All,
    }
}

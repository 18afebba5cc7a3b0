//! What a script reaches outside its runtime: `console` (the server log) and `ctx.db` /
//! `ctx.system` (the app's reads and its one write path). The natives find who is calling in
//! a thread-local stack. A call on a pool thread (`pool.rs`) waits for the app on the tokio
//! runtime's handle, which blocks that thread. A call tried on the request's own worker
//! (`Pool::inline`) must not wait: there `ctx.db` answers nothing, the call is marked as
//! having reached outside, and it is run again on the pool; its log lines are held until it
//! is known to stand.

use std::cell::RefCell;
use std::sync::Arc;

use jxp_core::{App, CoreError, DeleteOptions, HookError, Identity, ListRequest, WriteOptions};
use jxp_query::{Filter, parse_list_params, parse_mongo_filter};
use serde_json::{Value, json};
use tokio::runtime::Handle;

use crate::pool::Site;

/// Who a running call acts for and what it is about.
pub(crate) struct CallEnv {
    /// The app and the runtime `ctx.db` calls wait on: none for a call tried on a request
    /// worker, where `ctx.db` is not waited for.
    pub app: Option<App>,
    pub handle: Option<Handle>,
    /// The caller: none for a call tried on a request worker (see `app`).
    pub identity: Option<Arc<Identity>>,
    /// The hook's model and document: a write to that same document from inside the hook is
    /// silenced, so its own hooks do not run again for it.
    pub model: String,
    pub id: Option<String>,
    /// The export called, which the log names.
    pub site: Arc<Site>,
    /// App errors raised by `ctx.db` calls, by index; one the script lets through is
    /// answered as the app would answer it.
    pub stash: Vec<CoreError>,
    /// Set while the call is tried on a request worker: its log lines, held.
    pub inline: Option<Vec<(i32, String)>>,
    /// The call reached for the app (`ctx.db`, `ctx.system`): on a request worker, where it
    /// is not answered, this stops the call there.
    pub used_db: bool,
    /// Whether the call, run on a pool thread, would have fitted a worker's budget: it took
    /// less, or ran too few steps to be stopped for its time (none where it ran elsewhere).
    pub fitted: Option<bool>,
}

thread_local! {
    static ENV: RefCell<Vec<CallEnv>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `env` as the current call's; answers `f`'s value and `env` back, its stash
/// filled.
pub(crate) fn with_env<T>(env: CallEnv, f: impl FnOnce() -> T) -> (T, Option<CallEnv>) {
    ENV.with(|e| e.borrow_mut().push(env));
    let out = f();
    (out, ENV.with(|e| e.borrow_mut().pop()))
}

/// `console.log/warn/error`: the server log, naming the file and export (held, while the
/// call is tried on a request worker).
pub(crate) fn native_log(level: i32, text: String) {
    let mut text = Some(text);
    let site = ENV.with(|e| {
        let mut envs = e.borrow_mut();
        let env = envs.last_mut()?;
        match (env.inline.as_mut(), text.take()) {
            (Some(held), Some(line)) => held.push((level, line)),
            (_, line) => text = line,
        }
        Some(env.site.clone())
    });
    if let Some(text) = text {
        log_line(site.as_deref(), level, &text);
    }
}

/// One `console` line in the server log.
pub(crate) fn log_line(site: Option<&Site>, level: i32, text: &str) {
    let (file, export) = site.map_or(("", ""), |s| (s.file.as_str(), s.label.as_str()));
    match level {
        0 => tracing::info!(script = %file, export = %export, "{text}"),
        1 => tracing::warn!(script = %file, export = %export, "{text}"),
        _ => tracing::error!(script = %file, export = %export, "{text}"),
    }
}

/// `ctx.db.<op>(...args)` (or `ctx.system`): answers `{"ok": value}` or `{"err": {status,
/// message, stash}}` as JSON text, which the prelude turns into a value or a `JxpError`.
pub(crate) fn native_db(system: bool, op: String, args: String) -> String {
    let on_worker = ENV.with(|e| {
        e.borrow_mut().last_mut().is_some_and(|env| {
            env.used_db = true;
            env.inline.is_some()
        })
    });
    if on_worker {
        // Its answer is thrown away: the call runs again on the pool.
        return json!({"err": {"status": 500, "message": "ctx.db runs on the pool"}}).to_string();
    }
    let current = ENV.with(|e| {
        e.borrow().last().map(|env| {
            (
                env.app.clone(),
                env.handle.clone(),
                if system {
                    Identity::system()
                } else {
                    env.identity.as_deref().cloned().unwrap_or_default()
                },
                env.model.clone(),
                env.id.clone(),
            )
        })
    });
    let Some((Some(app), Some(handle), who, model, id)) = current else {
        return json!({"err": {"status": 500, "message": "ctx.db is not available here"}})
            .to_string();
    };
    let args: Vec<Value> = serde_json::from_str(&args).unwrap_or_default();
    let same = Same {
        model: &model,
        id: id.as_deref(),
    };
    let out = handle.block_on(run_op(&app, &who, same, &op, &args));
    match out {
        Ok(value) => json!({ "ok": value }).to_string(),
        Err(e) => {
            let status = status_of(&e);
            let message = if status >= 500 {
                "the server could not do that".to_owned()
            } else {
                e.to_string()
            };
            let stash = ENV.with(|env| {
                env.borrow_mut().last_mut().map(|env| {
                    env.stash.push(e);
                    env.stash.len() - 1
                })
            });
            json!({"err": {"status": status, "message": message, "stash": stash}}).to_string()
        }
    }
}

/// The hook's own document, which writes from inside it leave silenced.
#[derive(Clone, Copy)]
struct Same<'a> {
    model: &'a str,
    id: Option<&'a str>,
}

impl Same<'_> {
    fn is(&self, model: &str, id: &str) -> bool {
        self.model == model && self.id == Some(id)
    }
}

async fn run_op(
    app: &App,
    who: &Identity,
    same: Same<'_>,
    op: &str,
    args: &[Value],
) -> Result<Value, CoreError> {
    let slug = text_arg(args, 0, "model")?;
    match op {
        "find" => {
            let req = ListRequest {
                params: list_params(app, slug, args.get(1), args.get(2))?,
            };
            let out = app.list(who, slug, &req).await?;
            Ok(Value::Array(
                out.data.into_iter().map(Value::Object).collect(),
            ))
        }
        "count" => {
            let params = list_params(app, slug, args.get(1), None)?;
            Ok(Value::from(app.count(who, slug, &params).await?))
        }
        "get" => {
            let id = text_arg(args, 1, "id")?;
            Ok(Value::Object(app.get_one(who, slug, id, false).await?))
        }
        "create" => {
            let doc = object_arg(args, 1, "document")?;
            let made = app.create(who, slug, doc, WriteOptions::default()).await?;
            Ok(Value::Object(made))
        }
        "update" => {
            let id = text_arg(args, 1, "id")?;
            let patch = object_arg(args, 2, "patch")?;
            let opts = WriteOptions {
                silence: same.is(slug, id),
                ..WriteOptions::default()
            };
            Ok(Value::Object(app.update(who, slug, id, patch, opts).await?))
        }
        "remove" => {
            let id = text_arg(args, 1, "id")?;
            let opts = DeleteOptions {
                silence: same.is(slug, id),
                ..DeleteOptions::default()
            };
            app.delete(who, slug, id, opts).await?;
            Ok(Value::Bool(true))
        }
        other => Err(CoreError::BadRequest(format!("ctx.db has no {other}"))),
    }
}

/// A list's parameters from a `/query`-style filter and `{sort, limit, page, fields}`.
fn list_params(
    app: &App,
    slug: &str,
    filter: Option<&Value>,
    options: Option<&Value>,
) -> Result<jxp_query::ListParams, CoreError> {
    let model = app.model(slug)?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(o)) = options {
        match o.get("sort") {
            Some(Value::Object(s)) => {
                for (field, dir) in s {
                    pairs.push((format!("sort[{field}]"), scalar(dir)));
                }
            }
            Some(Value::String(s)) => pairs.push(("sort".into(), s.clone())),
            _ => {}
        }
        for key in ["limit", "page"] {
            if let Some(v) = o.get(key) {
                pairs.push((key.into(), scalar(v)));
            }
        }
        match o.get("fields") {
            Some(Value::Array(f)) => {
                let names: Vec<String> = f.iter().map(scalar).collect();
                pairs.push(("fields".into(), names.join(",")));
            }
            Some(Value::String(s)) => pairs.push(("fields".into(), s.clone())),
            _ => {}
        }
    }
    let mut params = parse_list_params(model, &pairs)?;
    if let Some(f) = filter.filter(|f| !f.is_null()) {
        let parsed = parse_mongo_filter(model, f)?;
        if parsed != Filter::All {
            params.filter = std::mem::replace(&mut params.filter, Filter::All).and(parsed);
            params.filtered = true;
        }
    }
    Ok(params)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn text_arg<'a>(args: &'a [Value], i: usize, what: &str) -> Result<&'a str, CoreError> {
    args.get(i).and_then(Value::as_str).ok_or_else(|| {
        CoreError::BadRequest(format!(
            "ctx.db: argument {} ({what}) must be a string",
            i + 1
        ))
    })
}

fn object_arg(args: &[Value], i: usize, what: &str) -> Result<jxp_model::Document, CoreError> {
    match args.get(i) {
        Some(Value::Object(o)) => Ok(o.clone()),
        _ => Err(CoreError::BadRequest(format!(
            "ctx.db: argument {} ({what}) must be an object",
            i + 1
        ))),
    }
}

/// The status a script sees on an app error (the HTTP layer's, for the errors `ctx.db`
/// meets); an error the script lets through is answered by the HTTP layer itself.
fn status_of(e: &CoreError) -> u16 {
    match e {
        CoreError::UnknownModel(_) | CoreError::NotFound(_) => 404,
        CoreError::Forbidden(_) => 403,
        CoreError::Unauthorized(_) => 401,
        CoreError::BadRequest(_) | CoreError::Validation(_) | CoreError::Query(_) => 400,
        CoreError::Duplicate { .. }
        | CoreError::VersionConflict { .. }
        | CoreError::Referenced { .. }
        | CoreError::NotEmpty { .. } => 409,
        CoreError::Hook(HookError::Reject { status, .. }) => *status,
        _ => 500,
    }
}

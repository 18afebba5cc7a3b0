//! Script exports as hooks of the app's registry: each export present in a script becomes
//! the Rust hook of the same point, so scripts run where Rust hooks run and their writes
//! take the same write path. Here the registry's contexts become the `ctx` objects of SPEC
//! §10 and what a script answers becomes what the registry expects.

use std::borrow::Cow;
use std::sync::Arc;

use jxp_core::{
    CallCtx, HookError, Hooks, Identity, LoggedInCtx, LoginCtx, ReadEvent, ReadRef, RefFuture,
    WriteCtx, WriteEvent, WrittenCtx,
};
use jxp_model::{Document, Model};
use jxp_query::Filter;
use serde_json::{Value, json};

use crate::engine::{Answer, Target};
use crate::filters::Filters;
use crate::pool::{CtxKeys, Job, Pool, Site};

/// The exports of one script, as the check found them.
pub(crate) struct Exports {
    pub key: String,
    pub names: Vec<String>,
    pub functions: Vec<String>,
}

/// Files every export of `exports` in `hooks`; `model` is the script's model (none for
/// `_app.js`).
pub(crate) fn register(
    pool: &Arc<Pool>,
    exports: &Exports,
    model: Option<Arc<Model>>,
    hooks: &mut Hooks,
) {
    let key = exports.key.as_str();
    for name in &exports.names {
        let target = pool.site(Target::Export {
            key: key.to_owned(),
            name: name.clone(),
        });
        let pool = pool.clone();
        match (name.as_str(), &model) {
            ("pre_post", _) => pre_write(hooks, pool, target, WriteEvent::Post, key),
            ("pre_put", _) => pre_write(hooks, pool, target, WriteEvent::Put, key),
            ("pre_delete", _) => pre_write(hooks, pool, target, WriteEvent::Delete, key),
            ("post_post", _) => post_write(hooks, pool, target, WriteEvent::Post, key),
            ("post_put", _) => post_write(hooks, pool, target, WriteEvent::Put, key),
            ("post_delete", _) => post_write(hooks, pool, target, WriteEvent::Delete, key),
            ("pre_get", Some(model)) => {
                // One cache for both events: the same answer is the same filter.
                let filters = Arc::new(Filters::new(model.clone()));
                for event in [ReadEvent::Get, ReadEvent::GetOne] {
                    pre_read(hooks, pool.clone(), target.clone(), event, filters.clone());
                }
            }
            ("pre_login", _) => {
                hooks.pre_login(move |c: LoginCtx| {
                    let (pool, target) = (pool.clone(), target.clone());
                    async move {
                        let ctx = json!({ "email": c.email });
                        pool.run(job(target, ctx, Identity::anonymous(), APP, None, false))
                            .await
                            .map(drop)
                    }
                });
            }
            ("post_login", _) => {
                hooks.post_login(move |c: LoggedInCtx| {
                    let (pool, target) = (pool.clone(), target.clone());
                    async move {
                        let ctx = json!({ "user": c.user, "result": c.result });
                        let out = pool
                            .run(job(target, ctx, Identity::anonymous(), APP, None, false))
                            .await?;
                        object_or_nothing(out, Document::new())
                    }
                });
            }
            _ => {}
        }
    }
    for name in &exports.functions {
        let target = pool.site(Target::Function {
            key: key.to_owned(),
            name: name.clone(),
        });
        let pool = pool.clone();
        let slug = key.to_owned();
        hooks.function(key, name, move |c: CallCtx| {
            let (pool, target, slug) = (pool.clone(), target.clone(), slug.clone());
            async move {
                let id = c
                    .item
                    .as_ref()
                    .and_then(|d| d.get("_id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let ctx = json!({ "params": c.body, "id": id, "doc": c.item });
                pool.run(job(target, ctx, c.identity, &slug, id, true))
                    .await
            }
        });
    }
}

const APP: &str = crate::load::APP_KEY;

/// A call with `ctx`'s fields; `with_user`: with `ctx.user` first, made from `identity`.
fn job(
    target: Arc<Site>,
    ctx: Value,
    identity: Identity,
    model: &str,
    id: Option<String>,
    with_user: bool,
) -> Job<'static> {
    Job {
        site: target,
        ctx,
        keys: CtxKeys {
            user: with_user,
            id: false,
        },
        identity: Cow::Owned(identity),
        model: Cow::Owned(model.to_owned()),
        id: id.map(Cow::Owned),
    }
}

fn pre_write(hooks: &mut Hooks, pool: Arc<Pool>, target: Arc<Site>, event: WriteEvent, slug: &str) {
    hooks.pre_write(event, slug, move |c: WriteCtx| {
        let (pool, target) = (pool.clone(), target.clone());
        async move {
            let ctx = match event {
                WriteEvent::Post => json!({ "doc": c.doc }),
                WriteEvent::Delete => json!({ "doc": c.current, "id": c.id }),
                _ => json!({ "doc": c.current, "patch": c.doc, "id": c.id }),
            };
            let out = pool
                .run(job(target, ctx, c.identity, &c.model, c.id.clone(), true))
                .await?;
            if event == WriteEvent::Delete {
                return Ok(c.doc);
            }
            object_or_nothing(out, c.doc)
        }
    });
}

fn post_write(
    hooks: &mut Hooks,
    pool: Arc<Pool>,
    target: Arc<Site>,
    event: WriteEvent,
    slug: &str,
) {
    hooks.post_write(event, slug, move |c: WrittenCtx| {
        let (pool, target) = (pool.clone(), target.clone());
        async move {
            let mut ctx = json!({ "doc": c.doc, "id": c.id });
            if let Some(before) = c.before {
                ctx["before"] = Value::Object(before);
            }
            let id = Some(c.id.clone());
            pool.run(job(target, ctx, c.identity, &c.model, id, true))
                .await
                .map(drop)
        }
    });
}

/// What a `pre_get` hook holds: one handle for each call to take.
struct PreRead {
    pool: Arc<Pool>,
    target: Arc<Site>,
    filters: Arc<Filters>,
}

impl PreRead {
    /// The filter a call's answer stands for (none: every document).
    fn filter(&self, done: Result<Answer, HookError>) -> Result<Arc<Filter>, HookError> {
        self.filters.of(done?)
    }
}

fn pre_read(
    hooks: &mut Hooks,
    pool: Arc<Pool>,
    target: Arc<Site>,
    event: ReadEvent,
    filters: Arc<Filters>,
) {
    let slug = filters.model().slug.clone();
    let hook = Arc::new(PreRead {
        pool,
        target,
        filters,
    });
    // Borrows the read: the caller, the model and the id are copied only for a call that
    // goes to the pool.
    hooks.pre_read_ref(
        event,
        slug.as_str(),
        move |c: ReadRef<'_>| -> RefFuture<'_, _> {
            let job = Job {
                site: hook.target.clone(),
                ctx: Value::Null,
                keys: CtxKeys {
                    user: true,
                    id: true,
                },
                identity: Cow::Borrowed(c.identity),
                model: Cow::Borrowed(c.model),
                id: c.id.map(Cow::Borrowed),
            };
            // Most calls are answered on this thread at once: their future is a small ready
            // one, not `run_text`'s.
            if let Some(done) = hook.pool.run_now(&job) {
                return Box::pin(std::future::ready(hook.filter(done)));
            }
            let hook = hook.clone();
            Box::pin(async move {
                let done = hook.pool.run_pooled(job).await;
                hook.filter(done)
            })
        },
    );
}

/// What a hook answered, merged into `base`: an object adds or replaces keys; nothing leaves
/// `base` as it is; anything else is the script's fault.
fn object_or_nothing(out: Value, mut base: Document) -> Result<Document, HookError> {
    match out {
        Value::Null => Ok(base),
        Value::Object(fields) => {
            base.extend(fields);
            Ok(base)
        }
        other => {
            tracing::error!(answer = %other, "a hook answered something other than an object");
            Err(HookError::reject(500, "hook failed"))
        }
    }
}

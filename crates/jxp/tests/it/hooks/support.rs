//! A server with a recording set of hooks: every hook writes its name into a `Recorder`, so a
//! scenario can assert exactly which hooks fired, in order.

use std::sync::{Arc, Mutex};

use jxp::{Filter, HookError, Hooks, Identity, Op, Path, ReadEvent, WriteCtx, WriteEvent};
use serde_json::{Value, json};

use crate::harness::{self, Account, Auth, TestServer};

/// Anyone reads, users write; hooks hide `hidden` widgets from everyone but admins.
pub const WIDGET: &str = r#"
name = "Widget"
[fields]
name = "String"
tag = "String"
price = { type = "Number", min = 0 }
hidden = "Boolean"
stamped = "String"
[perms]
all = "r"
user = "crud"
"#;

/// Open to all, and covered only by the all-model hooks (plus a read hook for anonymous
/// callers).
pub const GADGET: &str = r#"
name = "Gadget"
[fields]
name = "String"
widget_id = { type = "ObjectId", link = "Widget" }
[perms]
all = "crud"
"#;

/// Functions: anyone may read (so GET), users may create (so POST).
pub const LEDGER: &str = r#"
name = "Ledger"
[fields]
name = "String"
total = "Number"
[perms]
all = "r"
user = "c"
admin = "crud"
[options]
callable = ["summary", "add", "item_total", "fail", "unregistered"]
"#;

/// A server on the gadget and widget models with `hooks` alone.
pub async fn gadgets_and_widgets(hooks: Hooks) -> TestServer {
    TestServer::start_with_hooks(&[("gadget", GADGET), ("widget", WIDGET)], &[], hooks).await
}

/// The names of the hooks that ran, in order.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    pub fn log(&self, what: impl Into<String>) {
        self.0.lock().unwrap().push(what.into());
    }

    /// What ran since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn name_of(doc: &jxp::Document) -> &str {
    doc.get("name").and_then(Value::as_str).unwrap_or_default()
}

fn who(identity: &Identity) -> String {
    identity
        .user
        .as_ref()
        .map_or_else(|| "anonymous".to_owned(), |u| u.email.clone())
}

fn upper_tag(mut ctx: WriteCtx) -> jxp::Document {
    if let Some(Value::String(tag)) = ctx.doc.get("tag") {
        let upper = tag.to_uppercase();
        ctx.doc.insert("tag".into(), Value::String(upper));
    }
    ctx.doc
}

/// Non-admins never see hidden widgets.
fn visible_to(identity: &Identity) -> Filter {
    if identity.is_admin() {
        Filter::All
    } else {
        Filter::cond(Path::plain("hidden"), Op::Ne, json!(true))
    }
}

/// The recording hooks and the ledger's functions.
pub fn hooks(rec: &Recorder) -> Hooks {
    let mut h = Hooks::new();
    let r = rec.clone();
    h.pre_write(WriteEvent::Post, "*", move |ctx| {
        r.log(format!("pre:post:*:{}", ctx.model));
        async move { Ok(ctx.doc) }
    });
    let r = rec.clone();
    h.pre_write(WriteEvent::Post, "widget", move |ctx| {
        r.log("pre:post");
        async move {
            match name_of(&ctx.doc) {
                "reject" => Err(HookError::reject(422, "widgets may not be called reject")),
                "negative" => {
                    let mut doc = ctx.doc;
                    doc.insert("price".into(), json!(-1));
                    Ok(doc)
                }
                _ => {
                    let stamp = who(&ctx.identity);
                    let mut doc = upper_tag(ctx);
                    doc.insert("stamped".into(), Value::String(stamp));
                    Ok(doc)
                }
            }
        }
    });
    let r = rec.clone();
    h.pre_write(WriteEvent::Put, "widget", move |ctx| {
        r.log("pre:put");
        async move {
            if name_of(&ctx.doc) == "reject" {
                return Err(HookError::forbidden(
                    "renaming a widget to reject is not allowed",
                ));
            }
            Ok(upper_tag(ctx))
        }
    });
    let r = rec.clone();
    h.pre_write(WriteEvent::Update, "widget", move |ctx| {
        r.log("pre:update");
        async move { Ok(ctx.doc) }
    });
    let r = rec.clone();
    h.pre_write(WriteEvent::Delete, "widget", move |ctx| {
        r.log("pre:delete");
        async move {
            if ctx.current.as_ref().map(name_of) == Some("keep") {
                return Err(HookError::reject(409, "this widget is kept"));
            }
            Ok(ctx.doc)
        }
    });
    for (event, label) in [
        (WriteEvent::Post, "post"),
        (WriteEvent::Put, "put"),
        (WriteEvent::Delete, "delete"),
    ] {
        let r = rec.clone();
        h.post_write(event, "*", move |ctx| {
            r.log(format!("post:{label}:{}", ctx.model));
            async move {
                if name_of(&ctx.doc) == "explode" {
                    return Err(HookError::reject(500, "post-hook failure"));
                }
                Ok(())
            }
        });
    }
    let r = rec.clone();
    h.pre_read(ReadEvent::Get, "widget", move |ctx| {
        r.log("pre:get");
        async move { Ok(visible_to(&ctx.identity)) }
    });
    let r = rec.clone();
    h.pre_read(ReadEvent::GetOne, "widget", move |ctx| {
        r.log("pre:get_one");
        async move { Ok(visible_to(&ctx.identity)) }
    });
    let r = rec.clone();
    h.pre_read(ReadEvent::Get, "gadget", move |ctx| {
        r.log("pre:get:gadget");
        async move {
            if ctx.identity.user.is_none() {
                return Err(HookError::reject(401, "log in to list gadgets"));
            }
            if who(&ctx.identity).starts_with("outsider") {
                return Err(HookError::forbidden("gadgets are for insiders"));
            }
            Ok(Filter::All)
        }
    });
    let r = rec.clone();
    h.pre_login(move |ctx| {
        r.log("pre:login");
        async move {
            if ctx.email.starts_with("banned") {
                return Err(HookError::forbidden("this account is suspended"));
            }
            Ok(())
        }
    });
    let r = rec.clone();
    h.post_login(move |ctx| {
        r.log("post:login");
        async move {
            let mut extra = jxp::Document::new();
            extra.insert(
                "greeting".into(),
                json!(format!("hello {}", name_of(&ctx.user))),
            );
            extra.insert("token".into(), json!("a hook may not replace this"));
            Ok(extra)
        }
    });
    functions(&mut h, rec);
    h
}

fn functions(h: &mut Hooks, rec: &Recorder) {
    let r = rec.clone();
    h.function("ledger", "summary", move |ctx| {
        r.log("fn:summary");
        async move {
            Ok(json!({
                "caller": who(&ctx.identity),
                "verb": format!("{:?}", ctx.verb),
                "body": ctx.body,
            }))
        }
    });
    let r = rec.clone();
    h.function("ledger", "add", move |ctx| {
        r.log("fn:add");
        async move {
            let mut doc = jxp::Document::new();
            doc.insert("name".into(), ctx.body["name"].clone());
            doc.insert("total".into(), ctx.body["total"].clone());
            let created = ctx
                .app
                .create(&ctx.identity, "ledger", doc, Default::default())
                .await?;
            Ok(Value::Object(created))
        }
    });
    let r = rec.clone();
    h.function("ledger", "item_total", move |ctx| {
        r.log("fn:item_total");
        async move {
            let total = ctx
                .item
                .as_ref()
                .and_then(|i| i.get("total"))
                .and_then(Value::as_f64)
                .unwrap_or_default();
            Ok(json!({ "double": total * 2.0 }))
        }
    });
    let r = rec.clone();
    h.function("ledger", "fail", move |_ctx| {
        r.log("fn:fail");
        async move { Err(HookError::reject(402, "pay first")) }
    });
    // Registered but not listed in `callable`: never reachable.
    let r = rec.clone();
    h.function("ledger", "secret", move |_ctx| {
        r.log("fn:secret");
        async move { Ok(json!("leaked")) }
    });
    // Listed, but registered for another model: not this model's function.
    let r = rec.clone();
    h.function("gadget", "unregistered", move |_ctx| {
        r.log("fn:gadget:unregistered");
        async move { Ok(json!("wrong model")) }
    });
}

/// A server with the recording hooks, an admin and a user, and no hook runs recorded yet.
pub struct World {
    pub s: TestServer,
    pub rec: Recorder,
    pub admin: Account,
    pub user: Account,
}

impl World {
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let rec = Recorder::default();
        let s = TestServer::start_with_hooks(
            &[("widget", WIDGET), ("gadget", GADGET), ("ledger", LEDGER)],
            &harness::logins_unlimited(env),
            hooks(&rec),
        )
        .await;
        let admin = harness::setup_admin(&s).await;
        let user = harness::create_user(&s, &admin.basic(), "carol").await;
        rec.take();
        World {
            s,
            rec,
            admin,
            user,
        }
    }

    pub fn user_auth(&self) -> Auth {
        self.user.basic()
    }

    /// A widget created as the user, with the hook runs it caused forgotten.
    pub async fn widget(&self, body: Value) -> String {
        let id = harness::create_as(&self.s, &self.user, "widget", body).await;
        self.rec.take();
        id
    }

    /// A document as an admin reads it (deleted ones too), without recording hook runs.
    pub async fn stored(&self, model: &str, id: &str) -> Option<jxp::Document> {
        self.s.app().reader().get(model, id).await.unwrap()
    }
}

//! The scripted world the script tests start from: a `widget` model with a script for every
//! hook point, an `audit` model its post-hooks write to through `ctx.system`, `_app.js` with
//! the login hooks, an admin and a user.

use serde_json::Value;

use crate::harness::{self, Account, Auth, TestServer};

pub const WIDGET: &str = r#"
name = "Widget"
[fields]
name = "String"
tag = "String"
stamped = "String"
status = { type = "String", default = "live" }
[perms]
admin = "crud"
user = "crud"
[options]
callable = ["stats", "spin", "boom", "globals", "imports", "audits", "chores", "forbidden"]
advanced_queries = { query = true }
"#;

pub const AUDIT: &str = r#"
name = "Audit"
[fields]
what = "String"
ref = "String"
by = "String"
stamp = "String"
[perms]
admin = "crud"
user = "r"
"#;

pub const WIDGET_JS: &str = r#"
// Every hook point of a model, each leaving a trace a test can see.
export async function pre_post(ctx) {
  if (ctx.doc.name === "reject") throw new JxpError(422, "widgets may not be called reject");
  // JXP's own test model refuses a document this way, from a pre-save hook.
  if (ctx.doc.name === "teapot") throw new JxpError(418, "I'm a teapot");
  if (ctx.doc.name === "boom") throw new Error("secret detail 42");
  console.log("creating", ctx.doc.name);
  return { tag: (ctx.doc.tag || "").toUpperCase(), stamped: ctx.user ? ctx.user.email : "anonymous" };
}

export function pre_put(ctx) {
  if (ctx.patch.name === "reject") throw new JxpError(403, "no renaming to reject");
  return { stamped: `${ctx.doc.name}->${ctx.patch.name}:${ctx.id === ctx.doc._id}` };
}

export function pre_delete(ctx) {
  if (ctx.doc.name === "keep") throw new JxpError(409, `${ctx.id} is kept`);
}

export async function post_post(ctx) {
  await ctx.system.create("audit", { what: "post", ref: ctx.doc._id, by: ctx.user.email });
}

export async function post_put(ctx) {
  await ctx.system.create("audit", { what: `put:${ctx.before.name}->${ctx.doc.name}`, ref: ctx.id, by: ctx.user.email });
  // A write to the hook's own document does not run its hooks again (nor send an event).
  if (ctx.doc.name === "echo") await ctx.system.update("widget", ctx.id, { tag: "echoed" });
}

export async function post_delete(ctx) {
  await ctx.system.create("audit", { what: "delete:" + ctx.doc.name, ref: ctx.doc._id, by: ctx.user.email });
}

export function pre_get(ctx) {
  if (ctx.user && ctx.user.admin) return null;
  return { status: "live" };
}

export const functions = {
  async stats(ctx) {
    return {
      params: ctx.params,
      id: ctx.id ?? null,
      name: ctx.doc ? ctx.doc.name : null,
      seen: await ctx.db.count("widget"),
      user: ctx.user.email,
    };
  },
  spin() { for (;;) {} },
  boom() { throw new Error("secret detail 43"); },
  globals() {
    const names = ["require", "process", "fetch", "setTimeout", "setInterval", "XMLHttpRequest",
      "WebSocket", "std", "os", "Deno", "Bun", "__jxp_db", "__jxp_log"];
    return Object.fromEntries(names.map((n) => [n, typeof globalThis[n]]));
  },
  async imports() {
    try { await import("./audit.js"); return "loaded"; } catch (e) { return "refused"; }
  },
  async chores(ctx) {
    const made = await ctx.db.create("widget", { name: "chore", tag: "low" });
    const got = await ctx.db.get("widget", made._id);
    const changed = await ctx.db.update("widget", made._id, { name: "done" });
    await ctx.db.remove("widget", made._id);
    let refused = null;
    try { await ctx.db.create("audit", { what: "sneaky" }); } catch (e) { refused = [e.name, e.status]; }
    return {
      made: [made.tag, made.stamped], got: got.name, changed: changed.stamped, refused,
      left: await ctx.db.count("widget", { name: "done" }),
    };
  },
  async forbidden(ctx) { await ctx.db.create("audit", { what: "sneaky" }); },
  async audits(ctx) {
    return (await ctx.db.find("audit", { ref: ctx.params.ref }, { sort: { what: 1 } })).map((a) => a.what);
  },
};
"#;

pub const APP_JS: &str = r#"
export function pre_login(ctx) {
  if (ctx.email.startsWith("blocked")) throw new JxpError(403, "this account is blocked");
}

export async function post_login(ctx) {
  return {
    greeting: `hello ${ctx.user.name}`,
    for_id: ctx.result.user_id,
    until: ctx.result.token_expires,
    saw_secrets: ["token", "refresh_token", "apikey"].filter((k) => k in ctx.result),
  };
}
"#;

/// The audit model's own hook, which the widget hooks' `ctx.system` writes run.
pub const AUDIT_JS: &str = r#"
export function pre_post(ctx) {
  return { stamp: ctx.user && ctx.user.system ? "audit.js as system" : "audit.js as a user" };
}
"#;

pub struct World {
    pub s: TestServer,
    pub admin: Account,
    pub user: Account,
}

impl World {
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let s = TestServer::start_scripted(
            &[("widget", WIDGET), ("audit", AUDIT)],
            &[
                ("widget.js", WIDGET_JS),
                ("audit.js", AUDIT_JS),
                ("_app.js", APP_JS),
            ],
            env,
        )
        .await;
        let admin = harness::setup_admin(&s).await;
        let user = harness::create_user(&s, &admin.basic(), "Una").await;
        World { s, admin, user }
    }

    /// Creates a widget as the user; answers the stored document as answered.
    pub async fn widget(&self, body: Value) -> Value {
        let got = harness::post(&self.s, "/api/widget", &self.user.basic(), body).await;
        assert_eq!(got.0, reqwest::StatusCode::OK, "{}", got.1);
        got.1["data"].clone()
    }

    /// The audit rows, oldest first, as `what` strings.
    pub async fn audits(&self) -> Vec<String> {
        let got = harness::get(&self.s, "/api/audit?sort=createdAt", &self.admin.basic()).await;
        assert_eq!(got.0, reqwest::StatusCode::OK, "{}", got.1);
        got.1["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["what"].as_str().unwrap().to_owned())
            .collect()
    }

    /// How many widgets are stored, deleted ones included.
    pub async fn widgets_stored(&self) -> u64 {
        self.s
            .app()
            .reader()
            .count("widget", &jxp_query::Filter::All)
            .await
            .unwrap()
    }

    pub fn user_auth(&self) -> Auth {
        self.user.basic()
    }

    pub fn admin_auth(&self) -> Auth {
        self.admin.basic()
    }

    /// The widget `id` as stored, whatever the hooks let anyone read.
    pub async fn stored(&self, id: &str) -> Option<Value> {
        self.s
            .app()
            .reader()
            .get("widget", id)
            .await
            .unwrap()
            .map(Value::Object)
    }
}

pub fn ctx_id(doc: &Value) -> String {
    doc["_id"].as_str().unwrap().to_owned()
}

// Script hooks for the `test` model: business rules in JavaScript, no Rust to compile.
// jxp loads `models/<slug>.js` (and `models/_app.js` for login hooks) at start; every export is
// optional and may be async. An export name not listed here stops start-up, so a typo such as
// `pre_psot` is caught at once. Scripts have no file system, network, timers or imports; each
// call is stopped after SCRIPT_TIMEOUT_MS (1000) with 500 "hook timed out".

// Before a create, after the permission check. `ctx.doc` is the new document; an object
// returned is merged into it and then validated like the client's own fields.
export function pre_post(ctx) {
  if (typeof ctx.doc.foo === "string" && ctx.doc.foo.trim() === "forbidden") {
    // Answers 422 {"code": "UnprocessableEntity", "message": "…"}; nothing is written.
    throw new JxpError(422, "foo may not be 'forbidden'");
  }
  return { foo: typeof ctx.doc.foo === "string" ? ctx.doc.foo.trim() : ctx.doc.foo };
}

// Before an update: `ctx.doc` is the stored document, `ctx.patch` the change, `ctx.id` its id.
// An object returned is merged into the patch.
// export function pre_put(ctx) { return { foo: ctx.patch.foo?.trim() }; }

// After a create has committed: errors here are only logged. `ctx.db` reads and writes as
// the caller, `ctx.system` with every right; their writes send events and run other models'
// hooks like any write.
export async function post_post(ctx) {
  console.log("created", ctx.doc._id, "by", ctx.user ? ctx.user.email : "anonymous");
}

// Before every read (lists, one document, counts, CSV, /query and the realtime feed): a
// filter in /query's form, ANDed with what the caller may read. null leaves reads alone.
// export function pre_get(ctx) {
//   return ctx.user && ctx.user.admin ? null : { status: { $ne: "archived" } };
// }

// Functions served at /call/test/<name> for names listed in `callable` in test.toml.
export const functions = {
  // GET /call/test/summary?min=2 → {"data": {"total": …, "at_least": …}}
  async summary(ctx) {
    const min = Number(ctx.params.min ?? 0);
    return {
      total: await ctx.db.count("test"),
      at_least: await ctx.db.count("test", { n: { $gte: min } }),
    };
  },
};

// The jxp console: one page, routed by the URL's hash. It talks only to the server that served
// it, through the same REST routes and WebSocket feed as any client, with the signed-in
// user's token (kept in this tab's sessionStorage only). Every value from the server is put
// in the page as text, never as markup.
"use strict";

const origin = location.origin;
const session = {
  get token() { return sessionStorage.getItem("jxp.token"); },
  get email() { return sessionStorage.getItem("jxp.email"); },
  save(token, email) {
    sessionStorage.setItem("jxp.token", token);
    sessionStorage.setItem("jxp.email", email);
  },
  clear() {
    sessionStorage.removeItem("jxp.token");
    sessionStorage.removeItem("jxp.email");
  },
};
let config = { access: "protected" };
let models = null;
let live = null;

// Builds an element: attributes (event handlers as on*), then children (text or nodes).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "value") node.value = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
}

function errorBox(text) {
  return el("p", { class: "error", id: "error", role: "alert" }, text);
}

// Calls the API; answers { status, body } (body parsed when it is JSON).
async function api(method, path, body) {
  const headers = {};
  if (session.token) headers.Authorization = "Bearer " + session.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: kept as text */ }
  return { status: res.status, body: parsed };
}

function refusal(res) {
  const message = res.body && typeof res.body === "object" ? res.body.message : res.body;
  return `${res.status}: ${message || "refused"}`;
}

function curl(method, path, body) {
  const parts = ["curl"];
  if (method !== "GET") parts.push("-X " + method);
  parts.push('-H "X-API-Key: $JXP_API_KEY"');
  if (body) parts.push("-H 'Content-Type: application/json'", "-d '" + body + "'");
  parts.push("'" + origin + path + "'");
  return parts.join(" ");
}

function drawHeader() {
  const nav = document.getElementById("nav");
  nav.replaceChildren(
    el("a", { href: "#/" }, "Models"),
    el("a", { href: "#/auth" }, "Authentication"),
    config.mcp ? el("a", { href: "#/mcp" }, "MCP") : null,
  );
  const who = document.getElementById("who");
  if (session.token) {
    who.replaceChildren(
      el("span", { id: "signed-in" }, session.email || "signed in"), " ",
      el("button", { class: "plain", id: "sign-out", onclick: signOut }, "Sign out"),
    );
  } else {
    who.replaceChildren(el("a", { href: "#/signin", id: "sign-in-link" }, "Sign in"));
  }
}

async function signOut() {
  if (session.token) await api("GET", "/logout").catch(() => {});
  session.clear();
  models = null;
  location.hash = "#/signin";
  route();
}

async function loadModels() {
  if (models) return models;
  const res = await api("GET", "/model");
  if (res.status !== 200) throw new Error(refusal(res));
  models = res.body;
  return models;
}

function needsSignIn() {
  return config.access === "protected" && !session.token;
}

function signInFirst() {
  show(
    el("h1", {}, "Sign in"),
    el("p", { class: "muted" }, "This server's console shows its models to signed-in users."),
    signInForm(),
  );
}

function signInForm() {
  const email = el("input", { id: "signin-email", type: "email", placeholder: "email", autocomplete: "username", required: true });
  const password = el("input", { id: "signin-password", type: "password", placeholder: "password", autocomplete: "current-password", required: true });
  const out = el("div", { id: "signin-result" });
  const form = el("form", {
    id: "signin",
    onsubmit: async (e) => {
      e.preventDefault();
      out.replaceChildren();
      const res = await api("POST", "/login", { email: email.value, password: password.value });
      if (res.status === 200 && res.body && res.body.token) {
        session.save(res.body.token, email.value);
        models = null;
        location.hash = "#/";
        route();
      } else {
        out.replaceChildren(errorBox(refusal(res)));
      }
    },
  }, email, password, el("button", { id: "signin-submit", type: "submit" }, "Sign in"));
  return el("div", {}, form, out);
}

async function home(view) {
  if (needsSignIn()) return signInFirst();
  const list = await loadModels();
  view(
    el("h1", {}, "Models"),
    el("p", { class: "muted" }, `Every model this server serves, with the rights of each group (c create, r read, u update, d delete). The API is at ${origin}.`),
    el("p", { id: "documents" }, "For code generators and tools: ",
      el("a", { href: "/openapi.json" }, "/openapi.json"), " (OpenAPI 3.1, the REST API) and ",
      el("a", { href: "/asyncapi.json" }, "/asyncapi.json"), " (AsyncAPI 3, the realtime feed)."),
    el("table", { id: "models" },
      el("tr", {}, el("th", {}, "Model"), el("th", {}, "Name"), el("th", {}, "Permissions"), el("th", {}, "")),
      list.map((m) => el("tr", { "data-model": m.model },
        el("td", {}, el("a", { href: "#/model/" + m.model }, m.model)),
        el("td", {}, m.name),
        el("td", {}, Object.entries(m.perms || {}).map(([g, p]) => el("span", { class: "pill" }, `${g}: ${p}`))),
        el("td", {},
          el("a", { href: "#/explore/" + m.model }, "explore"), " · ",
          el("a", { href: "#/live/" + m.model }, "live")),
      )),
    ),
  );
}

function authPage() {
  show(
    el("h1", {}, "Authentication"),
    el("p", {}, "Sign in with POST /login; its answer holds a token (for apps people log into) and an API key (for scripts and servers)."),
    el("pre", {}, curl("POST", "/login", '{"email":"you@example.com","password":"…"}').replace('-H "X-API-Key: $JXP_API_KEY" ', "")),
    el("table", {},
      el("tr", {}, el("th", {}, "credential"), el("th", {}, "send it as")),
      el("tr", {}, el("td", {}, "token"), el("td", {}, el("code", {}, "Authorization: Bearer <token>"), " (refresh with POST /refresh)")),
      el("tr", {}, el("td", {}, "API key"), el("td", {}, el("code", {}, "X-API-Key: <apikey>"), " or ", el("code", {}, "?apikey=<apikey>"))),
      el("tr", {}, el("td", {}, "email and password"), el("td", {}, el("code", {}, "Authorization: Basic"), " (curl -u email:password)")),
      el("tr", {}, el("td", {}, "realtime feed"), el("td", {}, "send ", el("code", {}, '{"action":"auth","data":{"token":"…"}}'), " on " + wsUrl())),
    ),
    session.token ? el("p", { class: "ok" }, "Signed in as " + session.email + ".") : signInForm(),
  );
}

function signInPage() {
  show(el("h1", {}, "Sign in"), signInForm());
}

function fieldRows(fields, prefix) {
  const rows = [];
  for (const [name, f] of Object.entries(fields || {})) {
    const path = prefix ? prefix + "." + name : name;
    const notes = [];
    for (const [k, v] of Object.entries(f)) {
      if (k === "type" || k === "fields" || k === "items") continue;
      notes.push(v === true ? k : `${k}: ${JSON.stringify(v)}`);
    }
    const type = f.items ? `${f.type} of ${f.items.type}` : f.type;
    rows.push(el("tr", {}, el("td", {}, el("code", {}, path)), el("td", {}, type), el("td", {}, notes.join(", "))));
    if (f.fields) rows.push(...fieldRows(f.fields, path));
    if (f.items && f.items.fields) rows.push(...fieldRows(f.items.fields, path + "[]"));
  }
  return rows;
}

function routesOf(m) {
  const slug = m.model;
  const o = m.options || {};
  const r = [
    ["GET", `/api/${slug}`, "list (filter[field]=v, sort[field]=1|-1, limit, page, fields, populate)"],
    ["GET", `/api/${slug}/:id`, "one document"],
    ["POST", `/api/${slug}`, "create", "{…}"],
    ["PUT", `/api/${slug}/:id`, "update the fields sent", "{…}"],
    ["DELETE", `/api/${slug}/:id`, "delete"],
    ["GET", `/count/${slug}`, "count with the list's filters"],
    ["GET", `/csv/${slug}`, "the list as CSV"],
  ];
  const aq = o.advanced_queries || {};
  if (aq.query) r.push(["POST", `/query/${slug}`, "Mongo-style filter", '{"query":{}}']);
  if (aq.aggregate) r.push(["POST", `/aggregate/${slug}`, "aggregation pipeline", '[{"$count":"n"}]']);
  if (aq.bulkwrite) r.push(["POST", `/bulkwrite/${slug}`, "bulk writes", '[{"insertOne":{"document":{}}}]']);
  for (const fn of o.callable || []) r.push(["POST", `/call/${slug}/${fn}`, "function " + fn, "{}"]);
  return r;
}

async function modelPage(slug, view) {
  if (needsSignIn()) return signInFirst();
  const res = await api("GET", "/model/" + encodeURIComponent(slug));
  if (res.status !== 200) return view(el("h1", {}, slug), errorBox(refusal(res)));
  const m = res.body;
  view(
    el("h1", {}, m.name, " ", el("span", { class: "muted" }, "/" + m.model)),
    el("p", {}, el("a", { href: "#/explore/" + m.model }, "Explore its documents"), " · ",
      el("a", { href: "#/live/" + m.model }, "Watch it live")),
    el("h2", {}, "Fields"),
    el("table", { id: "fields" }, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "options")), fieldRows(m.fields)),
    el("h2", {}, "Permissions"),
    el("table", { id: "perms" },
      el("tr", {}, el("th", {}, "group"), el("th", {}, "create"), el("th", {}, "read"), el("th", {}, "update"), el("th", {}, "delete")),
      Object.entries(m.perms || {}).map(([g, p]) => el("tr", {}, el("td", {}, g),
        ["c", "r", "u", "d"].map((x) => el("td", {}, p.includes(x) ? "yes" : "—"))))),
    el("h2", {}, "Routes"),
    el("div", { id: "routes" }, routesOf(m).map(([method, path, what, body]) => el("div", {},
      el("p", {}, el("code", {}, method + " " + path), " — " + what),
      el("pre", {}, curl(method, path, body))))),
  );
}

// The explorer: one model's documents with filters, sort and paging, and writes.
async function explore(slug, params, view) {
  if (needsSignIn()) return signInFirst();
  const def = await api("GET", "/model/" + encodeURIComponent(slug));
  if (def.status !== 200) return view(el("h1", {}, slug), errorBox(refusal(def)));
  const fields = Object.keys(def.body.fields || {});
  const state = {
    filters: params.getAll("f").map((f) => f.split("\u0001")).filter((f) => f.length === 3),
    sort: params.get("sort") || "",
    dir: params.get("dir") || "1",
    limit: params.get("limit") || "20",
    page: Number(params.get("page") || "1"),
  };
  const query = new URLSearchParams();
  for (const [f, op, v] of state.filters) query.append(`filter[${f}]`, op === "=" ? v : `${op}:${v}`);
  if (state.sort) query.set(`sort[${state.sort}]`, state.dir);
  query.set("limit", state.limit);
  query.set("page", String(state.page));
  const list = await api("GET", `/api/${slug}?${query}`);

  const go = (next) => {
    const p = new URLSearchParams();
    for (const f of next.filters) p.append("f", f.join("\u0001"));
    if (next.sort) { p.set("sort", next.sort); p.set("dir", next.dir); }
    p.set("limit", next.limit);
    p.set("page", String(next.page));
    location.hash = `#/explore/${slug}?${p}`;
  };
  const field = el("select", { id: "filter-field" }, fields.map((f) => el("option", { value: f }, f)));
  const op = el("select", { id: "filter-op" }, ["=", "$ne", "$gt", "$gte", "$lt", "$lte", "$regex", "$in"].map((o) => el("option", { value: o }, o)));
  const value = el("input", { id: "filter-value", placeholder: "value" });
  const sort = el("select", { id: "sort-field" }, el("option", { value: "" }, "no sort"), ["_id", ...fields].map((f) => el("option", { value: f, selected: f === state.sort }, f)));
  const dir = el("select", { id: "sort-dir" }, el("option", { value: "1", selected: state.dir === "1" }, "ascending"), el("option", { value: "-1", selected: state.dir === "-1" }, "descending"));
  const limit = el("input", { id: "limit", type: "number", min: "1", value: state.limit, class: "narrow" });

  const rows = [];
  let error = null;
  if (list.status !== 200) error = errorBox(refusal(list));
  const docs = list.status === 200 ? list.body.data || [] : [];
  const columns = ["_id", ...fields.filter((f) => docs.some((d) => d[f] !== undefined))];
  for (const d of docs) {
    rows.push(el("tr", { "data-id": d._id },
      columns.map((c) => el("td", { class: c === "_id" ? "" : "json" }, d[c] === undefined ? "" : typeof d[c] === "string" ? d[c] : JSON.stringify(d[c]))),
      el("td", {},
        el("button", { class: "plain", onclick: () => editor(slug, d) }, "Edit"), " ",
        el("button", { class: "danger", onclick: () => remove(slug, d._id) }, "Delete"))));
  }
  const more = list.status === 200 && (list.body.has_more || docs.length === Number(state.limit));
  view(
    el("h1", {}, "Explore ", el("a", { href: "#/model/" + slug }, slug)),
    el("form", {
      id: "filters",
      onsubmit: (e) => {
        e.preventDefault();
        const filters = value.value === "" ? state.filters : [...state.filters, [field.value, op.value, value.value]];
        go({ ...state, filters, sort: sort.value, dir: dir.value, limit: limit.value || "20", page: 1 });
      },
    }, "Filter", field, op, value, "sort", sort, dir, "limit", limit, el("button", { id: "apply", type: "submit" }, "Apply")),
    state.filters.length ? el("div", { class: "bar", id: "active-filters" }, state.filters.map(([f, o, v], i) =>
      el("span", { class: "pill" }, `${f} ${o} ${v} `, el("a", { href: "#", onclick: (e) => {
        e.preventDefault();
        go({ ...state, filters: state.filters.filter((_, j) => j !== i), page: 1 });
      } }, "×")))) : null,
    error,
    el("table", { id: "rows" }, el("tr", {}, columns.map((c) => el("th", {}, c)), el("th", {}, "")), rows),
    el("div", { class: "bar" },
      el("button", { class: "plain", id: "prev", disabled: state.page <= 1, onclick: () => go({ ...state, page: state.page - 1 }) }, "← Previous"),
      el("span", { id: "page" }, "page " + state.page),
      el("button", { class: "plain", id: "next", disabled: !more, onclick: () => go({ ...state, page: state.page + 1 }) }, "Next →")),
    el("div", { id: "write" }),
    el("button", { id: "new", onclick: () => editor(slug, null) }, "New document"),
  );
}

// A JSON editor for a new document (doc null) or an existing one.
function editor(slug, doc) {
  const system = new Set(["_id", "_owner_id", "_deleted", "_version", "createdAt", "updatedAt", "__v"]);
  const start = {};
  if (doc) for (const [k, v] of Object.entries(doc)) if (!system.has(k)) start[k] = v;
  const text = el("textarea", { id: "doc-json" });
  text.value = JSON.stringify(start, null, 2);
  const out = el("div", { id: "write-result" });
  const save = el("button", {
    id: "doc-save",
    onclick: async () => {
      out.replaceChildren();
      let body;
      try { body = JSON.parse(text.value); } catch (e) { return out.replaceChildren(errorBox("not JSON: " + e.message)); }
      const res = doc
        ? await api("PUT", `/api/${slug}/${encodeURIComponent(doc._id)}`, body)
        : await api("POST", `/api/${slug}`, body);
      if (res.status === 200 || res.status === 201) {
        out.replaceChildren(el("p", { class: "ok", id: "write-ok" }, res.body.message || "saved"));
        setTimeout(() => route(), 400);
      } else {
        out.replaceChildren(errorBox(refusal(res)));
      }
    },
  }, doc ? "Save" : "Create");
  document.getElementById("write").replaceChildren(
    el("h2", {}, doc ? "Edit " + doc._id : "New " + slug), text, save, out);
  text.focus();
}

async function remove(slug, id) {
  const res = await api("DELETE", `/api/${slug}/${encodeURIComponent(id)}`);
  const out = document.getElementById("write");
  if (res.status === 200) {
    out.replaceChildren(el("p", { class: "ok", id: "write-ok" }, res.body.message || "deleted"));
    setTimeout(() => route(), 400);
  } else {
    out.replaceChildren(errorBox(refusal(res)));
  }
}

function wsUrl() {
  return (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + "/websocket";
}

// The live view: a subscription to one model; after a dropped connection it reconnects and
// resumes from the last seq it showed, so nothing in between is missed.
function liveView(slug) {
  if (needsSignIn()) return signInFirst();
  const status = el("span", { id: "live-status", class: "pill" }, "connecting");
  const body = el("tbody", { id: "live-events" });
  show(
    el("h1", {}, "Live: ", el("a", { href: "#/model/" + slug }, slug)),
    el("p", { class: "muted" }, "Each create (post), update (put) and delete (del) of a document you may read, as it happens."),
    el("div", { class: "bar" }, "Feed: ", status, el("span", { id: "live-seq", class: "muted" })),
    el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "seq"), el("th", {}, "event"), el("th", {}, "_id"), el("th", {}, "by"), el("th", {}, "document"))),
      body),
  );
  const view = { slug, last: null, socket: null, stopped: false, retry: 500 };
  live = view;
  const connect = () => {
    if (view.stopped) return;
    const ws = new WebSocket(wsUrl());
    view.socket = ws;
    let id = 0;
    const send = (action, data) => ws.send(JSON.stringify({ action, msg_id: String(++id), data }));
    const subscribe = (since) => {
      const data = { model: slug };
      if (since !== null) data.since = since;
      send("subscribe", data);
    };
    ws.onopen = () => {
      status.textContent = "authenticating";
      if (session.token) send("auth", { token: session.token });
      else subscribe(view.last);
    };
    ws.onmessage = (m) => {
      let frame;
      try { frame = JSON.parse(m.data); } catch (_) { return; }
      if (frame.msg_id !== undefined && frame.status !== undefined) {
        if (frame.status === "error") {
          if (frame.message === "resync required") {
            view.last = null;
            body.prepend(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "Missed events were trimmed from the log: reload the explorer for the current state.")));
            subscribe(null);
          } else {
            status.textContent = "refused: " + frame.message;
          }
        } else if (frame.result === "Authed") {
          subscribe(view.last);
        } else if (frame.msg_id !== undefined) {
          status.textContent = "live";
          view.retry = 500;
        }
        return;
      }
      const d = frame.data;
      if (!d || !d.event) return;
      if (d.event === "deauth") {
        status.textContent = "signed out";
        return;
      }
      if (typeof d.seq === "number") {
        view.last = d.seq;
        document.getElementById("live-seq").textContent = " last seq " + d.seq;
      }
      const item = d.item || {};
      body.prepend(el("tr", { "data-seq": d.seq, "data-id": item._id, class: "ev-" + d.event },
        el("td", {}, d.seq), el("td", {}, d.event), el("td", {}, item._id || ""),
        el("td", {}, d.user_name || d.user_id || ""), el("td", { class: "json" }, JSON.stringify(item))));
    };
    ws.onclose = () => {
      if (view.stopped) return;
      status.textContent = "reconnecting";
      setTimeout(connect, view.retry);
      view.retry = Math.min(view.retry * 2, 8000);
    };
  };
  view.reconnect = connect;
  connect();
}

function stopLive() {
  if (live) {
    live.stopped = true;
    if (live.socket) live.socket.close(1000);
    live = null;
  }
}

// MCP over Streamable HTTP, as an AI client speaks it: initialize, then JSON-RPC requests
// carrying the session id; an answer may come as JSON or as a server-sent event.
const mcp = { session: null, id: 0 };

async function mcpCall(method, params, notification) {
  const headers = { "Content-Type": "application/json", Accept: "application/json, text/event-stream" };
  if (session.token) headers.Authorization = "Bearer " + session.token;
  if (mcp.session) headers["Mcp-Session-Id"] = mcp.session;
  const message = { jsonrpc: "2.0", method, params: params || {} };
  if (!notification) message.id = ++mcp.id;
  const res = await fetch(config.mcp, { method: "POST", headers, body: JSON.stringify(message) });
  const sid = res.headers.get("Mcp-Session-Id");
  if (sid) mcp.session = sid;
  const text = await res.text();
  if (!res.ok) {
    let why = text;
    try { why = JSON.parse(text).message || text; } catch (_) { /* plain text */ }
    throw new Error(`${res.status}: ${why}`);
  }
  if (notification) return null;
  const lines = text.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).filter(Boolean);
  const frames = (lines.length ? lines : [text]).map((l) => JSON.parse(l));
  const answer = frames.find((f) => f.id === message.id);
  if (!answer) throw new Error("no answer from the MCP endpoint");
  if (answer.error) throw new Error(answer.error.message);
  return answer.result;
}

async function mcpPage(view) {
  if (needsSignIn()) return signInFirst();
  if (!config.mcp) return view(el("h1", {}, "MCP"), el("p", {}, "MCP is off on this server."));
  mcp.session = null;
  await mcpCall("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "jxp console", version: config.version || "" } });
  await mcpCall("notifications/initialized", {}, true);
  const tools = (await mcpCall("tools/list")).tools || [];
  const pick = el("select", { id: "mcp-tool" }, tools.map((t) => el("option", { value: t.name }, t.name)));
  const about = el("p", { class: "muted", id: "mcp-about" });
  const args = el("textarea", { id: "mcp-args" });
  const out = el("div", { id: "mcp-result" });
  const describe = () => {
    const tool = tools.find((t) => t.name === pick.value);
    about.textContent = tool ? tool.description || "" : "";
    const props = tool && tool.inputSchema && tool.inputSchema.properties ? Object.keys(tool.inputSchema.properties) : [];
    args.value = JSON.stringify(Object.fromEntries(props.filter((p) => p === "model").map((p) => [p, ""])), null, 2);
  };
  pick.addEventListener("change", describe);
  describe();
  view(
    el("h1", {}, "MCP"),
    el("p", {}, `AI clients connect to ${origin}${config.mcp} (Streamable HTTP) with the same credentials as the API. Try its tools as the signed-in user:`),
    el("div", { class: "bar" }, "Tool", pick), about,
    el("p", {}, "Arguments (JSON):"), args,
    el("button", {
      id: "mcp-call",
      onclick: async () => {
        out.replaceChildren();
        let parsed;
        try { parsed = JSON.parse(args.value || "{}"); } catch (e) { return out.replaceChildren(errorBox("not JSON: " + e.message)); }
        try {
          const result = await mcpCall("tools/call", { name: pick.value, arguments: parsed });
          const text = (result.content || []).map((c) => c.text || JSON.stringify(c)).join("\n");
          out.replaceChildren(el("pre", { id: result.isError ? "error" : "mcp-output", class: result.isError ? "error" : "" }, text));
        } catch (e) {
          out.replaceChildren(errorBox(String(e.message || e)));
        }
      },
    }, "Call"),
    out,
  );
}

// Each route is a view; a page that waits for the server shows what it got through `view`,
// which shows nothing once a later route has begun (a slow answer for a page left behind
// must not replace the page the user went on to).
let viewSeq = 0;

async function route() {
  const mine = ++viewSeq;
  const view = (...nodes) => {
    if (mine === viewSeq) show(...nodes);
  };
  stopLive();
  drawHeader();
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts.length === 0) await home(view);
    else if (parts[0] === "signin") signInPage();
    else if (parts[0] === "auth") authPage();
    else if (parts[0] === "model" && parts[1]) await modelPage(parts[1], view);
    else if (parts[0] === "explore" && parts[1]) await explore(parts[1], new URLSearchParams(query || ""), view);
    else if (parts[0] === "live" && parts[1]) liveView(parts[1]);
    else if (parts[0] === "mcp") await mcpPage(view);
    else show(el("h1", {}, "Not found"), el("p", {}, el("a", { href: "#/" }, "Back to the models")));
  } catch (e) {
    view(errorBox(String(e.message || e)));
  }
}

window.addEventListener("hashchange", route);
(async () => {
  const res = await api("GET", "/docs/config.json");
  if (res.status === 200) config = res.body;
  route();
})();

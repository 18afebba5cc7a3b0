//! One JavaScript runtime: a QuickJS runtime capped in memory and time, with the prelude
//! (`JxpError`, `console`, the `ctx.db`/`ctx.system` wrappers) and every script module
//! evaluated in it, and the call of one export. QuickJS's core has no file system, network,
//! process, timers or module loader; the runtime gets none, so scripts have none.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use jxp_core::{Identity, User};
use rquickjs::function::Args;
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::object::Property;
use rquickjs::{Array, Context, Ctx, Function, Module, Null, Object, Runtime, Value as JsValue};
use serde_json::Value;

use crate::mix::Mix;
use crate::{answer, bridge};

/// One script file: its key (a model's slug, or `_app`), where it was read from and its text.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub key: String,
    pub file: PathBuf,
    pub text: String,
}

impl Source {
    /// The module's name in QuickJS, which its stack traces and syntax errors carry.
    pub fn name(&self) -> String {
        self.file.display().to_string()
    }
}

/// What a runtime may use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub timeout: Duration,
    pub memory_bytes: usize,
}

/// What is called: an export of a module, or a function of its `functions` export.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Export { key: String, name: String },
    Function { key: String, name: String },
}

/// Why a call gave no value.
#[derive(Debug)]
pub(crate) enum Failure {
    /// `throw new JxpError(status, message)`.
    Refused {
        status: u16,
        message: String,
        /// The app error a `ctx.db` call raised, when the script let it through.
        stash: Option<usize>,
    },
    /// Stopped by the time limit.
    TimedOut,
    /// Anything else; the detail is for the log.
    Failed(String),
}

/// Why a script could not be loaded: the message and the line it names (1 when none).
#[derive(Debug)]
pub(crate) struct LoadFailure {
    pub line: u32,
    pub message: String,
}

/// The JavaScript that every runtime evaluates first. It takes the two natives off the global
/// object, so a script reaches them only through `console` and `ctx.db`/`ctx.system`, and
/// puts on the global object, as `__jxp`, the table of loaded modules, through which exports
/// are listed and bound (each call site gets a function of its own, which makes its `ctx`
/// and calls its export), and `adopt`, which makes a user's `ctx.user`.
const PRELUDE: &str = r#"
class JxpError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "JxpError";
    this.status = status;
  }
}
globalThis.JxpError = JxpError;
(() => {
  const call = globalThis.__jxp_db;
  const log = globalThis.__jxp_log;
  delete globalThis.__jxp_db;
  delete globalThis.__jxp_log;
  const text = (args) => args.map((v) => {
    if (typeof v === "string") return v;
    try { const s = JSON.stringify(v); return s === undefined ? String(v) : s; } catch (_) { return String(v); }
  }).join(" ");
  globalThis.console = Object.freeze({
    log: (...a) => log(0, text(a)),
    info: (...a) => log(0, text(a)),
    debug: (...a) => log(0, text(a)),
    warn: (...a) => log(1, text(a)),
    error: (...a) => log(2, text(a)),
  });
  const api = (system) => {
    const op = (name) => async (...args) => {
      const answer = JSON.parse(call(system, name, JSON.stringify(args)));
      if (answer.err) {
        const e = new JxpError(answer.err.status, answer.err.message);
        Object.defineProperty(e, "__jxp_stash", { value: answer.err.stash });
        throw e;
      }
      return answer.ok;
    };
    return Object.freeze({
      find: op("find"), get: op("get"), count: op("count"),
      create: op("create"), update: op("update"), remove: op("remove"),
    });
  };
  const db = api(false);
  const system = api(true);
  const modules = new Map();
  // Taken before any script runs: what `bind` and `adopt` call is not whatever a script has
  // put in their place since.
  const keysOf = Object.keys, freeze = Object.freeze;
  // A call's ctx is made in the function `bind` answers for its call site, from plain
  // arguments: an object literal's properties are defined (no setter a script put on
  // Object.prototype runs) along shapes QuickJS keeps, at a fraction of what defining each
  // from outside costs. `code` packs what the runtime's side knows of the call: bits 0-2 the
  // kind of `user` (0 no `user` key, 1 null: an anonymous caller, 3 the server itself, 4 the
  // user kept in `users[at]`, put there by `adopt`), bit 3 whether an `id` key follows
  // `user`, bits 4 and up `at`. `fields` (an object, or absent) follows `user` and `id`.
  //
  // `ctx.user` is frozen, with its groups: a call cannot change it, so the same object
  // serves every call of the same user, and a call's user costs one array read. `users` is
  // filled before any script runs, so that `users[at]` reads an element the array already
  // holds (QuickJS's fast path for a dense array) and no getter or setter a script puts on
  // Array.prototype is ever consulted; as many as the runtime's side counts (USERS_KEPT).
  const users = Array(64).fill(null);
  const server = Object.freeze({ system: true, admin: true });
  const adopt = (at, uid, name, email, admin, groups) => {
    freeze(groups);
    users[at] = freeze({ _id: uid, id: uid, name, email, admin, groups });
  };
  // QuickJS shares an object's shape (its keys, in order) among the live objects that have
  // it and frees it with the last of them, so every call used to make the shapes of its
  // `ctx` again, key by key, starting from the empty object's. One object held here for
  // each prefix of those keys keeps each shape alive, and a call's literals find them ready.
  const shapes = [{}];
  const keep = (...keys) => {
    for (let n = 1; n <= keys.length; n++) {
      const o = {};
      for (let i = 0; i < n; i++) o[keys[i]] = 0;
      shapes.push(o);
    }
  };
  keep("_id", "id", "name", "email", "admin", "groups");
  keep("user", "id", "db", "system");
  keep("user", "db", "system");
  // Held by `users`, which every call site's function holds: a local of this function alone
  // would be freed when it returns.
  users.shapes = shapes;
  // The exports a call site may name, by number: the function `bind` answers reads its
  // export by a name written here, which QuickJS finds at once, where a name held in a
  // variable must first be looked up among the runtime's names (-1: a function of
  // `functions`, -2: another name; both read by the name).
  const EXPORTS = ["pre_get", "pre_post", "pre_put", "pre_delete", "post_post", "post_put",
    "post_delete", "pre_login", "post_login"];
  // A function's own text, asked of `Function.prototype.toString` as it was before any
  // script ran.
  const apply = Reflect.apply, fnText = Function.prototype.toString;
  // Whether what a function of `ctx.user` alone may consult is as it was before any script
  // ran: `Array.prototype.includes` the genuine one, and no `toJSON` where writing an answer
  // looks for one. Asked of ordinary objects: no trap or getter a script made runs.
  // (`__lookupGetter__` answers undefined for a data property: reading it then runs nothing.)
  const getProto = Object.getPrototypeOf, hasOwn = Object.hasOwn;
  const objectProto = Object.prototype, arrayProto = Array.prototype;
  const includes = arrayProto.includes, getterOf = objectProto.__lookupGetter__;
  const ofIncludes = freeze(["includes"]);
  const asBefore = () => !hasOwn(objectProto, "toJSON") && !hasOwn(arrayProto, "toJSON")
    && getProto(arrayProto) === objectProto
    && apply(getterOf, arrayProto, ofIncludes) === undefined && arrayProto.includes === includes;
  // A call with a negative `code` judges the function a call would run (see `pure.rs`),
  // answering null where there is none or `asBefore` does not hold: -1 its text, which the
  // runtime's side reads, -2 whether it is the function last answered so.
  const site = (ns, which, name) => {
    let judged;
    return (code, id, fields) => {
      // Read at each call: a module may assign its export again.
      let fn;
      switch (which) {
        case 0: fn = ns.pre_get; break;
        case 1: fn = ns.pre_post; break;
        case 2: fn = ns.pre_put; break;
        case 3: fn = ns.pre_delete; break;
        case 4: fn = ns.post_post; break;
        case 5: fn = ns.post_put; break;
        case 6: fn = ns.post_delete; break;
        case 7: fn = ns.pre_login; break;
        case 8: fn = ns.post_login; break;
        case -1: fn = ns.functions[name]; break;
        default: fn = ns[name];
      }
      if (code < 0) {
        if (typeof fn !== "function" || !asBefore()) return null;
        if (code === -2) return fn === judged;
        judged = fn;
        return apply(fnText, fn, []);
      }
      const kind = code & 7;
      let ctx;
      if (kind === 0) {
        ctx = code & 8 ? { id, ...fields, db, system } : { ...fields, db, system };
      } else {
        const user = kind === 4 ? users[code >> 4] : kind === 3 ? server : null;
        if (fields === undefined) {
          ctx = code & 8 ? { user, id, db, system } : { user, db, system };
        } else {
          ctx = code & 8 ? { user, id, ...fields, db, system } : { user, ...fields, db, system };
        }
      }
      if (typeof fn !== "function") throw new TypeError(`${name} is not a function`);
      return fn(ctx);
    };
  };
  const entry = Object.freeze({
    add: (key, ns) => { modules.set(key, ns); },
    names: (key) => {
      const ns = modules.get(key);
      if (!ns) return [[], []];
      const fns = ns.functions && typeof ns.functions === "object" ? Object.keys(ns.functions) : [];
      return [Object.keys(ns), fns];
    },
    // The function a call site calls with (code, id, fields), made on its first call, after
    // every module is loaded, so the namespace is found once.
    bind: (key, name, nested) => {
      const ns = modules.get(key);
      let which = nested ? -1 : -2, own = name;
      if (!nested) {
        for (let i = 0; i < EXPORTS.length; i++) if (EXPORTS[i] === name) which = i;
      }
      const holder = nested ? ns && ns.functions : ns;
      if (which < 0 && holder && typeof holder === "object") {
        // Read by the name its object lists it under: QuickJS finds a property by a name
        // it already holds at once. An index loop: a script may have changed what
        // `for … of` calls on an array.
        const keys = keysOf(holder);
        for (let i = 0; i < keys.length; i++) if (keys[i] === name) own = keys[i];
      }
      return site(ns, which, own);
    },
    adopt,
  });
  Object.defineProperty(globalThis, "__jxp", { value: entry });
})();
"#;

/// A runtime with every script loaded.
pub(crate) struct Engine {
    /// Which user each place of the prelude's `users` holds.
    users: Users,
    runtime: Runtime,
    context: Context,
    /// The end of the running call, in nanoseconds after `started` (0: no call is running).
    deadline: Arc<AtomicU64>,
    started: Instant,
    interrupted: Arc<AtomicBool>,
    /// Set when the handler was asked twice within the running call: it ran at least 10,000
    /// steps of its own.
    worked: Arc<AtomicBool>,
    caps: Caps,
    /// The texts of the `pre_get` answers the context's `answer::Known` holds.
    texts: answer::Texts,
    /// Set when a call was interrupted or ran out of memory: the runtime is dropped, not reused.
    pub spoiled: bool,
    /// How many times the runtime may have run code other than its `pre_get`s that are
    /// functions of `ctx.user` alone (see [`Memo`]): bumped by every other call.
    epoch: u64,
    /// By call site: what the runtime knows of the site's `pre_get`.
    memos: Vec<Memo>,
}

/// What a runtime knows of a `pre_get` call site: whether its export is a function of
/// `ctx.user` alone (`pure.rs`), judged at an epoch of the runtime (see `Engine::epoch`),
/// and what it answered each user since.
///
/// Such a function answers the same user the same, as long as nothing it reads has
/// changed: `ctx.user` (a user's object is made again when the user changes, see
/// [`Users`]), the export itself (a module may assign it again), and what it and the
/// writing of its answer consult (`Array.prototype.includes`, a `toJSON` on
/// `Object.prototype` or `Array.prototype`: see `asBefore` in the prelude). Only a
/// script's own code can change the last two, and none but such functions has run while
/// the epoch stays the same: so within an epoch the runtime answers a user it has answered
/// with the answer it kept, without running the export again. In a later epoch the export
/// is judged again, and when it is the same function, with nothing it consults changed,
/// what was kept still holds. The answer is the same text the call would write, down to
/// its filter (a kept `answer::Said`).
#[derive(Default)]
struct Memo {
    /// The epoch of the judgement, and whether the export is such a function.
    judged: Option<(u64, bool)>,
    /// By the place of `users` that holds the user, then [`ANONYMOUS`]: the answer given.
    answers: Vec<Option<Answer>>,
}

/// The place of [`Memo::answers`] that the anonymous caller's answer takes.
const ANONYMOUS: usize = USERS_KEPT;

impl Memo {
    /// The answer kept for `place`, if the export was judged a function of `ctx.user`
    /// alone in this epoch.
    fn kept(&self, epoch: u64, place: usize) -> Option<&Answer> {
        match self.judged {
            Some((at, true)) if at == epoch => self.answers.get(place)?.as_ref(),
            _ => None,
        }
    }
}

/// What a call uses of the prelude, kept in the context's user data so that a call looks no
/// name up: `__jxp.bind` and `__jxp.adopt` as a `Vec<Function>` (at these places), the
/// genuine `Object.prototype` (see `answer::json_text`) as an `Object`, and each call site's
/// function by slot, made on the site's first call, as a `RefCell<Vec<Option<Function>>>`;
/// and the `pre_get` answers met before (`answer::Known`).
const BIND: usize = 0;
const ADOPT: usize = 1;

type Sites<'js> = RefCell<Vec<Option<Function<'js>>>>;

impl Engine {
    /// A runtime with the prelude and every module in `sources` evaluated, in order.
    pub fn new(sources: &[Source], caps: Caps) -> Result<Self, (usize, LoadFailure)> {
        let fail = |message: String| (usize::MAX, LoadFailure { line: 1, message });
        let runtime = Runtime::new().map_err(|e| fail(e.to_string()))?;
        runtime.set_memory_limit(caps.memory_bytes);
        runtime.set_max_stack_size(512 * 1024);
        let deadline = Arc::new(AtomicU64::new(0));
        let interrupted = Arc::new(AtomicBool::new(false));
        let worked = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        {
            let (deadline, interrupted) = (deadline.clone(), interrupted.clone());
            let worked = worked.clone();
            // The deadline this handler last saw, and how often it was asked since.
            let (mut seen, mut asked) = (0u64, 0u32);
            runtime.set_interrupt_handler(Some(Box::new(move || {
                let end = deadline.load(Ordering::Relaxed);
                if end == 0 {
                    return false;
                }
                if end != seen {
                    (seen, asked) = (end, 0);
                }
                asked = asked.saturating_add(1);
                // QuickJS asks every 10,000 steps (loop turns and calls; its
                // `JS_INTERRUPT_COUNTER_INIT`), counting on from the call before: a call asked
                // twice has run at least that many steps itself, from about 50 µs of work to
                // a few ms. One asked once may be past its time only because its thread
                // was not running (a busy machine took the CPU away mid-call), which is no
                // reason to stop a call that has almost nothing to do.
                if asked < 2 {
                    return false;
                }
                worked.store(true, Ordering::Relaxed);
                let late = epoch.elapsed().as_nanos() as u64 > end;
                if late {
                    interrupted.store(true, Ordering::Relaxed);
                }
                late
            })));
        }
        runtime.set_loader(NoModules, NoModules);
        let context = Context::full(&runtime).map_err(|e| fail(e.to_string()))?;
        let mut failure = None;
        context.with(|ctx| {
            let prelude = install(&ctx).and_then(|entry| {
                let proto: Object = ctx.globals().get::<_, Object>("Object")?.get("prototype")?;
                let fns: Vec<Function> = vec![entry.get("bind")?, entry.get("adopt")?];
                let kept = |e: String| rquickjs::Error::new_from_js_message("value", "userdata", e);
                ctx.store_userdata(fns).map_err(|e| kept(e.to_string()))?;
                ctx.store_userdata(proto).map_err(|e| kept(e.to_string()))?;
                ctx.store_userdata(Sites::default())
                    .map_err(|e| kept(e.to_string()))?;
                ctx.store_userdata(answer::Known::default())
                    .map_err(|e| kept(e.to_string()))?;
                Ok(entry)
            });
            let entry = match prelude {
                Ok(entry) => entry,
                Err(e) => {
                    failure = Some(fail(describe(&ctx, e)));
                    return;
                }
            };
            for (i, source) in sources.iter().enumerate() {
                deadline.store(
                    epoch.elapsed().as_nanos() as u64 + caps.timeout.as_nanos() as u64,
                    Ordering::Relaxed,
                );
                let loaded = load_module(&ctx, &entry, source);
                deadline.store(0, Ordering::Relaxed);
                match loaded {
                    Ok(()) => {}
                    Err(e) => {
                        let message = if interrupted.load(Ordering::Relaxed) {
                            format!("evaluating it took longer than {:?}", caps.timeout)
                        } else {
                            describe(&ctx, e)
                        };
                        let line = line_of(&message, &source.name());
                        failure = Some((i, LoadFailure { line, message }));
                        return;
                    }
                }
            }
        });
        if let Some(f) = failure {
            return Err(f);
        }
        Ok(Engine {
            users: Users::default(),
            runtime,
            context,
            deadline,
            started: epoch,
            interrupted,
            worked,
            caps,
            texts: Vec::new(),
            spoiled: false,
            epoch: 0,
            memos: Vec::new(),
        })
    }

    /// The names a module exports, and the names in its `functions` export.
    pub fn exports(&mut self, key: &str) -> (Vec<String>, Vec<String>) {
        // Listing a module's `functions` may run its code (a getter, a proxy).
        self.epoch += 1;
        self.context.with(|ctx| {
            entry(&ctx)
                .and_then(|e| e.get::<_, Function>("names"))
                .and_then(|names| names.call::<_, Vec<Vec<String>>>((key,)))
                .map(|mut both| {
                    let functions = both.pop().unwrap_or_default();
                    (both.pop().unwrap_or_default(), functions)
                })
                .unwrap_or_default()
        })
    }

    /// Calls `target` with `ctx`: `user` and `id` as `who` says, then the fields of `ctx_json`
    /// (a JSON object), then `db` and `system`. `ctx.user` is the acting user without secrets
    /// (`_id`, `id`, `name`, `email`, `admin`, `groups`), `{system: true, admin: true}` for
    /// the server itself, null for an anonymous caller, frozen. Answers what it
    /// returned, awaited if it is a promise, as JSON text (`None` for `undefined` and null).
    /// `slot` is the call site's: the number under which this runtime keeps the export bound.
    pub fn call(
        &mut self,
        slot: usize,
        target: &Target,
        who: Who<'_>,
        ctx_json: &Value,
    ) -> Result<Answer, Failure> {
        self.call_for(slot, target, who, ctx_json, self.caps.timeout)
    }

    /// `call`, stopped after `limit` (at most the runtime's time limit) rather than the time
    /// limit: `Failure::TimedOut`, and the runtime is spoiled.
    pub fn call_for(
        &mut self,
        slot: usize,
        target: &Target,
        who: Who<'_>,
        ctx_json: &Value,
        limit: Duration,
    ) -> Result<Answer, Failure> {
        self.worked.store(false, Ordering::Relaxed);
        let user = match who.user {
            None => UserArg::Absent,
            Some(Identity {
                user: Some(user), ..
            }) => self.users.place(user),
            Some(w) if w.system => UserArg::Server,
            Some(_) => UserArg::Anonymous,
        };
        let place = self.place_kept(slot, target, user);
        if let Some(place) = place
            && let Some(answer) = self.memos.get(slot).and_then(|m| m.kept(self.epoch, place))
        {
            return Ok(answer.clone());
        }
        let limit = limit.min(self.caps.timeout);
        self.interrupted.store(false, Ordering::Relaxed);
        self.deadline.store(
            self.started.elapsed().as_nanos() as u64 + limit.as_nanos() as u64,
            Ordering::Relaxed,
        );
        let pure = place.is_some() && self.judge(slot);
        // Judged the same function as before other code ran: what it kept still holds.
        if pure
            && let Some(place) = place
            && let Some(answer) = self.memos.get(slot).and_then(|m| m.kept(self.epoch, place))
        {
            self.deadline.store(0, Ordering::Relaxed);
            return Ok(answer.clone());
        }
        let limits = (self.caps.memory_bytes, &mut self.texts);
        let out = self
            .context
            .with(|ctx| call_in(&ctx, (slot, target), (user, who.id), ctx_json, limits));
        self.deadline.store(0, Ordering::Relaxed);
        match (&out, place) {
            (Ok(answer), Some(place)) if pure => self.keep(slot, place, answer),
            _ => self.epoch += 1,
        }
        if out.is_err() {
            // The runtime's `users` is written as a call starts; after a call that failed,
            // the places are not trusted.
            self.users.clear();
        }
        let timed_out = self.interrupted.load(Ordering::Relaxed);
        match out {
            Err(_) if timed_out => {
                self.spoiled = true;
                Err(Failure::TimedOut)
            }
            Err(Failure::Failed(detail)) => {
                if detail.contains("out of memory") {
                    self.spoiled = true;
                }
                Err(Failure::Failed(detail))
            }
            other => other,
        }
    }

    /// The place of [`Memo::answers`] a call's answer may be kept in: for a `pre_get`,
    /// called for a user the runtime holds or for the anonymous caller. A user put in a
    /// place now takes it from whoever held it: no site keeps an answer there any more.
    fn place_kept(&mut self, slot: usize, target: &Target, user: UserArg<'_>) -> Option<usize> {
        let place = match user {
            UserArg::Held(at) => at,
            UserArg::New(at, _) => {
                for memo in &mut self.memos {
                    if let Some(answer) = memo.answers.get_mut(at) {
                        *answer = None;
                    }
                }
                at
            }
            UserArg::Anonymous => ANONYMOUS,
            // The server's `ctx.user` lacks most fields: reading one consults
            // `Object.prototype`, where a script may have put a getter.
            UserArg::Server | UserArg::Absent => return None,
        };
        if !matches!(target, Target::Export { name, .. } if name == "pre_get") {
            return None;
        }
        if self.memos.len() <= slot {
            self.memos.resize_with(slot + 1, Memo::default);
        }
        Some(place)
    }

    /// Whether the export of the `pre_get` at `slot` is a function of `ctx.user` alone,
    /// judged again when code may have run since it was (see [`Memo`]). An export judged
    /// otherwise is not judged again: its calls cost no judgement each.
    fn judge(&mut self, slot: usize) -> bool {
        let epoch = self.epoch;
        let Some(memo) = self.memos.get_mut(slot) else {
            return false;
        };
        match memo.judged {
            Some((_, false)) => return false,
            Some((at, true)) if at == epoch => return true,
            _ => {}
        }
        let known = memo.judged.is_some();
        let verdict = self.context.with(|ctx| {
            judged(&ctx, slot, known).unwrap_or_else(|_| {
                drop(ctx.catch());
                Some(Verdict::Not)
            })
        });
        match verdict {
            // The site is made at its first call: judged at the next.
            None => false,
            Some(Verdict::Same) => {
                memo.judged = Some((epoch, true));
                true
            }
            Some(Verdict::Pure) => {
                memo.judged = Some((epoch, true));
                memo.answers.clear();
                true
            }
            Some(Verdict::Not) => {
                // The judgement itself may have run a script's code (a proxy's trap).
                self.epoch += 1;
                memo.judged = Some((self.epoch, false));
                memo.answers.clear();
                false
            }
        }
    }

    /// Keeps what the `pre_get` at `slot`, judged a function of `ctx.user` alone, answered
    /// the user at `place`: as a kept answer, whose filter is made once.
    fn keep(&mut self, slot: usize, place: usize, answer: &Answer) {
        let answer = match answer {
            Some(answer::Text::Written(text)) => Some(answer::Text::Kept(Arc::new(answer::Said {
                text: text.clone(),
                filter: OnceLock::new(),
            }))),
            other => other.clone(),
        };
        if let Some(memo) = self.memos.get_mut(slot) {
            if memo.answers.len() <= place {
                memo.answers.resize(place + 1, None);
            }
            if let Some(kept) = memo.answers.get_mut(place) {
                *kept = Some(answer);
            }
        }
    }

    /// How many answers the runtime keeps for `pre_get`s of `ctx.user` alone.
    #[cfg(test)]
    pub fn kept_answers(&self) -> usize {
        self.memos
            .iter()
            .filter(|m| matches!(m.judged, Some((at, true)) if at == self.epoch))
            .map(|m| m.answers.iter().flatten().count())
            .sum()
    }

    /// Whether the last call ran at least 10,000 steps (loop turns, calls) of its own: one
    /// that ran fewer is never stopped for its time (see the interrupt handler).
    pub fn worked(&self) -> bool {
        self.worked.load(Ordering::Relaxed)
    }

    /// Bytes the runtime holds.
    pub fn memory_used(&self) -> i64 {
        self.runtime.memory_usage().memory_used_size
    }
}

/// The module resolver and loader of every runtime: none. Without one QuickJS would find a
/// sibling script by a relative name, and `import` must reach nothing.
struct NoModules;

impl Resolver for NoModules {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        Err(rquickjs::Error::new_resolving_message(
            base,
            name,
            "scripts cannot import modules",
        ))
    }
}

impl Loader for NoModules {
    fn load<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        Err(rquickjs::Error::new_loading_message(
            name,
            "scripts cannot import modules",
        ))
    }
}

/// Puts the natives and the prelude in a fresh context; answers the table of modules.
fn install<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let globals = ctx.globals();
    globals.set("__jxp_db", Function::new(ctx.clone(), bridge::native_db)?)?;
    globals.set("__jxp_log", Function::new(ctx.clone(), bridge::native_log)?)?;
    ctx.eval::<(), _>(PRELUDE)?;
    entry(ctx)
}

/// The table of modules the prelude made.
fn entry<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    ctx.globals().get("__jxp")
}

/// Declares and evaluates one module and files its namespace in the table.
fn load_module<'js>(ctx: &Ctx<'js>, entry: &Object<'js>, source: &Source) -> rquickjs::Result<()> {
    let module = Module::declare(ctx.clone(), source.name(), source.text.clone())?;
    let (module, done) = module.eval()?;
    done.finish::<()>()?;
    let add: Function = entry.get("add")?;
    add.call::<_, ()>((source.key.as_str(), module.namespace()?))
}

fn call_in(
    ctx: &Ctx<'_>,
    (slot, target): (usize, &Target),
    (user, id): (UserArg<'_>, Option<Option<&str>>),
    ctx_json: &Value,
    (max_bytes, texts): (usize, &mut answer::Texts),
) -> Result<Answer, Failure> {
    let failed = |e: rquickjs::Error| thrown(ctx, e);
    let unready = || Failure::Failed("the runtime has no prelude".into());
    let kept = |at: usize| {
        ctx.userdata::<Vec<Function>>()
            .and_then(|fns| fns.get(at).cloned())
            .ok_or_else(unready)
    };
    let sites = ctx.userdata::<Sites>().ok_or_else(unready)?;
    let known = sites.borrow().get(slot).cloned().flatten();
    let run = match known {
        Some(run) => run,
        None => {
            let (key, name, nested) = match target {
                Target::Export { key, name } => (key, name, false),
                Target::Function { key, name } => (key, name, true),
            };
            let run: Function = kept(BIND)?
                .call((key.as_str(), name.as_str(), nested))
                .map_err(failed)?;
            let mut sites = sites.borrow_mut();
            if sites.len() <= slot {
                sites.resize(slot + 1, None);
            }
            sites[slot] = Some(run.clone());
            run
        }
    };
    drop(sites);
    if let UserArg::New(at, u) = user {
        let groups = Array::new(ctx.clone()).map_err(failed)?;
        for (i, g) in (0u32..).zip(&u.groups) {
            let g = rquickjs::String::from_str(ctx.clone(), g).map_err(failed)?;
            groups
                .as_object()
                .prop(i, data(g.into_value()))
                .map_err(failed)?;
        }
        kept(ADOPT)?
            .call::<_, ()>((
                at_arg(at),
                u.id.as_str(),
                u.name.as_str(),
                u.email.as_str(),
                u.admin,
                groups,
            ))
            .map_err(failed)?;
    }
    let args = args_of(ctx, (user, id), ctx_json).map_err(failed)?;
    let mut out: JsValue = run.call_arg(args).map_err(failed)?;
    // `is_promise` first: `as_promise` asks QuickJS six questions of every object.
    if let Some(promise) = out.is_promise().then(|| out.as_promise()).flatten() {
        let promise = promise.clone();
        out = loop {
            if let Some(settled) = promise.result::<JsValue>() {
                break settled.map_err(failed)?;
            }
            if !ctx.execute_pending_job() {
                return Err(Failure::Failed(
                    "the hook's promise never settled (scripts have no timers or IO to wait on)"
                        .into(),
                ));
            }
        };
    }
    if out.is_undefined() || out.is_null() {
        return Ok(None);
    }
    let proto = ctx.userdata::<Object>().ok_or_else(unready)?;
    // A `pre_get` answers the same few filters again and again (see `answer`).
    let known = match target {
        Target::Export { name, .. } if name == "pre_get" => ctx.userdata::<answer::Known>(),
        _ => None,
    };
    let known = known.as_deref().map(|known| (known, texts));
    answer::json_text(ctx, &proto, out, max_bytes, known).map_err(failed)
}

/// What a judgement of a `pre_get`'s export found (see [`Memo`]).
enum Verdict {
    /// The function judged so before: the answers kept for it hold.
    Same,
    /// A function of `ctx.user` alone.
    Pure,
    /// Not one, or not known to be one.
    Not,
}

/// Judges the export the call site at `slot` calls: a function of `ctx.user` alone
/// (`pure.rs`) whose answer is written without consulting anything a script made (see
/// `asBefore` in the prelude). `known`: one was judged so before, which the site's function
/// compares with the export first. Asks the site's function; none for a site not yet made
/// (by its first call).
fn judged(ctx: &Ctx<'_>, slot: usize, known: bool) -> rquickjs::Result<Option<Verdict>> {
    let run = ctx
        .userdata::<Sites>()
        .and_then(|sites| sites.borrow().get(slot).cloned().flatten());
    let Some(run) = run else {
        return Ok(None);
    };
    if known {
        match run.call::<_, Option<bool>>((-2,))? {
            None => return Ok(Some(Verdict::Not)),
            Some(true) => return Ok(Some(Verdict::Same)),
            Some(false) => {}
        }
    }
    let Some(text) = run.call::<_, Option<rquickjs::String>>((-1,))? else {
        return Ok(Some(Verdict::Not));
    };
    Ok(Some(if crate::pure::of_user_alone(&text.to_string()?) {
        Verdict::Pure
    } else {
        Verdict::Not
    }))
}

/// What a call answered: its value as JSON text, `None` for `undefined` and null.
pub(crate) type Answer = Option<answer::Text>;

/// An answer as a JSON value (null for none).
pub(crate) fn value_of(answer: Answer) -> Result<Value, Failure> {
    match answer {
        None => Ok(Value::Null),
        Some(text) => {
            serde_json::from_str(text.as_str()).map_err(|e| Failure::Failed(e.to_string()))
        }
    }
}

/// Who a call is for, and the `id` its `ctx` holds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Who<'a> {
    /// `ctx.user` from this identity (see `code` in the prelude); `None`: no `user` key.
    pub user: Option<&'a Identity>,
    /// `ctx.id` (null when `Some(None)`), after `user`; `None`: no `id` key (it may still be
    /// one of the fields).
    pub id: Option<Option<&'a str>>,
}

/// How a call's `ctx.user` is made (see `code` in the prelude).
#[derive(Debug, Clone, Copy)]
enum UserArg<'a> {
    /// No `user` key.
    Absent,
    /// `null`.
    Anonymous,
    /// `{system: true, admin: true}`.
    Server,
    /// A user whose object the prelude's `adopt` makes and keeps in this place.
    New(usize, &'a User),
    /// The user whose object the prelude keeps in this place.
    Held(usize),
}

/// How many users' `ctx.user` objects a runtime keeps: the length of the prelude's `users`.
const USERS_KEPT: usize = 64;

/// Which user each place of the prelude's `users` holds, so that a call of a user met
/// before passes only the place.
#[derive(Default)]
struct Users {
    held: Vec<User>,
    /// By a cheap hash ([`Mix`]): a table of at most [`USERS_KEPT`] ids, found by an equal id.
    by_id: HashMap<String, usize, BuildHasherDefault<Mix>>,
    /// The place a new user takes next once every place is held.
    next: usize,
}

impl Users {
    /// The place of `user`'s object, kept (`Held`) or to be made (`New`): a user whose name,
    /// e-mail, groups or rights changed gets a new one.
    fn place<'a>(&mut self, user: &'a User) -> UserArg<'a> {
        if let Some(&at) = self.by_id.get(&user.id) {
            if self.held.get(at) == Some(user) {
                return UserArg::Held(at);
            }
            if let Some(held) = self.held.get_mut(at) {
                held.clone_from(user);
                return UserArg::New(at, user);
            }
        }
        let at = if self.held.len() < USERS_KEPT {
            self.held.push(user.clone());
            self.held.len() - 1
        } else {
            let at = self.next;
            self.next = (at + 1) % USERS_KEPT;
            if let Some(held) = self.held.get_mut(at) {
                let old = std::mem::replace(held, user.clone());
                self.by_id.remove(&old.id);
            }
            at
        };
        self.by_id.insert(user.id.clone(), at);
        UserArg::New(at, user)
    }

    fn clear(&mut self) {
        self.held.clear();
        self.by_id.clear();
        self.next = 0;
    }
}

/// A place of `users` as the prelude's `adopt` takes it.
fn at_arg(at: usize) -> u32 {
    u32::try_from(at).unwrap_or_default()
}

/// The arguments of a call site's function: `code` (the kind of `user`, whether an `id`
/// follows it and the place of `users` that holds the user, see the prelude), the `id`, and
/// the fields of `ctx` when there are any. A new user has been adopted into its place.
fn args_of<'js>(
    ctx: &Ctx<'js>,
    (user, id): (UserArg<'_>, Option<Option<&str>>),
    fields: &Value,
) -> rquickjs::Result<Args<'js>> {
    let fields = match fields {
        Value::Object(f) if !f.is_empty() => Some(fields),
        _ => None,
    };
    let (kind, at) = match user {
        UserArg::Absent => (0, 0),
        UserArg::Anonymous => (1, 0),
        UserArg::Server => (3, 0),
        UserArg::New(at, _) | UserArg::Held(at) => (4, at_arg(at)),
    };
    let code = kind | u32::from(id.is_some()) << 3 | at << 4;
    // Exactly this many are pushed (`Args` panics past the count it was made for).
    let mut args = Args::new(ctx.clone(), if fields.is_some() { 3 } else { 2 });
    args.push_arg(code)?;
    match id.flatten() {
        Some(id) => args.push_arg(id)?,
        None => args.push_arg(Null)?,
    }
    if let Some(fields) = fields {
        args.push_arg(to_js(ctx, fields)?)?;
    }
    Ok(args)
}

/// A property as `JSON.parse` makes one: writable, enumerable, configurable.
fn data(value: JsValue<'_>) -> Property<JsValue<'_>> {
    Property::from(value).writable().enumerable().configurable()
}

/// A JSON value as a JavaScript value, made directly rather than printed and parsed again.
/// Properties are defined, as `JSON.parse` does, not assigned: a key `__proto__` stays an own
/// property, and a setter a script put on `Object.prototype` or `Array.prototype` is not run.
fn to_js<'js>(ctx: &Ctx<'js>, value: &Value) -> rquickjs::Result<JsValue<'js>> {
    Ok(match value {
        Value::Null => JsValue::new_null(ctx.clone()),
        Value::Bool(b) => JsValue::new_bool(ctx.clone(), *b),
        Value::Number(n) => JsValue::new_number(ctx.clone(), n.as_f64().unwrap_or_default()),
        Value::String(s) => rquickjs::String::from_str(ctx.clone(), s)?.into_value(),
        Value::Array(items) => {
            let array = Array::new(ctx.clone())?;
            for (i, item) in (0u32..).zip(items) {
                array.as_object().prop(i, data(to_js(ctx, item)?))?;
            }
            array.into_value()
        }
        Value::Object(fields) => {
            let object = Object::new(ctx.clone())?;
            for (key, item) in fields {
                object.prop(key.as_str(), data(to_js(ctx, item)?))?;
            }
            object.into_value()
        }
    })
}

/// The failure an exception stands for.
fn thrown(ctx: &Ctx<'_>, e: rquickjs::Error) -> Failure {
    if !matches!(e, rquickjs::Error::Exception) {
        return Failure::Failed(e.to_string());
    }
    let value = ctx.catch();
    if let Some(obj) = value.as_object()
        && obj.get::<_, String>("name").ok().as_deref() == Some("JxpError")
    {
        let status = obj.get::<_, f64>("status").unwrap_or(500.0);
        let status = if (100.0..1000.0).contains(&status) {
            status as u16
        } else {
            500
        };
        return Failure::Refused {
            status,
            message: obj.get::<_, String>("message").unwrap_or_default(),
            stash: obj
                .get::<_, Option<f64>>("__jxp_stash")
                .ok()
                .flatten()
                .map(|i| i as usize),
        };
    }
    Failure::Failed(text_of(&value))
}

/// An exception as text: its message and stack where it has them.
fn text_of(value: &JsValue<'_>) -> String {
    if let Some(obj) = value.as_object() {
        let name = obj.get::<_, String>("name").unwrap_or_default();
        let message = obj.get::<_, String>("message").unwrap_or_default();
        let stack = obj.get::<_, String>("stack").unwrap_or_default();
        if !name.is_empty() || !message.is_empty() {
            return format!("{name}: {message}\n{stack}").trim_end().to_owned();
        }
    }
    if let Some(s) = value.as_string() {
        return s.to_string().unwrap_or_default();
    }
    format!("{value:?}")
}

/// An error met while loading, as text.
fn describe(ctx: &Ctx<'_>, e: rquickjs::Error) -> String {
    match e {
        rquickjs::Error::Exception => text_of(&ctx.catch()),
        other => other.to_string(),
    }
}

/// The line an error message names in `file` (`file:LINE` or `file:LINE:COL`), else 1.
pub(crate) fn line_of(message: &str, file: &str) -> u32 {
    let needle = format!("{file}:");
    message
        .match_indices(&needle)
        .filter_map(|(at, _)| {
            let digits: String = message[at + needle.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .next()
        .unwrap_or(1)
}

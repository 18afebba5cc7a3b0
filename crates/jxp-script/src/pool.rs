//! The runtimes and the threads calls run on.
//!
//! Where the process has more than one CPU, a call is first tried on the request's own worker
//! thread, in a runtime that thread keeps (`Pool::inline`), with a budget of
//! [`INLINE_BUDGET`]: handing a call to another thread and its answer back costs more than
//! most hooks do. A call that runs over the budget (working through it: one past it only
//! because a busy machine took the thread's CPU away mid-call is let finish, see the
//! interrupt handler in `Engine::new`) or out of memory, or reaches for `ctx.db`/`ctx.system`
//! (which would wait for the app on the worker), is stopped, its runtime dropped, and run
//! again from the start on the pool below; it had done nothing outside its runtime (its log
//! lines are held until it stands), and its export's later calls go to the pool directly.
//! Once [`FIRST_PATIENCE`] of them in a row have answered there without `ctx.db` and within
//! the budget (or in too few steps to be stopped for their time), the export is tried on
//! the workers again; sent back within [`WORTH_IT`], it waits twice as many calls the next
//! time. So a script that always spins costs a worker one budget, once, and no more (its
//! calls on the pool run past the budget); one that spins or reaches for `ctx.db` now and
//! then keeps the workers for its other calls, at the cost of a budget and a rebuilt runtime
//! each time it is sent back, and one that does so every few calls soon stays on the pool.
//!
//! The pool: one thread per core owns one runtime and takes calls from a shared queue, so a
//! script never runs long on an async worker: one that spins delays only the script calls
//! queued behind it, never a request that runs no script. Under
//! load a thread takes the next call as soon as it has answered one, without sleeping in
//! between; while calls come close together, a thread that finds none watches the queue
//! briefly before it sleeps (where the process has more than one CPU), so the next caller
//! need not wake it. A call made from inside a script (a `ctx.db` write that runs another
//! model's hooks) does not queue, since every thread may be waiting on such a call: it runs
//! on a blocking thread of its own with a spare runtime.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use jxp_core::{HookError, Identity, WeakApp};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::bridge::{CallEnv, log_line, with_env};
use crate::engine::{Answer, Caps, Engine, Failure, Source, Target, Who, value_of};

/// How deep calls may nest (a hook whose write runs a hook whose write …).
const MAX_DEPTH: u32 = 8;

/// How long a call may run on the request's worker before it is stopped and run on the
/// pool instead.
const INLINE_BUDGET: Duration = Duration::from_micros(500);

/// How many calls in a row an export sent to the pool must answer there without `ctx.db`
/// and within [`INLINE_BUDGET`] before it is tried on the workers again. Each time it is sent
/// back a worker loses its runtime (made again in about a millisecond): if the export had
/// stayed on the workers for at least [`WORTH_IT`] the number starts again from this,
/// otherwise it doubles, so that an export that leaves the workers every few calls soon stays
/// on the pool.
const FIRST_PATIENCE: u32 = 64;

/// The most calls an export is ever made to wait.
const MAX_PATIENCE: u32 = 1 << 20;

/// How long an export must have stayed on the workers for the runtime it cost to have been
/// worth it.
const WORTH_IT: Duration = Duration::from_millis(20);

/// Nanoseconds since the first call of this, never 0: when an export went back to the
/// workers.
fn now_nanos() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let nanos = EPOCH.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX).max(1)
}

/// Tells pools apart, for the runtime a worker thread keeps: a process (the tests) may run
/// several servers, each with its own scripts.
static POOL_IDS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// How deep in script calls this thread is (0: not in one).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The runtime this thread runs calls in itself (a request worker's, see `Pool::inline`).
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// A runtime kept by a request worker, with the pool it belongs to.
struct Local {
    pool: usize,
    engine: Engine,
    shared: Arc<Shared>,
}

impl Drop for Local {
    fn drop(&mut self) {
        self.shared.local.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where calls go: an export, with what the log says of it and the slot every runtime keeps
/// it bound in. Made once per export at start, so a call allocates none of it.
pub(crate) struct Site {
    pub target: Target,
    slot: usize,
    /// The script's file and the export's name as the log names them.
    pub file: String,
    pub label: String,
    /// Its calls go to the pool: one ran over [`INLINE_BUDGET`] or out of memory, or reached
    /// for `ctx.db`, on a request worker.
    pooled: AtomicBool,
    /// Calls in a row answered on the pool without `ctx.db` and within the budget since.
    clean: AtomicU32,
    /// How many such calls send it back to the workers (see [`FIRST_PATIENCE`]); 0 before
    /// it was first sent to the pool.
    patience: AtomicU32,
    /// When it last went back to the workers (`now_nanos`; 0: not since it was last sent to
    /// the pool, or never).
    back_since: AtomicU64,
}

impl Site {
    /// Sends this export's calls to the pool, to be tried on the workers again after
    /// [`FIRST_PATIENCE`] clean calls there, or twice as many as the last time where it went
    /// back to the workers less than [`WORTH_IT`] ago.
    fn to_pool(&self) {
        let since = self.back_since.swap(0, Ordering::Relaxed);
        let stayed = Duration::from_nanos(now_nanos().saturating_sub(since));
        let last = self.patience.load(Ordering::Relaxed);
        let patience = if last == 0 || (since != 0 && stayed >= WORTH_IT) {
            FIRST_PATIENCE
        } else {
            last.saturating_mul(2).min(MAX_PATIENCE)
        };
        self.patience.store(patience, Ordering::Relaxed);
        self.clean.store(0, Ordering::Relaxed);
        self.pooled.store(true, Ordering::Relaxed);
        tracing::debug!(script = %self.file, export = %self.label, calls = patience, "calls of this export run on the script pool until as many calls in a row there need neither ctx.db nor more time");
    }

    /// Counts a call answered on the pool: after enough in a row that a worker could have
    /// answered (no `ctx.db`, within [`INLINE_BUDGET`]), the export is tried on the workers
    /// again. An export that reaches for `ctx.db` only now and then keeps the workers' speed
    /// for its other calls, and one that always does never leaves the pool.
    fn after_pool_call(&self, env: &CallEnv) {
        if !self.pooled.load(Ordering::Relaxed) {
            return;
        }
        let clean = !env.used_db && env.fitted == Some(true);
        if !clean {
            self.clean.store(0, Ordering::Relaxed);
            return;
        }
        let count = self.clean.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if count >= self.patience.load(Ordering::Relaxed) {
            self.clean.store(0, Ordering::Relaxed);
            self.back_since.store(now_nanos(), Ordering::Relaxed);
            self.pooled.store(false, Ordering::Relaxed);
            tracing::debug!(script = %self.file, export = %self.label, "calls of this export are tried on the request workers again");
        }
    }
}

/// Which keys of `ctx` the runtime's thread makes itself, ahead of the fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CtxKeys {
    /// `ctx.user`: the caller, made from the job's `identity`.
    pub user: bool,
    /// `ctx.id`: the job's `id` (null when none), after `user`.
    pub id: bool,
}

/// One call: what to run and for whom. Who and what it is about may be borrowed from the
/// caller: they are copied only for a call that goes to the pool, so a call answered on the
/// request's worker copies none of them.
pub(crate) struct Job<'a> {
    pub site: Arc<Site>,
    /// The fields of `ctx`, after the keys `keys` asks for.
    pub ctx: Value,
    pub keys: CtxKeys,
    pub identity: Cow<'a, Identity>,
    pub model: Cow<'a, str>,
    pub id: Option<Cow<'a, str>>,
}

/// What a call answers: its value or failure, and what it was given, handed back: its
/// environment, whose stash holds the app errors its `ctx.db` calls met, and its `ctx`. The
/// caller's thread made those, and freeing them there keeps the allocator of the runtime's
/// thread out of the way of the request workers'.
type Outcome = (Result<Answer, Failure>, Option<CallEnv>, Value);

/// A queued call and where its answer goes.
struct Work {
    site: Arc<Site>,
    ctx: Value,
    keys: CtxKeys,
    env: CallEnv,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Queue {
    calls: VecDeque<Work>,
    closed: bool,
    /// Threads waiting for a call: a call queued while none waits wakes nobody, since a
    /// thread looks at the queue again before it waits.
    idle: usize,
    /// Of those, how many were woken and have not run yet: a call queued meanwhile wakes
    /// another only if one is left asleep (a wake-up is a system call, and a woken thread
    /// takes every call queued before it runs).
    woken: usize,
}

/// What the pool's threads share with it.
struct Shared {
    sources: Vec<Source>,
    caps: Caps,
    size: usize,
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Idle runtimes for nested calls.
    spare: Mutex<Vec<Engine>>,
    /// How many calls are queued, as of the queue's last change: read without its lock by a
    /// thread that watches for work before it sleeps.
    pending: AtomicUsize,
    /// Threads watching for work before they sleep: calls queued meanwhile, up to one for each
    /// of them, wake nobody.
    watching: AtomicUsize,
    /// How long a thread that has answered a call watches for the next: none where the
    /// process may run on one CPU only, since the caller cannot queue a call meanwhile.
    watch: Duration,
    /// This pool's number, which the runtimes kept by workers carry.
    id: usize,
    /// Whether calls are tried on the request's worker first: where the process has more
    /// than one CPU. (On one, the pool's thread answers every call queued while the worker
    /// ran, in one turn, which costs less.)
    inline: bool,
    /// Runtimes kept by workers, made or being made: at most one per core.
    local: AtomicUsize,
    /// Runtimes made for workers and not yet taken.
    made: Mutex<Vec<Engine>>,
    /// A runtime is being made for a worker.
    making: AtomicBool,
}

pub(crate) struct Pool {
    shared: Arc<Shared>,
    app: OnceLock<WeakApp>,
    /// The next call site's slot.
    sites: AtomicUsize,
}

impl Pool {
    /// A pool of `size` threads, each with a runtime; `first` is the runtime the scripts were
    /// checked in, and the first thread's.
    pub fn new(sources: Vec<Source>, caps: Caps, size: usize, first: Engine) -> Arc<Self> {
        let size = size.max(1);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let shared = Arc::new(Shared {
            sources,
            caps,
            size,
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            spare: Mutex::new(Vec::new()),
            pending: AtomicUsize::new(0),
            watching: AtomicUsize::new(0),
            watch: if cpus > 1 { WATCH } else { Duration::ZERO },
            id: POOL_IDS.fetch_add(1, Ordering::Relaxed),
            inline: cpus > 1,
            local: AtomicUsize::new(0),
            made: Mutex::new(Vec::new()),
            making: AtomicBool::new(false),
        });
        let mut first = Some(first);
        for n in 0..size {
            let (shared, engine) = (shared.clone(), first.take());
            let spawned = std::thread::Builder::new()
                .name(format!("jxp-script-{n}"))
                .spawn(move || serve(&shared, engine));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "a script thread could not start");
            }
        }
        Arc::new(Pool {
            shared,
            app: OnceLock::new(),
            sites: AtomicUsize::new(0),
        })
    }

    /// The call site of `target`, with a slot of its own.
    pub fn site(&self, target: Target) -> Arc<Site> {
        Arc::new(Site {
            slot: self.sites.fetch_add(1, Ordering::Relaxed),
            file: self.file_of(key_of(&target)),
            label: label(&target),
            target,
            pooled: AtomicBool::new(false),
            clean: AtomicU32::new(0),
            patience: AtomicU32::new(0),
            back_since: AtomicU64::new(0),
        })
    }

    /// Gives the scripts the app their `ctx.db` calls go to.
    pub fn attach(&self, app: WeakApp) {
        let _ = self.app.set(app);
    }

    /// The file of the script `key`.
    fn file_of(&self, key: &str) -> String {
        self.shared
            .sources
            .iter()
            .find(|s| s.key == key)
            .map(Source::name)
            .unwrap_or_default()
    }

    /// Runs `job` on a runtime and answers its value; failures are answered as the client
    /// should see them and logged with their detail.
    pub async fn run(&self, job: Job<'_>) -> Result<Value, HookError> {
        let site = job.site.clone();
        let answer = self.run_text(job).await?;
        value_of(answer).map_err(|e| self.failed(&site, e))
    }

    /// `run_text` for a call answered on this thread at once (see [`Pool::inline`]); none
    /// where it is to go to the pool, or nests in another call. A caller that tries this
    /// first makes the future of `run_text`, a kilobyte, only for a call that needs it.
    pub fn run_now(&self, job: &Job<'_>) -> Option<Result<Answer, HookError>> {
        if DEPTH.with(Cell::get) != 0 {
            return None;
        }
        let who = Who {
            user: job.keys.user.then_some(&*job.identity),
            id: job.keys.id.then_some(job.id.as_deref()),
        };
        let (out, env, _ctx) = self.inline(&job.site, &job.ctx, who)?;
        Some(self.answer(&job.site, out, env))
    }

    /// `run`, answering the value as JSON text (`None` for null or `undefined`).
    pub async fn run_text(&self, job: Job<'_>) -> Result<Answer, HookError> {
        match self.run_now(&job) {
            Some(done) => done,
            None => self.run_pooled(job).await,
        }
    }

    /// `run_text` for a call that `run_now` did not answer: on the pool, or (nested in
    /// another call) on a blocking thread of its own.
    pub async fn run_pooled(&self, job: Job<'_>) -> Result<Answer, HookError> {
        let depth = DEPTH.with(Cell::get);
        let (file, label) = (&job.site.file, &job.site.label);
        if depth >= MAX_DEPTH {
            tracing::error!(script = %file, export = %label, "script hooks nested more than {MAX_DEPTH} deep");
            return Err(HookError::reject(500, "hook failed"));
        }
        let site = job.site;
        let queued = depth == 0;
        let app = self
            .app
            .get()
            .and_then(WeakApp::upgrade)
            .ok_or_else(|| HookError::reject(503, "the server is not ready"))?;
        let env = CallEnv {
            app: Some(app),
            handle: Some(tokio::runtime::Handle::current()),
            identity: Some(Arc::new(job.identity.into_owned())),
            model: job.model.into_owned(),
            id: job.id.map(Cow::into_owned),
            site: site.clone(),
            stash: Vec::new(),
            inline: None,
            used_db: false,
            fitted: None,
        };
        let outcome = if depth == 0 {
            self.queued(site.clone(), job.ctx, job.keys, env).await
        } else {
            let (shared, site) = (self.shared.clone(), site.clone());
            tokio::task::spawn_blocking(move || {
                nested(&shared, &site, (job.keys, &job.ctx), env, depth + 1)
            })
            .await
            .ok()
        };
        let Some((out, env, _ctx)) = outcome else {
            tracing::error!(script = %site.file, export = %site.label, "script call crashed");
            return Err(HookError::reject(500, "hook failed"));
        };
        if queued && let Some(env) = &env {
            site.after_pool_call(env);
        }
        self.answer(&site, out, env)
    }

    /// What a call answered, as the caller sees it: a refusal that a nested call raised is
    /// answered as that call's own error.
    fn answer(
        &self,
        site: &Site,
        out: Result<Answer, Failure>,
        env: Option<CallEnv>,
    ) -> Result<Answer, HookError> {
        let mut stash = env.map(|env| env.stash).unwrap_or_default();
        match out {
            Ok(v) => Ok(v),
            Err(Failure::Refused { stash: Some(i), .. }) if i < stash.len() => {
                Err(HookError::from(stash.swap_remove(i)))
            }
            Err(e) => Err(self.failed(site, e)),
        }
    }

    /// A failure as the client sees it, logged with its detail.
    fn failed(&self, site: &Site, failure: Failure) -> HookError {
        let (file, label) = (&site.file, &site.label);
        match failure {
            Failure::Refused {
                status, message, ..
            } => HookError::reject(status, message),
            Failure::TimedOut => {
                tracing::error!(script = %file, export = %label, timeout = ?self.shared.caps.timeout, "script hook timed out");
                HookError::reject(500, "hook timed out")
            }
            Failure::Failed(detail) => {
                tracing::error!(script = %file, export = %label, "script hook failed: {detail}");
                HookError::reject(500, "hook failed")
            }
        }
    }

    /// Runs a call on this thread, in the runtime it keeps, if it is a request worker, the
    /// pool allows it and the export's calls have not been sent to the pool; answers none
    /// where the call is to go to the pool instead. A call stopped at
    /// [`INLINE_BUDGET`], out of memory or reaching for `ctx.db` (see the module's
    /// documentation) drops its runtime and sends the export's calls to the pool
    /// (`Site::to_pool`).
    fn inline(&self, site: &Arc<Site>, ctx: &Value, who: Who<'_>) -> Option<Outcome> {
        let shared = &self.shared;
        if !shared.inline || site.pooled.load(Ordering::Relaxed) || !on_worker() {
            return None;
        }
        LOCAL.with(|cell| {
            let Ok(mut local) = cell.try_borrow_mut() else {
                return None;
            };
            if local.as_ref().is_some_and(|l| l.pool != shared.id) {
                *local = None;
            }
            if local.is_none() {
                match jxp_model::sync::lock(&shared.made).pop() {
                    Some(engine) => {
                        *local = Some(Local {
                            pool: shared.id,
                            engine,
                            shared: shared.clone(),
                        });
                    }
                    None => {
                        self.make_local();
                        return None;
                    }
                }
            }
            let kept = local.as_mut()?;
            // `ctx.db` is not answered here, so the call needs no app, caller or model of
            // its own: it only says whether it reached for them.
            let env = CallEnv {
                app: None,
                handle: None,
                identity: None,
                model: String::new(),
                id: None,
                site: site.clone(),
                stash: Vec::new(),
                inline: Some(Vec::new()),
                used_db: false,
                fitted: None,
            };
            let (out, env) = with_env(env, || {
                kept.engine
                    .call_for(site.slot, &site.target, who, ctx, INLINE_BUDGET)
            });
            let Some(mut env) = env else {
                return Some((out, None, Value::Null));
            };
            let held = env.inline.take().unwrap_or_default();
            // Out of time, out of memory (the runtime is spoiled either way) or reaching out.
            if env.used_db || kept.engine.spoiled {
                // Freeing a runtime can take a while: not on the worker.
                if let Some(old) = local.take() {
                    tokio::task::spawn_blocking(move || drop(old));
                }
                site.to_pool();
                return None;
            }
            for (level, text) in held {
                log_line(Some(site), level, &text);
            }
            Some((out, Some(env), Value::Null))
        })
    }

    /// Has a runtime made, off the workers (evaluating the modules runs the scripts' own
    /// code), for a worker that has none: one at a time, at most one per core.
    fn make_local(&self) {
        let shared = &self.shared;
        if shared.local.load(Ordering::SeqCst) >= shared.size
            || shared.making.swap(true, Ordering::SeqCst)
        {
            return;
        }
        shared.local.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            match Engine::new(&shared.sources, shared.caps) {
                Ok(engine) => jxp_model::sync::lock(&shared.made).push(engine),
                // Still counted, so that a runtime that cannot start is tried at most once
                // per core.
                Err((_, f)) => {
                    tracing::warn!(error = %f.message, "a script runtime for a request worker could not start; calls go to the pool");
                }
            }
            shared.making.store(false, Ordering::SeqCst);
        });
    }

    /// Queues a call for the pool's threads and waits for its answer (`None` if no thread
    /// answered).
    async fn queued(
        &self,
        site: Arc<Site>,
        ctx: Value,
        keys: CtxKeys,
        env: CallEnv,
    ) -> Option<Outcome> {
        let (reply, answer) = oneshot::channel();
        let wake = {
            let mut queue = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            queue.calls.push_back(Work {
                site,
                ctx,
                keys,
                env,
                reply,
            });
            self.shared
                .pending
                .store(queue.calls.len(), Ordering::Relaxed);
            // Each watching thread takes a call: one that stops watching looks at the queue
            // under this lock before it sleeps, and so sees this one. A sleeper is woken only
            // for calls beyond what the watchers take.
            let asleep = queue.idle > queue.woken
                && queue.calls.len() > self.shared.watching.load(Ordering::SeqCst);
            if asleep {
                queue.woken += 1;
            }
            asleep
        };
        // Waking a thread costs a system call even when none waits; a busy one takes the
        // call when it has answered the one it runs.
        if wake {
            self.shared.ready.notify_one();
        }
        answer.await.ok()
    }
}

/// The threads end once the pool is gone (the app that held its hooks was dropped).
impl Drop for Pool {
    fn drop(&mut self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.shared.ready.notify_all();
    }
}

/// A pool thread: takes calls until the pool closes, with a runtime of its own (made again
/// after a call spoiled it).
fn serve(shared: &Shared, mut engine: Option<Engine>) {
    DEPTH.with(|d| d.set(1));
    if engine.is_none() {
        engine = Engine::new(&shared.sources, shared.caps).ok();
    }
    if let Some(e) = &engine {
        tracing::debug!(bytes = e.memory_used(), "script runtime ready");
    }
    if let Err(e) = jxp_model::sched::batch_policy() {
        tracing::debug!(error = %e, "a script thread keeps the default scheduling policy");
    }
    // Whether to watch for the next call before sleeping: while calls come close together.
    let mut watch = true;
    loop {
        if watch {
            watch = watch_for_work(shared);
        }
        let work = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let mut asleep_since = None;
            loop {
                if let Some(work) = queue.calls.pop_front() {
                    // Found without sleeping, or after a sleep shorter than a watch: the
                    // calls come close enough together that the next watch may pay.
                    if asleep_since.is_none_or(|since: Instant| since.elapsed() < shared.watch) {
                        watch = true;
                    }
                    shared.pending.store(queue.calls.len(), Ordering::Relaxed);
                    // More calls left behind than threads watching, and a thread asleep:
                    // wake it, as the calls' callers did not.
                    if queue.calls.len() > shared.watching.load(Ordering::SeqCst)
                        && queue.idle > queue.woken
                    {
                        queue.woken += 1;
                        shared.ready.notify_one();
                    }
                    break work;
                }
                if queue.closed {
                    return;
                }
                queue.idle += 1;
                asleep_since.get_or_insert_with(Instant::now);
                queue = shared
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
                queue.idle -= 1;
                queue.woken = queue.woken.saturating_sub(1);
            }
        };
        if work.reply.is_closed() {
            // The caller left (its client hung up): nothing waits for this call.
            continue;
        }
        if engine.as_ref().is_none_or(|e| e.spoiled) {
            engine = Engine::new(&shared.sources, shared.caps).ok();
        }
        let Work {
            site,
            ctx,
            keys,
            env,
            reply,
        } = work;
        let (out, env) = match engine.as_mut() {
            Some(e) => {
                let (user, id) = who_of(&env, keys);
                let started = Instant::now();
                let (out, mut env) = with_env(env, || {
                    let who = Who {
                        user: user.as_deref(),
                        id: id.as_ref().map(Option::as_deref),
                    };
                    e.call(site.slot, &site.target, who, &ctx)
                });
                if let Some(env) = env.as_mut() {
                    env.fitted = Some(!e.worked() || started.elapsed() < INLINE_BUDGET);
                }
                (out, env)
            }
            None => (
                Err(Failure::Failed("a script runtime could not start".into())),
                Some(env),
            ),
        };
        let _ = reply.send((out, env, ctx));
    }
}

/// Whether this thread runs tasks of a multi-threaded tokio runtime (where another worker
/// takes over what this one leaves while it runs a call). Asked once per thread: the
/// question takes a reference to the runtime, shared by every worker.
fn on_worker() -> bool {
    thread_local! {
        static ON_WORKER: Cell<Option<bool>> = const { Cell::new(None) };
    }
    ON_WORKER.with(|known| {
        known.get().unwrap_or_else(|| {
            let yes = tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
            known.set(Some(yes));
            yes
        })
    })
}

/// How long a thread that has answered a call watches for the next before it sleeps.
const WATCH: Duration = Duration::from_micros(20);

/// Watches the queue for up to `shared.watch` ([`WATCH`]), giving way to any other thread
/// that can run between looks: under load the next call comes sooner than a wake-up would (a
/// system call for the caller, and a sleep and a wake-up of this thread).
fn watch_for_work(shared: &Shared) -> bool {
    if shared.watch.is_zero() {
        return false;
    }
    shared.watching.fetch_add(1, Ordering::SeqCst);
    let until = Instant::now() + shared.watch;
    let found = 'watch: loop {
        for _ in 0..32 {
            if shared.pending.load(Ordering::Relaxed) > 0 {
                break 'watch true;
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= until {
            break false;
        }
        std::thread::yield_now();
    };
    shared.watching.fetch_sub(1, Ordering::SeqCst);
    found
}

/// A call made from inside a script, on a blocking thread: a spare runtime (or a new one),
/// given back afterwards unless spoiled.
fn nested(
    shared: &Shared,
    site: &Site,
    (keys, ctx): (CtxKeys, &Value),
    env: CallEnv,
    depth: u32,
) -> Outcome {
    let taken = jxp_model::sync::lock(&shared.spare).pop();
    let mut engine = match taken {
        Some(e) => e,
        None => match Engine::new(&shared.sources, shared.caps) {
            Ok(e) => e,
            Err((_, f)) => {
                return (
                    Err(Failure::Failed(format!(
                        "a runtime could not start: {}",
                        f.message
                    ))),
                    Some(env),
                    Value::Null,
                );
            }
        },
    };
    let before = DEPTH.with(|d| d.replace(depth));
    let (user, id) = who_of(&env, keys);
    let (out, env) = with_env(env, || {
        let who = Who {
            user: user.as_deref(),
            id: id.as_ref().map(Option::as_deref),
        };
        engine.call(site.slot, &site.target, who, ctx)
    });
    DEPTH.with(|d| d.set(before));
    if !engine.spoiled {
        let mut spare = jxp_model::sync::lock(&shared.spare);
        if spare.len() < shared.size {
            spare.push(engine);
        }
    }
    (out, env, Value::Null)
}

/// What `Who` is made of for a call in `env`, as `keys` asks: the caller, its document's id
/// (kept apart from `env`, which the call takes).
fn who_of(env: &CallEnv, keys: CtxKeys) -> (Option<Arc<Identity>>, Option<Option<String>>) {
    (
        keys.user.then(|| env.identity.clone()).flatten(),
        keys.id.then(|| env.id.clone()),
    )
}

fn key_of(target: &Target) -> &str {
    match target {
        Target::Export { key, .. } | Target::Function { key, .. } => key,
    }
}

/// The export's name as the log names it (`functions.stats` for a function).
fn label(target: &Target) -> String {
    match target {
        Target::Export { name, .. } => name.clone(),
        Target::Function { name, .. } => format!("functions.{name}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};

    use super::{Caps, Queue, Shared, watch_for_work};

    fn shared(watch: Duration) -> Shared {
        Shared {
            sources: Vec::new(),
            caps: Caps {
                timeout: Duration::from_secs(1),
                memory_bytes: 1 << 20,
            },
            size: 1,
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            spare: Mutex::new(Vec::new()),
            pending: AtomicUsize::new(0),
            watching: AtomicUsize::new(0),
            watch,
            id: 0,
            inline: false,
            local: AtomicUsize::new(0),
            made: Mutex::new(Vec::new()),
            making: std::sync::atomic::AtomicBool::new(false),
        }
    }

    #[test]
    fn a_watch_ends_at_a_queued_call_or_when_its_time_is_up() {
        // Nothing to watch for on one CPU.
        let one_cpu = shared(Duration::ZERO);
        one_cpu.pending.store(1, Ordering::Relaxed);
        assert!(!watch_for_work(&one_cpu));
        // A call already queued.
        let queued = shared(Duration::from_secs(60));
        queued.pending.store(1, Ordering::Relaxed);
        assert!(watch_for_work(&queued));
        assert_eq!(queued.watching.load(Ordering::SeqCst), 0);
        // None comes.
        let idle = shared(Duration::from_micros(300));
        let started = Instant::now();
        assert!(!watch_for_work(&idle));
        assert!(started.elapsed() >= Duration::from_micros(300));
        assert_eq!(idle.watching.load(Ordering::SeqCst), 0);
        // One comes while the thread watches, and the caller sees the watcher.
        let later = Arc::new(shared(Duration::from_secs(60)));
        let caller = {
            let later = later.clone();
            std::thread::spawn(move || {
                while later.watching.load(Ordering::SeqCst) == 0 {
                    std::hint::spin_loop();
                }
                later.pending.store(1, Ordering::Relaxed);
            })
        };
        let started = Instant::now();
        assert!(watch_for_work(&later));
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(caller.join().is_ok());
        assert_eq!(later.watching.load(Ordering::SeqCst), 0);
    }
}

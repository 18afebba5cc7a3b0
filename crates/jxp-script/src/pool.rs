//! The runtimes and the threads calls run on. One thread per core owns one runtime and takes
//! calls from a shared queue, so a script never runs on an async worker: one that spins
//! delays only the script calls queued behind it, never a request that runs no script. Under
//! load a thread takes the next call as soon as it has answered one, without sleeping in
//! between. A call made from inside a script (a `ctx.db` write that runs another model's
//! hooks) does not queue, since every thread may be waiting on such a call: it runs on a
//! blocking thread of its own with a spare runtime.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};

use jxp_core::{CoreError, HookError, Identity, WeakApp};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::bridge::{CallEnv, with_env};
use crate::engine::{Caps, Engine, Failure, Source, Target};

/// How deep calls may nest (a hook whose write runs a hook whose write …).
const MAX_DEPTH: u32 = 8;

thread_local! {
    /// How deep in script calls this thread is (0: not in one).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// One call: what to run and for whom.
pub(crate) struct Job {
    pub target: Target,
    pub ctx: Value,
    pub identity: Identity,
    pub model: String,
    pub id: Option<String>,
}

/// What a call answers: its value or failure, and the app errors its `ctx.db` calls met.
type Outcome = (Result<Value, Failure>, Vec<CoreError>);

/// A queued call and where its answer goes.
struct Work {
    job: Job,
    env: CallEnv,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Queue {
    calls: VecDeque<Work>,
    closed: bool,
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
}

pub(crate) struct Pool {
    shared: Arc<Shared>,
    app: OnceLock<WeakApp>,
}

impl Pool {
    /// A pool of `size` threads, each with a runtime; `first` is the runtime the scripts were
    /// checked in, and the first thread's.
    pub fn new(sources: Vec<Source>, caps: Caps, size: usize, first: Engine) -> Arc<Self> {
        let size = size.max(1);
        let shared = Arc::new(Shared {
            sources,
            caps,
            size,
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            spare: Mutex::new(Vec::new()),
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
    pub async fn run(&self, job: Job) -> Result<Value, HookError> {
        let depth = DEPTH.with(Cell::get);
        let label = label(&job.target);
        let file = self.file_of(key_of(&job.target));
        if depth >= MAX_DEPTH {
            tracing::error!(script = %file, export = %label, "script hooks nested more than {MAX_DEPTH} deep");
            return Err(HookError::reject(500, "hook failed"));
        }
        let app = self
            .app
            .get()
            .and_then(WeakApp::upgrade)
            .ok_or_else(|| HookError::reject(503, "the server is not ready"))?;
        let env = CallEnv {
            app,
            handle: tokio::runtime::Handle::current(),
            identity: job.identity.clone(),
            model: job.model.clone(),
            id: job.id.clone(),
            file: file.clone(),
            export: label.clone(),
            stash: Vec::new(),
        };
        let outcome = if depth == 0 {
            self.queued(job, env).await
        } else {
            let shared = self.shared.clone();
            tokio::task::spawn_blocking(move || nested(&shared, job, env, depth + 1))
                .await
                .ok()
        };
        let Some((out, mut stash)) = outcome else {
            tracing::error!(script = %file, export = %label, "script call crashed");
            return Err(HookError::reject(500, "hook failed"));
        };
        match out {
            Ok(v) => Ok(v),
            Err(Failure::Refused { stash: Some(i), .. }) if i < stash.len() => {
                Err(HookError::from(stash.swap_remove(i)))
            }
            Err(Failure::Refused {
                status, message, ..
            }) => Err(HookError::reject(status, message)),
            Err(Failure::TimedOut) => {
                tracing::error!(script = %file, export = %label, timeout = ?self.shared.caps.timeout, "script hook timed out");
                Err(HookError::reject(500, "hook timed out"))
            }
            Err(Failure::Failed(detail)) => {
                tracing::error!(script = %file, export = %label, "script hook failed: {detail}");
                Err(HookError::reject(500, "hook failed"))
            }
        }
    }

    /// Queues a call for the pool's threads and waits for its answer (`None` if no thread
    /// answered).
    async fn queued(&self, job: Job, env: CallEnv) -> Option<Outcome> {
        let (reply, answer) = oneshot::channel();
        {
            let mut queue = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            queue.calls.push_back(Work { job, env, reply });
        }
        self.shared.ready.notify_one();
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
    loop {
        let work = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(work) = queue.calls.pop_front() {
                    break work;
                }
                if queue.closed {
                    return;
                }
                queue = shared
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        if work.reply.is_closed() {
            // The caller left (its client hung up): nothing waits for this call.
            continue;
        }
        if engine.as_ref().is_none_or(|e| e.spoiled) {
            engine = Engine::new(&shared.sources, shared.caps).ok();
        }
        let outcome = match engine.as_mut() {
            Some(e) => with_env(work.env, || e.call(&work.job.target, &work.job.ctx)),
            None => (
                Err(Failure::Failed("a script runtime could not start".into())),
                Vec::new(),
            ),
        };
        let _ = work.reply.send(outcome);
    }
}

/// A call made from inside a script, on a blocking thread: a spare runtime (or a new one),
/// given back afterwards unless spoiled.
fn nested(shared: &Shared, job: Job, env: CallEnv, depth: u32) -> Outcome {
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
                    Vec::new(),
                );
            }
        },
    };
    let before = DEPTH.with(|d| d.replace(depth));
    let out = with_env(env, || engine.call(&job.target, &job.ctx));
    DEPTH.with(|d| d.set(before));
    if !engine.spoiled {
        let mut spare = jxp_model::sync::lock(&shared.spare);
        if spare.len() < shared.size {
            spare.push(engine);
        }
    }
    out
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

//! The pool of runtimes and how a call reaches one. Calls run on tokio's blocking threads,
//! never on an async worker, so a script that spins delays only callers waiting for a
//! runtime; at most one call per runtime runs at once, and there are as many runtimes as
//! cores. A call made from inside a script (a `ctx.db` write that runs another model's hooks)
//! takes no turn: it gets an idle runtime or a new one, so nested calls cannot wait on each
//! other.

use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock};

use jxp_core::{HookError, Identity, WeakApp};
use serde_json::Value;
use tokio::sync::Semaphore;

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

pub(crate) struct Pool {
    sources: Vec<Source>,
    caps: Caps,
    size: usize,
    idle: Mutex<Vec<Engine>>,
    turns: Semaphore,
    app: OnceLock<WeakApp>,
}

impl Pool {
    /// A pool of `size` runtimes, `first` among them (the others are made when needed).
    pub fn new(sources: Vec<Source>, caps: Caps, size: usize, first: Engine) -> Arc<Self> {
        let size = size.max(1);
        Arc::new(Pool {
            sources,
            caps,
            size,
            idle: Mutex::new(vec![first]),
            turns: Semaphore::new(size),
            app: OnceLock::new(),
        })
    }

    /// Gives the scripts the app their `ctx.db` calls go to.
    pub fn attach(&self, app: WeakApp) {
        let _ = self.app.set(app);
    }

    /// The file of the script `key`.
    pub fn file_of(&self, key: &str) -> String {
        self.sources
            .iter()
            .find(|s| s.key == key)
            .map(Source::name)
            .unwrap_or_default()
    }

    /// Runs `job` on a runtime and answers its value; failures are answered as the client
    /// should see them and logged with their detail.
    pub async fn run(self: &Arc<Self>, job: Job) -> Result<Value, HookError> {
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
        let _turn = if depth == 0 {
            Some(
                self.turns
                    .acquire()
                    .await
                    .map_err(|_| HookError::reject(503, "the server is stopping"))?,
            )
        } else {
            None
        };
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
        let pool = self.clone();
        let ran = tokio::task::spawn_blocking(move || pool.run_here(job, env, depth + 1)).await;
        let (out, mut stash) = match ran {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(script = %file, export = %label, error = %e, "script call crashed");
                return Err(HookError::reject(500, "hook failed"));
            }
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
                tracing::error!(script = %file, export = %label, timeout = ?self.caps.timeout, "script hook timed out");
                Err(HookError::reject(500, "hook timed out"))
            }
            Err(Failure::Failed(detail)) => {
                tracing::error!(script = %file, export = %label, "script hook failed: {detail}");
                Err(HookError::reject(500, "hook failed"))
            }
        }
    }

    /// On a blocking thread: takes a runtime, runs the call, gives the runtime back.
    fn run_here(
        &self,
        job: Job,
        env: CallEnv,
        depth: u32,
    ) -> (Result<Value, Failure>, Vec<jxp_core::CoreError>) {
        let taken = jxp_model::sync::lock(&self.idle).pop();
        let mut engine = match taken {
            Some(e) => e,
            None => match Engine::new(&self.sources, self.caps) {
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
            let mut idle = jxp_model::sync::lock(&self.idle);
            if idle.len() < self.size {
                idle.push(engine);
            }
        }
        out
    }

    /// Bytes held by the idle runtimes, each.
    pub fn idle_memory(&self) -> Vec<i64> {
        jxp_model::sync::lock(&self.idle)
            .iter()
            .map(Engine::memory_used)
            .collect()
    }
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

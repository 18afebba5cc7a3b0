//! Script hooks (SPEC §10): `MODEL_DIR/<slug>.js` and `MODEL_DIR/_app.js`, ES modules run by
//! an embedded QuickJS (through `rquickjs`), filed as hooks of the app's registry so they run
//! at the Rust hooks' points and write through the one write path.
//!
//! Layers: `load.rs` finds and checks the scripts; `engine.rs` is one runtime and one call
//! in it; `pool.rs` the threads calls run on, each with its runtime; `bridge.rs` what a script
//! reaches outside (`console`, `ctx.db`, `ctx.system`); `hooks.rs` exports → registry hooks;
//! `filters.rs` the filters `pre_get` answers, kept by answer; `answer.rs` an answer as JSON
//! text; `pure.rs` whether a `pre_get` is a function of `ctx.user` alone, whose answers a
//! runtime keeps per user.

mod answer;
mod bridge;
mod engine;
mod filters;
mod hooks;
mod load;
mod mix;
mod pool;
mod pure;
// Tests only: a panic here is an assertion; failing is how the test reports.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jxp_core::{App, Hooks};
use jxp_model::Schema;

pub use load::{APP_EXPORTS, MODEL_EXPORTS, ScriptError};

/// What each script runtime may use, and how many there are.
#[derive(Debug, Clone, Copy)]
pub struct ScriptLimits {
    /// The longest one call may run (`SCRIPT_TIMEOUT_MS`).
    pub timeout: Duration,
    /// The memory of one runtime (`SCRIPT_MEMORY_MB`), in bytes.
    pub memory_bytes: usize,
    /// How many runtimes run calls at once (the cores).
    pub runtimes: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            timeout: Duration::from_millis(1000),
            memory_bytes: 64 << 20,
            runtimes: std::thread::available_parallelism().map_or(4, usize::from),
        }
    }
}

/// The loaded scripts of a model directory.
pub struct Scripts {
    pool: Arc<pool::Pool>,
    exports: Vec<hooks::Exports>,
    files: Vec<String>,
}

impl Scripts {
    /// Loads and checks the scripts in `dir`; `None` when there are none.
    pub fn load(
        dir: &Path,
        schema: &Schema,
        limits: ScriptLimits,
    ) -> Result<Option<Self>, ScriptError> {
        let sources = load::read_sources(dir, schema)?;
        if sources.is_empty() {
            return Ok(None);
        }
        let caps = engine::Caps {
            timeout: limits.timeout,
            memory_bytes: limits.memory_bytes,
        };
        let mut first = load::check(&sources, caps)?;
        let exports = sources
            .iter()
            .map(|s| {
                let (names, functions) = first.exports(&s.key);
                hooks::Exports {
                    key: s.key.clone(),
                    names,
                    functions,
                }
            })
            .collect();
        let files = sources.iter().map(|s| s.name()).collect();
        Ok(Some(Scripts {
            pool: pool::Pool::new(sources, caps, limits.runtimes, first),
            exports,
            files,
        }))
    }

    /// Files every script's exports as hooks in `hooks`.
    pub fn register(&self, schema: &Schema, hooks: &mut Hooks) {
        for exports in &self.exports {
            let model = schema.models.get(&exports.key).cloned();
            hooks::register(&self.pool, exports, model, hooks);
        }
    }

    /// Hands the scripts the app their `ctx.db` and `ctx.system` calls go to.
    pub fn attach(&self, app: &App) {
        self.pool.attach(app.downgrade());
    }

    /// The script files loaded, in load order.
    pub fn files(&self) -> &[String] {
        &self.files
    }
}

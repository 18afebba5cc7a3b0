//! Script hooks (`MODEL_DIR/<slug>.js`, `_app.js`) driven through the real server: every
//! export runs at its point with its `ctx`, refusals write nothing and send nothing, a
//! post-hook's `ctx.system` write is an event of its own, `pre_get` narrows every read and
//! the feed, functions, the sandbox, the time limit, and scripts that stop start-up.

mod support;

mod console_log;
mod errors;
mod functions;
mod pool;
mod reads;
mod sample;
mod startup;
mod writes;

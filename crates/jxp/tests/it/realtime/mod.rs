//! The realtime WebSocket feed, through real WebSocket connections to the real server.

pub mod client;
pub(crate) mod support;

mod access;
mod closing;
mod enter_leave;
mod events;
mod limits;
mod pg_restart;
mod processes;
mod protocol;
mod replay;

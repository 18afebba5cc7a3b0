//! The realtime WebSocket feed, through real WebSocket connections to the real server.

mod client;
mod support;

mod access;
mod events;
mod limits;
mod processes;
mod protocol;
mod replay;

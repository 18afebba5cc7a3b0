//! The realtime hub: subscriptions, per-event permission and filter checks, fan-out into each
//! connection's outlet, `since` replay, and de-authentication when credentials stop being
//! valid. It knows nothing of the WebSocket wire format: events leave as the serialised `data`
//! object, and replies as frames the wire layer formats; the wire layer's [`Outlet`] writes
//! them.
//!
//! `outlet.rs` is what crosses to the wire layer, `handle.rs` the handles that command the hub
//! task, `hub/` the task itself, `subs.rs` its index of subscriptions, `event.rs` event bodies.

mod event;
mod handle;
mod hub;
mod outlet;
mod subs;

pub use handle::{Connection, Hub, RealtimeSettings};
pub(crate) use handle::{CredentialTrace, ReadLimits};
pub(crate) use hub::spawn_hub;
pub use outlet::{
    CloseReason, Outbound, Outlet, PushError, Responder, SubscribeError, SubscribeOk,
    SubscribeRequest,
};

//! The rules of jxp: the `App` (schema + store + settings), identities and permissions, the one
//! write path every route uses, and reads shaped as the API returns them. No HTTP here.

mod aggregate;
mod app;
mod auth;
mod bulk;
mod error;
mod explain;
mod hooks;
mod identity;
mod password;
mod perms;
mod populate;
mod read;
mod realtime;
mod tables;
mod write;

pub use aggregate::AGGREGATE_MAX_DOCS;
pub use app::{App, QueryLimits, Settings, parse_size};
pub use auth::{
    AuthSettings, Credentials, GroupChange, RateLimitSettings, RateLimiter, Session, SmtpSettings,
};
pub use bulk::{BULK_MAX_MATCHED, BULK_MAX_OPS, BulkDone, BulkKind, BulkOutcome, BulkReport};
pub use error::CoreError;
pub use hooks::{
    BoxFuture, CallCtx, CallVerb, HookError, Hooks, LoggedInCtx, LoginCtx, ModelScope, ReadCtx,
    ReadEvent, WriteCtx, WriteEvent, WrittenCtx,
};
pub use identity::{Identity, User};
pub use perms::{Access, Right, access};
pub use read::{ListOutcome, ListRequest};
pub use realtime::{
    CloseReason, Connection, Hub, Outbound, Outlet, PushError, RealtimeSettings, Responder,
    SubscribeError, SubscribeOk, SubscribeRequest,
};
pub use tables::table_specs;
pub use write::{DeleteOptions, WriteOptions};

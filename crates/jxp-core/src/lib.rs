//! The rules of jxp: the `App` (schema + store + settings), identities and permissions, the one
//! write path every route uses, and reads shaped as the API returns them. No HTTP here.
//!
//! The modules form layers, each using only those below it: leaves (`error`, `locks`,
//! `identity`, `secret`, `password`, `tables`, `perms`); what the app holds (`auth`'s settings,
//! cache and limiter, the `hooks` registry, `realtime`); `app`; then everything that acts
//! through the app, as methods of `App` (`hooks` runs, `auth` identification, `write` and
//! `delete`, `read`, then `import`, `bulk`, sessions, `populate`, `aggregate`, `explain`, `/call`).
//! A poisoned lock is treated one way throughout (`locks.rs`).

mod aggregate;
mod app;
mod auth;
mod budget;
mod bulk;
mod counts;
mod delete;
mod error;
mod explain;
mod group_sql;
mod hooks;
mod identity;
mod import;
mod password;
mod perms;
mod populate;
mod read;
mod realtime;
mod secret;
mod tables;
mod view;
mod write;

pub use app::{App, CallCtx, Hooks, QueryLimits, Settings, StoreReader, WeakApp, parse_size};
pub use auth::{AuthSettings, Credentials, GroupChange, RateLimitSettings, Session, SmtpSettings};
pub use bulk::{BULK_MAX_OPS, BulkDone, BulkKind, BulkOutcome, BulkReport};
pub use delete::DeleteOptions;
pub use error::{CoreError, HookError};
pub use hooks::{
    BoxFuture, CallVerb, LoggedInCtx, LoginCtx, ModelScope, ReadCtx, ReadEvent, ReadRef, RefFuture,
    Registry, WriteCtx, WriteEvent, WrittenCtx,
};
pub use identity::{Identity, User};
pub use perms::{Access, Right, access};
pub use read::{ListOutcome, ListRequest};
pub use realtime::{
    CloseReason, Connection, Hub, Outbound, Outlet, PushError, RealtimeSettings, Responder,
    SubscribeError, SubscribeOk, SubscribeRequest,
};
pub use secret::{REDACTED, ct_eq, shown as shown_secret};
pub use tables::table_specs;
pub use write::WriteOptions;

//! What passes between the hub and the wire layer: the frames the hub hands a connection
//! (`Outbound`), the [`Outlet`] that takes them, and subscribe requests with their answers.
//! Nothing here knows the WebSocket format.

use serde_json::Value;
use std::sync::Arc;

/// What the hub hands a connection's outlet.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A change event: the serialised `data` object (`{"event", "modelname", "item", …}`).
    Event(Arc<str>),
    /// The connection's identity is no longer valid; it gets nothing until it authenticates.
    Deauth(Arc<str>),
    /// A reply frame, already formatted by the wire layer.
    Reply(String),
    /// Time to ping the client (and to close it if it has been silent too long).
    Ping,
}

/// Why the hub closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its outlet overflowed: it reads too slowly (WebSocket 1013).
    TooSlow,
    /// The server is shutting down (WebSocket 1001).
    Shutdown,
}

/// Why an outlet did not take a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// More than its limit is waiting: the client reads too slowly.
    #[error("the connection's queue is full")]
    Full,
    /// The connection is closing or gone.
    #[error("the connection is closed")]
    Closed,
}

/// Where the hub puts one connection's frames, in order: the wire layer's writer. Neither
/// method waits, so the hub never waits for a client. The writer may put a frame on the
/// socket at once, from the caller's thread, or queue it; either way frames leave in the
/// order they were pushed.
pub trait Outlet: Send + Sync + 'static {
    /// Takes the next frame. `Err(Full)` when the connection has its limit waiting already.
    fn push(&self, item: Outbound) -> Result<(), PushError>;
    /// As `push`, but leaves the writing to the connection's own task: for a caller with
    /// more to send right after (the hub behind on the change stream), so the writes spread
    /// over every thread and several frames go out in one write.
    fn push_later(&self, item: Outbound) -> Result<(), PushError> {
        self.push(item)
    }
    /// Ends the connection for `reason`; frames still waiting may be dropped.
    fn close(&self, reason: CloseReason);
    /// Calls `wake` once at most `frames` frames wait to be written (at once if that is so
    /// already), so a sender of many frames, a `since` replay, goes at the client's pace
    /// without waiting on it. `wake` must not block: it is called from the writer. A closed
    /// connection drops it uncalled. An outlet that does not queue calls it at once.
    fn when_drained(&self, frames: usize, wake: Box<dyn FnOnce() + Send>) {
        let _ = frames;
        wake();
    }
}

/// The result of a successful subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeOk {
    Subscribed,
    AlreadySubscribed,
}

/// Why a subscribe failed. The messages are what clients see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("Not authenticated: send auth first")]
    NotAuthenticated,
    #[error("Unknown model {0}")]
    UnknownModel(String),
    #[error("Forbidden")]
    Forbidden,
    #[error("Bad filter: {0}")]
    BadFilter(String),
    #[error("Bad id: {0}")]
    BadId(String),
    #[error("Too many subscriptions (at most {0} per connection)")]
    TooMany(usize),
    /// The `since` is no longer replayable: events after it were trimmed (`oldest` is the
    /// oldest retained `seq`), or it is past the model's latest `seq` (after a restore or a
    /// reset). `latest` is the model's latest `seq`: refetch, then subscribe `since` it.
    #[error("resync required")]
    ResyncRequired { oldest: u64, latest: u64 },
    #[error("Server error")]
    Internal,
}

/// Formats the reply to a subscribe; the hub queues it before any event of the subscription.
pub type Responder = Box<dyn FnOnce(Result<SubscribeOk, SubscribeError>) -> String + Send>;

/// A subscribe or unsubscribe request, as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeRequest {
    pub model: String,
    pub id: Option<String>,
    /// The `filter` object, if any.
    pub filter: Option<Value>,
    /// Replay retained events after this `seq` before going live.
    pub since: Option<u64>,
    /// Opts in to `enter` and `leave` events: an update that brings a document into the
    /// subscription's view, or takes it out (its filter, the read right, the read hooks).
    /// Not part of what makes a subscription the same as another.
    pub enter_leave: bool,
}

//! Hooks and callable functions: the code an embedding application registers to run inside
//! the server. Pre-hooks run before an operation and may reject it, change the document or
//! patch, or narrow what a reader sees; post-hooks run after a write has committed; functions
//! are served at `/call`. The registry is a plain value held by the app's settings, so two apps
//! in one process never share hooks.
//!
//! Every hook is an async closure taking an owned context (a read hook may borrow its
//! context instead, `Registry::pre_read_ref`). Registration order is run order;
//! a hook registered for all models (`"*"`) and one for a single model run in the order they
//! were registered.
//!
//! This file is the registry and what hooks see; it knows nothing of the app. A function is
//! handed the app itself (`CallCtx`, declared with the app), so the registry is generic over
//! what a function is handed, and the app names it `Hooks`. Running hooks (`run.rs`) and
//! `/call` (`call.rs`) are methods of the app.

mod call;
mod run;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use jxp_model::Document;
use jxp_query::Filter;
use serde_json::Value;

use crate::error::HookError;
use crate::identity::Identity;

/// A boxed future, as the registry stores hooks.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A boxed future that may borrow for `'a`: what a hook registered with
/// [`Registry::pre_read_ref`] answers.
pub type RefFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The write a hook is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteEvent {
    /// A create (`POST /api/:model`, bulk `insertOne`, a function's create).
    Post,
    /// An update (`PUT /api/:model/:id`, `POST /update/:model/:id`, bulk updates, a function's
    /// update).
    Put,
    /// JXP's second name for an update. A PUT and `/update` are one operation here, so hooks
    /// registered under `Update` run for every update too, in registration order with those
    /// under `Put`; their context says `Put`.
    Update,
    /// A delete, soft or permanent. Documents removed by a cascade run no hooks of their own.
    Delete,
}

/// The read a hook is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadEvent {
    /// Lists: `GET /api/:model`, `/count`, `/csv`, `/query`, `/aggregate`, and reads of the
    /// model from elsewhere (`$lookup`, `populate`, the realtime feed).
    Get,
    /// One document: `GET /api/:model/:id` (and the item of `/call/:model/:id/:fn`).
    GetOne,
}

/// Which models a hook is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelScope {
    All,
    Model(String),
}

impl ModelScope {
    fn covers(&self, slug: &str) -> bool {
        match self {
            ModelScope::All => true,
            ModelScope::Model(m) => m == slug,
        }
    }
}

/// `"*"` is every model; anything else is the slug of one.
impl From<&str> for ModelScope {
    fn from(s: &str) -> Self {
        if s == "*" {
            ModelScope::All
        } else {
            ModelScope::Model(s.to_owned())
        }
    }
}

impl From<String> for ModelScope {
    fn from(s: String) -> Self {
        ModelScope::from(s.as_str())
    }
}

/// What a write pre-hook sees.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub event: WriteEvent,
    /// The model's slug.
    pub model: String,
    /// Who is writing.
    pub identity: Identity,
    /// The document's id (updates and deletes).
    pub id: Option<String>,
    /// The stored document as its reader would see it (updates and deletes).
    pub current: Option<Document>,
    /// The request body: the new document of a create, the patch of an update; empty for a
    /// delete. What the hook returns replaces it and is then validated as a client's would be.
    pub doc: Document,
}

/// What a read pre-hook sees. It answers a filter that is ANDed into the read (`Filter::All`
/// for no constraint); a document outside it is absent to this reader.
#[derive(Debug, Clone)]
pub struct ReadCtx {
    pub event: ReadEvent,
    pub model: String,
    pub identity: Identity,
    /// The document's id (`GetOne`).
    pub id: Option<String>,
    /// The caller's own filter (a list's `filter[…]` and `/query` body), when the read has one.
    pub query: Option<Filter>,
}

/// [`ReadCtx`]'s fields borrowed from the read, for a hook registered with
/// [`Registry::pre_read_ref`]: it sees the read without a copy of the caller, the model's slug
/// or the id made for each call, which a hook that needs little of them (or needs them only
/// now and then) is spared.
#[derive(Debug, Clone, Copy)]
pub struct ReadRef<'a> {
    pub event: ReadEvent,
    pub model: &'a str,
    pub identity: &'a Identity,
    /// The document's id (`GetOne`).
    pub id: Option<&'a str>,
    /// The caller's own filter (a list's `filter[…]` and `/query` body), when the read has one.
    pub query: Option<&'a Filter>,
}

impl ReadRef<'_> {
    /// The owned context of a hook registered with [`Registry::pre_read`].
    pub fn to_ctx(&self) -> ReadCtx {
        ReadCtx {
            event: self.event,
            model: self.model.to_owned(),
            identity: self.identity.clone(),
            id: self.id.map(str::to_owned),
            query: self.query.cloned(),
        }
    }
}

/// What a write post-hook sees, after the commit.
#[derive(Debug, Clone)]
pub struct WrittenCtx {
    pub event: WriteEvent,
    pub model: String,
    pub identity: Identity,
    pub id: String,
    /// The document as written (for a delete: as it was before), private fields removed.
    pub doc: Document,
    /// An update's document as it was before it, private fields removed.
    pub before: Option<Document>,
}

/// What a login pre-hook sees: the email being logged in with (never the password).
#[derive(Debug, Clone)]
pub struct LoginCtx {
    pub email: String,
}

/// What a login post-hook sees. It answers fields to add to the login result (fields of
/// the result itself — tokens, ids — are not replaced).
#[derive(Debug, Clone)]
pub struct LoggedInCtx {
    pub user_id: String,
    /// The user's record, private fields removed.
    pub user: Document,
    /// The login answer without its secrets: `user_id`, `token_expires`,
    /// `refresh_token_expires` (the token, refresh token and API key stay out of hooks, which
    /// may log what they see).
    pub result: Document,
}

/// How a function was called, which decides the right it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallVerb {
    /// `GET`: needs `r`.
    Get,
    /// `POST`: needs `c`.
    Post,
}

type PreWrite = Arc<dyn Fn(WriteCtx) -> BoxFuture<Result<Document, HookError>> + Send + Sync>;
/// Both kinds of read hook are kept as the borrowing kind: one registered with `pre_read`
/// makes its owned context from the borrowed one.
type PreRead =
    Arc<dyn for<'a> Fn(ReadRef<'a>) -> RefFuture<'a, Result<Arc<Filter>, HookError>> + Send + Sync>;
type PostWrite = Arc<dyn Fn(WrittenCtx) -> BoxFuture<Result<(), HookError>> + Send + Sync>;
type PreLogin = Arc<dyn Fn(LoginCtx) -> BoxFuture<Result<(), HookError>> + Send + Sync>;
type PostLogin = Arc<dyn Fn(LoggedInCtx) -> BoxFuture<Result<Document, HookError>> + Send + Sync>;
type Function<C> = Arc<dyn Fn(C) -> BoxFuture<Result<Value, HookError>> + Send + Sync>;

/// The registry of hooks and functions, whose functions are handed a `C` (the app's
/// `CallCtx`; the app calls this registry `Hooks`). Cheap to clone; empty by default (the
/// `jxp` binary serves with an empty one).
pub struct Registry<C> {
    pre_write: Vec<(WriteEvent, ModelScope, PreWrite)>,
    pre_read: Vec<(ReadEvent, ModelScope, PreRead)>,
    post_write: Vec<(WriteEvent, ModelScope, PostWrite)>,
    pre_login: Vec<PreLogin>,
    post_login: Vec<PostLogin>,
    functions: HashMap<(String, String), Function<C>>,
}

// By hand: a derive would ask `C` to be `Default` and `Clone`, which a registry never needs.
impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry {
            pre_write: Vec::new(),
            pre_read: Vec::new(),
            post_write: Vec::new(),
            pre_login: Vec::new(),
            post_login: Vec::new(),
            functions: HashMap::new(),
        }
    }
}

impl<C> Clone for Registry<C> {
    fn clone(&self) -> Self {
        Registry {
            pre_write: self.pre_write.clone(),
            pre_read: self.pre_read.clone(),
            post_write: self.post_write.clone(),
            pre_login: self.pre_login.clone(),
            post_login: self.post_login.clone(),
            functions: self.functions.clone(),
        }
    }
}

/// The registration methods of the kinds of hook, which differ only in the context a hook
/// sees, what it answers, and whether it is filed under an event and a model. Each stores `f`
/// boxed in the list of the method's name.
macro_rules! register {
    ($(#[$doc:meta])* $name:ident($event:ty) $ctx:ty => $out:ty) => {
        $(#[$doc])*
        pub fn $name<F, Fut>(
            &mut self,
            event: $event,
            model: impl Into<ModelScope>,
            f: F,
        ) -> &mut Self
        where
            F: Fn($ctx) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<$out, HookError>> + Send + 'static,
        {
            self.$name.push((event, model.into(), Arc::new(move |c| Box::pin(f(c)))));
            self
        }
    };
    ($(#[$doc:meta])* $name:ident() $ctx:ty => $out:ty) => {
        $(#[$doc])*
        pub fn $name<F, Fut>(&mut self, f: F) -> &mut Self
        where
            F: Fn($ctx) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<$out, HookError>> + Send + 'static,
        {
            self.$name.push(Arc::new(move |c| Box::pin(f(c))));
            self
        }
    };
}

impl<C> fmt::Debug for Registry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("pre_write", &self.pre_write.len())
            .field("pre_read", &self.pre_read.len())
            .field("post_write", &self.post_write.len())
            .field("pre_login", &self.pre_login.len())
            .field("post_login", &self.post_login.len())
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<C: 'static> Registry<C> {
    pub fn new() -> Self {
        Registry::default()
    }

    register! {
        /// Runs `f` before `event` on `model` (a slug or `"*"`), after the permission check
        /// and before validation. It answers the document (or patch) to write, or rejects the
        /// write: then nothing is written, logged or sent.
        pre_write(WriteEvent) WriteCtx => Document
    }

    /// Runs `f` before `event` on `model`. It answers a filter ANDed into the read (rows
    /// this reader may see), or rejects the read.
    pub fn pre_read<F, Fut>(
        &mut self,
        event: ReadEvent,
        model: impl Into<ModelScope>,
        f: F,
    ) -> &mut Self
    where
        F: Fn(ReadCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Filter, HookError>> + Send + 'static,
    {
        self.pre_read_ref(event, model, move |c: ReadRef<'_>| -> RefFuture<'_, _> {
            let answered = f(c.to_ctx());
            Box::pin(async move { answered.await.map(Arc::new) })
        })
    }

    /// `pre_read`, for a hook that borrows what it sees of the read ([`ReadRef`]) rather
    /// than being handed a copy; its future may borrow it too. It answers a shared filter,
    /// so that one it keeps is handed over without a copy.
    pub fn pre_read_ref<F>(
        &mut self,
        event: ReadEvent,
        model: impl Into<ModelScope>,
        f: F,
    ) -> &mut Self
    where
        F: for<'a> Fn(ReadRef<'a>) -> RefFuture<'a, Result<Arc<Filter>, HookError>>
            + Send
            + Sync
            + 'static,
    {
        self.pre_read.push((event, model.into(), Arc::new(f)));
        self
    }

    register! {
        /// Runs `f` after `event` on `model` has committed, before the caller is answered.
        /// Writes with `_silence` run none. An error is logged; the write stands.
        post_write(WriteEvent) WrittenCtx => ()
    }

    register! {
        /// Runs `f` before a password login is checked; it may reject it.
        pre_login() LoginCtx => ()
    }

    register! {
        /// Runs `f` after a successful login; the fields it answers are added to the login
        /// result. An error is logged and the login still succeeds.
        post_login() LoggedInCtx => Document
    }

    /// Registers function `name` of `model`, served at `/call/<model>/<name>` and
    /// `/call/<model>/<id>/<name>` if the model lists it in its `callable` option. A second
    /// registration of the same name replaces the first.
    pub fn function<F, Fut>(&mut self, model: &str, name: &str, f: F) -> &mut Self
    where
        F: Fn(C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, HookError>> + Send + 'static,
    {
        self.functions.insert(
            (model.to_owned(), name.to_owned()),
            Arc::new(move |c| Box::pin(f(c))),
        );
        self
    }

    /// Whether function `name` of `model` is registered.
    pub fn has_function(&self, model: &str, name: &str) -> bool {
        self.functions
            .contains_key(&(model.to_owned(), name.to_owned()))
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.pre_write.is_empty()
            && self.pre_read.is_empty()
            && self.post_write.is_empty()
            && self.pre_login.is_empty()
            && self.post_login.is_empty()
            && self.functions.is_empty()
    }

    /// Update hooks answer to `Put` and `Update` alike.
    fn write_matches(registered: WriteEvent, event: WriteEvent) -> bool {
        registered == event || (event == WriteEvent::Put && registered == WriteEvent::Update)
    }

    fn pre_writes<'s>(
        &'s self,
        event: WriteEvent,
        slug: &'s str,
    ) -> impl Iterator<Item = &'s PreWrite> + 's {
        filed(&self.pre_write, slug, move |e| {
            Self::write_matches(e, event)
        })
    }

    fn post_writes<'s>(
        &'s self,
        event: WriteEvent,
        slug: &'s str,
    ) -> impl Iterator<Item = &'s PostWrite> + 's {
        filed(&self.post_write, slug, move |e| {
            Self::write_matches(e, event)
        })
    }

    fn pre_reads<'s>(
        &'s self,
        event: ReadEvent,
        slug: &'s str,
    ) -> impl Iterator<Item = &'s PreRead> + 's {
        filed(&self.pre_read, slug, move |e| e == event)
    }

    fn function_of(&self, model: &str, name: &str) -> Option<Function<C>> {
        self.functions
            .get(&(model.to_owned(), name.to_owned()))
            .cloned()
    }
}

/// The hooks of `list` filed under an event `wanted` accepts and a scope covering `slug`, in
/// registration order, borrowed: a caller runs them without collecting them first.
fn filed<'s, E: Copy, H>(
    list: &'s [(E, ModelScope, H)],
    slug: &'s str,
    wanted: impl Fn(E) -> bool + 's,
) -> impl Iterator<Item = &'s H> + 's {
    list.iter()
        .filter(move |(e, s, _)| wanted(*e) && s.covers(slug))
        .map(|(_, _, h)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Hooks = Registry<()>;

    fn names(hooks: &Hooks, event: WriteEvent, slug: &str) -> usize {
        hooks.pre_writes(event, slug).count()
    }

    #[test]
    fn functions_are_found_by_model_and_name() {
        let mut h = Hooks::new();
        assert!(!h.has_function("todo", "stats"));
        h.function("todo", "stats", |_| async move { Ok(Value::Null) });
        assert!(h.has_function("todo", "stats"));
        assert!(!h.has_function("todo", "other"));
        assert!(!h.has_function("other", "stats"));
    }

    #[test]
    fn hooks_are_found_by_event_and_model() {
        let mut h = Hooks::new();
        h.pre_write(WriteEvent::Post, "*", |c| async move { Ok(c.doc) });
        h.pre_write(WriteEvent::Post, "todo", |c| async move { Ok(c.doc) });
        h.pre_write(WriteEvent::Put, "todo", |c| async move { Ok(c.doc) });
        h.pre_write(WriteEvent::Update, "todo", |c| async move { Ok(c.doc) });
        h.pre_write(WriteEvent::Delete, String::from("note"), |c| async move {
            Ok(c.doc)
        });
        // (event, model, how many pre-hooks run)
        for (event, slug, n) in [
            (WriteEvent::Post, "todo", 2),
            (WriteEvent::Post, "note", 1),
            (WriteEvent::Put, "todo", 2),
            (WriteEvent::Put, "note", 0),
            (WriteEvent::Delete, "note", 1),
            (WriteEvent::Delete, "todo", 0),
        ] {
            assert_eq!(names(&h, event, slug), n, "{event:?} {slug}");
        }
        assert_eq!(ModelScope::from("*"), ModelScope::All);
        assert_eq!(ModelScope::from("todo"), ModelScope::Model("todo".into()));
        assert!(!h.is_empty() && Hooks::new().is_empty());
        h.function("todo", "stats", |_| async move { Ok(Value::Null) });
        assert!(h.function_of("todo", "stats").is_some());
        assert!(h.function_of("note", "stats").is_none());
        assert!(format!("{h:?}").contains("pre_write: 5"));
    }
}

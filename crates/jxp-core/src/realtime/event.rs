//! The event bodies the subscribers of a change receive: the change's own (`post`, `put`,
//! `del`) and, for subscriptions that opted in, `enter` and `leave`; each serialised once per
//! change, and only when a subscriber needs it. A model with `private = "owner"` fields has
//! each body twice: whole for admins and the owner, without those fields for everyone else.
//! The author's `user_email` is shown as the user model shows `email` (by default to the
//! author and admins only), so a body may also come with and without it.

use std::sync::Arc;

use jxp_model::{Model, view_for};
use jxp_store::{Change, ChangeOp};
use serde_json::{Map, Value};

use crate::identity::Identity;
use crate::view::is_owner_or_admin;

/// The wire name of a change's event: `post`, `put` or `del`.
pub fn event_name(op: ChangeOp) -> &'static str {
    match op {
        ChangeOp::Create => "post",
        ChangeOp::Update => "put",
        ChangeOp::Delete => "del",
    }
}

/// Who made a change, as events name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub email: String,
}

/// What an event tells its subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The change itself: `post`, `put` or `del` by its op.
    Change,
    /// An update brought the document into the subscription's view: it carries the document
    /// as a `put` would.
    Enter,
    /// An update took the document out of the subscription's view: the item is only its
    /// `_id`, since the subscriber may no longer read the rest.
    Leave,
}

/// Who may read an event's `user_email`: whoever may read the author's `email` in the user
/// model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmailRule {
    Everyone,
    AuthorAndAdmins,
    Nobody,
}

impl EmailRule {
    fn of(users: Option<&Model>) -> Self {
        match users.and_then(|m| m.field("email")) {
            Some(f) if f.is_private() => EmailRule::Nobody,
            Some(f) if f.is_owner_only() => EmailRule::AuthorAndAdmins,
            Some(_) => EmailRule::Everyone,
            None => EmailRule::Nobody,
        }
    }
}

/// What one subscriber sees of a change's events: the owner's fields (`whole`) and the
/// author's email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sight {
    whole: bool,
    email: bool,
}

/// `{"event", "modelname", "item", "user_id", "user_name", "user_email", "seq"}`, the one
/// shape of every event; the item is the public view of the document (no private fields; no
/// `private = "owner"` ones unless `owner_fields`), and `user_email` is null unless `email`.
fn body_of(
    model: &Model,
    change: &Change,
    actor: Option<&Actor>,
    kind: EventKind,
    owner_fields: bool,
    email: bool,
) -> Arc<str> {
    let (name, item) = match kind {
        EventKind::Change => (
            event_name(change.op),
            view_for(model, &change.doc, owner_fields),
        ),
        EventKind::Enter => ("enter", view_for(model, &change.doc, owner_fields)),
        EventKind::Leave => {
            let mut item = Map::with_capacity(1);
            item.insert("_id".into(), Value::String(change.id.clone()));
            ("leave", item)
        }
    };
    let mut data = Map::with_capacity(7);
    data.insert("event".into(), Value::String(name.into()));
    data.insert("modelname".into(), Value::String(change.model.clone()));
    data.insert("item".into(), Value::Object(item));
    data.insert(
        "user_id".into(),
        change.actor.clone().map_or(Value::Null, Value::String),
    );
    data.insert(
        "user_name".into(),
        actor.map_or(Value::Null, |a| Value::String(a.name.clone())),
    );
    data.insert(
        "user_email".into(),
        actor
            .filter(|_| email)
            .map_or(Value::Null, |a| Value::String(a.email.clone())),
    );
    data.insert("seq".into(), Value::from(change.seq));
    Value::Object(data).to_string().into()
}

/// One change's event bodies, each serialised the first time a subscriber needs it: by kind,
/// whole or reduced (for a model with `private = "owner"` fields), and with or without the
/// author's email.
pub(super) struct Bodies<'a> {
    pub(super) model: &'a Model,
    pub(super) change: &'a Change,
    actor: Option<&'a Actor>,
    /// Whether the model has fields only admins and the owner see (else one body per kind).
    owner_only: bool,
    /// The document's `_owner_id`, for those fields.
    owner: Option<&'a str>,
    email: EmailRule,
    made: [Option<Arc<str>>; 12],
}

impl<'a> Bodies<'a> {
    /// `users` is the user model, whose `email` field says who sees the author's address.
    pub(super) fn new(
        model: &'a Model,
        change: &'a Change,
        actor: Option<&'a Actor>,
        users: Option<&Model>,
    ) -> Self {
        Bodies {
            model,
            change,
            actor,
            owner_only: model.has_owner_only(),
            owner: change.doc.get("_owner_id").and_then(Value::as_str),
            email: EmailRule::of(users),
            made: Default::default(),
        }
    }

    /// What `who` (`None`: not authenticated) sees. On a model without owner-only fields the
    /// model is not asked per subscriber.
    pub(super) fn sight(&self, who: Option<&Identity>) -> Sight {
        let whole = !self.owner_only || who.is_some_and(|w| is_owner_or_admin(w, self.owner));
        let email = self.actor.is_some()
            && match self.email {
                EmailRule::Everyone => true,
                EmailRule::Nobody => false,
                EmailRule::AuthorAndAdmins => {
                    who.is_some_and(|w| is_owner_or_admin(w, self.change.actor.as_deref()))
                }
            };
        Sight { whole, email }
    }

    /// The body of `kind` as `sight` shows it.
    pub(super) fn get(&mut self, kind: EventKind, sight: Sight) -> Arc<str> {
        let at = kind as usize * 4 + usize::from(sight.whole) * 2 + usize::from(sight.email);
        let slot = &mut self.made[at];
        slot.get_or_insert_with(|| {
            body_of(
                self.model,
                self.change,
                self.actor,
                kind,
                sight.whole,
                sight.email,
            )
        })
        .clone()
    }
}

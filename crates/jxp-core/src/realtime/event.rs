//! The event bodies the subscribers of a change receive: the change's own (`post`, `put`,
//! `del`) and, for subscriptions that opted in, `enter` and `leave`; each serialised once per
//! change, and only when a subscriber needs it. A model with `private = "owner"` fields has
//! each body twice: whole for admins and the owner, without those fields for everyone else.

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

/// `{"event", "modelname", "item", "user_id", "user_name", "user_email", "seq"}`, the one
/// shape of every event; the item is the public view of the document (no private fields; no
/// `private = "owner"` ones unless `owner_fields`).
fn body_of(
    model: &Model,
    change: &Change,
    actor: Option<&Actor>,
    kind: EventKind,
    owner_fields: bool,
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
        actor.map_or(Value::Null, |a| Value::String(a.email.clone())),
    );
    data.insert("seq".into(), Value::from(change.seq));
    Value::Object(data).to_string().into()
}

/// One change's event bodies, each serialised the first time a subscriber needs it: by kind,
/// and, for a model with `private = "owner"` fields, whole or reduced.
pub(super) struct Bodies<'a> {
    pub(super) model: &'a Model,
    pub(super) change: &'a Change,
    actor: Option<&'a Actor>,
    /// Whether the model has fields only admins and the owner see (else one body per kind).
    owner_only: bool,
    /// The document's `_owner_id`, for those fields.
    owner: Option<&'a str>,
    made: [Option<Arc<str>>; 6],
}

impl<'a> Bodies<'a> {
    pub(super) fn new(model: &'a Model, change: &'a Change, actor: Option<&'a Actor>) -> Self {
        Bodies {
            model,
            change,
            actor,
            owner_only: model.has_owner_only(),
            owner: change.doc.get("_owner_id").and_then(Value::as_str),
            made: [None, None, None, None, None, None],
        }
    }

    /// Whether `who` gets the whole body: always on a model without owner-only fields, so
    /// the fan-out asks the model once per change, not once per subscriber.
    pub(super) fn whole_for(&self, who: &Identity) -> bool {
        !self.owner_only || is_owner_or_admin(who, self.owner)
    }

    /// The body of `kind` for a subscriber who sees the owner's fields (`owner_fields`: an
    /// admin or the owner) or not.
    pub(super) fn get(&mut self, kind: EventKind, owner_fields: bool) -> Arc<str> {
        let whole = owner_fields || !self.owner_only;
        let slot = &mut self.made[kind as usize * 2 + usize::from(whole)];
        slot.get_or_insert_with(|| body_of(self.model, self.change, self.actor, kind, whole))
            .clone()
    }
}

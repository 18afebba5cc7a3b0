//! The event bodies the subscribers of a change receive: the change's own (`post`, `put`,
//! `del`) and, for subscriptions that opted in, `enter` and `leave`; each serialised once per
//! change, and only when a subscriber needs it.

use std::sync::Arc;

use jxp_model::{Model, public_view};
use jxp_store::{Change, ChangeOp};
use serde_json::{Map, Value};

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
/// shape of every event; the item is the public view of the document (no private fields).
fn body_of(model: &Model, change: &Change, actor: Option<&Actor>, kind: EventKind) -> Arc<str> {
    let (name, item) = match kind {
        EventKind::Change => (event_name(change.op), public_view(model, &change.doc)),
        EventKind::Enter => ("enter", public_view(model, &change.doc)),
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

/// One change's event bodies, each serialised the first time a subscriber needs it.
pub(super) struct Bodies<'a> {
    pub(super) model: &'a Model,
    pub(super) change: &'a Change,
    actor: Option<&'a Actor>,
    made: [Option<Arc<str>>; 3],
}

impl<'a> Bodies<'a> {
    pub(super) fn new(model: &'a Model, change: &'a Change, actor: Option<&'a Actor>) -> Self {
        Bodies {
            model,
            change,
            actor,
            made: [None, None, None],
        }
    }

    pub(super) fn get(&mut self, kind: EventKind) -> Arc<str> {
        let slot = &mut self.made[kind as usize];
        slot.get_or_insert_with(|| body_of(self.model, self.change, self.actor, kind))
            .clone()
    }
}

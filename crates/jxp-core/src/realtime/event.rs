//! The event body every subscriber of a change receives, serialised once per change (twice
//! for a model with `private = "owner"` fields: whole for admins and the owner, without those
//! fields for everyone else).

use std::sync::Arc;

use jxp_model::{Model, view_for};
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

/// The bodies of one change's event: `reduced` exists only for a model with
/// `private = "owner"` fields, so other models pay nothing for it.
pub struct EventBodies {
    full: Arc<str>,
    reduced: Option<Arc<str>>,
}

impl EventBodies {
    pub fn new(model: &Model, change: &Change, actor: Option<&Actor>) -> Self {
        EventBodies {
            full: event_body(model, change, actor, true),
            reduced: model
                .has_owner_only()
                .then(|| event_body(model, change, actor, false)),
        }
    }

    /// The body a subscriber sees: whole when `owner_fields` (an admin or the owner).
    pub fn pick(&self, owner_fields: bool) -> &Arc<str> {
        match &self.reduced {
            Some(reduced) if !owner_fields => reduced,
            _ => &self.full,
        }
    }
}

/// `{"event", "modelname", "item", "user_id", "user_name", "user_email", "seq"}`; the item is
/// the public view of the document (no private fields; no `private = "owner"` ones unless
/// `owner_fields`).
pub fn event_body(
    model: &Model,
    change: &Change,
    actor: Option<&Actor>,
    owner_fields: bool,
) -> Arc<str> {
    let mut data = Map::with_capacity(7);
    data.insert("event".into(), Value::String(event_name(change.op).into()));
    data.insert("modelname".into(), Value::String(change.model.clone()));
    data.insert(
        "item".into(),
        Value::Object(view_for(model, &change.doc, owner_fields)),
    );
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

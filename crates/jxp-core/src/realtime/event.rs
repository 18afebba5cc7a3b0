//! The event body every subscriber of a change receives, serialised once per change.

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

/// `{"event", "modelname", "item", "user_id", "user_name", "user_email", "seq"}`; the item is
/// the public view of the document (no private fields).
pub fn event_body(model: &Model, change: &Change, actor: Option<&Actor>) -> Arc<str> {
    let mut data = Map::with_capacity(7);
    data.insert("event".into(), Value::String(event_name(change.op).into()));
    data.insert("modelname".into(), Value::String(change.model.clone()));
    data.insert(
        "item".into(),
        Value::Object(public_view(model, &change.doc)),
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

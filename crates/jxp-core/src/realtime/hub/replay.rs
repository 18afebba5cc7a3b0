//! `since` replay and recovery, the hub's two reads of the change log. A replaying
//! subscription is registered first with a buffer; the retained changes are loaded off the
//! hub task, sent, then the buffer is drained, each change through the same delivery check as
//! a live one (whose `seq` test skips what was already sent). A hub that fell behind the
//! change stream re-reads what it missed, model by model, in order.

use std::collections::HashMap;
use std::sync::Arc;

use jxp_model::Model;
use jxp_store::{Change, Store};
use serde_json::Value;

use super::admit::{Verdict, admits};
use super::{Actor, SubscribeRequest, actor_of, event_body, now_ms};
use super::{ConnId, HubCmd, Outbound, Responder, State, SubscribeError, SubscribeOk};

/// Changes read per query when replaying or recovering.
const PAGE: usize = 1000;

/// The retained changes a replay sends, with the users who made them.
pub(crate) struct Replay {
    changes: Vec<Arc<Change>>,
    actors: HashMap<String, Actor>,
}

impl State {
    /// Loads the retained changes a new subscription asked for, off the hub task; the reply
    /// waits until they are loaded (`replayed`).
    pub(super) fn start_replay(
        &mut self,
        id: ConnId,
        key: String,
        req: &SubscribeRequest,
        respond: Responder,
    ) {
        self.pending.insert((id, key.clone()), respond);
        let store = self.store.clone();
        let cmds = self.cmds.clone();
        let since = req.since.unwrap_or_default();
        let model = req.model.clone();
        tokio::spawn(async move {
            let result = load_replay(store.as_ref(), &model, since).await;
            let _ = cmds.send(HubCmd::Replayed { id, key, result });
        });
    }

    /// Answers a replaying subscription, sends what was loaded, then what waited in its
    /// buffer meanwhile.
    pub(super) fn replayed(
        &mut self,
        id: ConnId,
        key: String,
        result: Result<Replay, SubscribeError>,
    ) {
        let Some(respond) = self.pending.remove(&(id, key.clone())) else {
            return;
        };
        let model_slug = key.split('\0').next().unwrap_or_default().to_owned();
        let Replay { changes, actors } = match result {
            Ok(replay) => replay,
            Err(e) => {
                self.forget_sub(id, &key);
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.subs.retain(|k| *k != key);
                }
                self.push(id, Outbound::Reply(respond(Err(e))));
                return;
            }
        };
        self.push(id, Outbound::Reply(respond(Ok(SubscribeOk::Subscribed))));
        let Some(model) = self.schema.get(&model_slug).cloned() else {
            return;
        };
        let buffered = self
            .subs
            .get_mut(&model_slug)
            .and_then(|subs| subs.find_mut(id, &key))
            .and_then(|s| s.buffer.take())
            .unwrap_or_default();
        for change in changes.iter().chain(buffered.iter()) {
            if change.silent {
                continue;
            }
            let actor = change
                .actor
                .as_deref()
                .and_then(|a| self.actors.get(a).or_else(|| actors.get(a)));
            let body = event_body(&model, change, actor);
            self.deliver_one(&model, change, &body, id, &key);
        }
    }

    /// Delivers one change to one subscription of one connection, if it passes the check.
    fn deliver_one(
        &mut self,
        model: &Model,
        change: &Change,
        body: &Arc<str>,
        id: ConnId,
        key: &str,
    ) {
        let owner = change.doc.get("_owner_id").and_then(Value::as_str);
        let Some(sub) = self
            .subs
            .get_mut(&change.model)
            .and_then(|subs| subs.find_mut(id, key))
        else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match admits(sub, conn, model, change, owner, now_ms()) {
            Verdict::Deliver => {
                conn.set_last_seq(&change.model, change.seq);
                self.push(id, Outbound::Event(body.clone()));
            }
            Verdict::Expired => self.deauth(id, "token expired"),
            Verdict::Skip => {}
        }
    }

    /// After falling behind the stream: reads what was missed from the change log, in order.
    pub(super) async fn recover(&mut self) {
        let slugs: Vec<String> = self.schema.models.keys().cloned().collect();
        for slug in slugs {
            loop {
                let after = self.last_seen.get(&slug).copied().unwrap_or_default();
                let missed = match self.store.changes_since(&slug, after, PAGE).await {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::error!(model = %slug, error = %e, "cannot read missed changes");
                        break;
                    }
                };
                let done = missed.len() < PAGE;
                for change in &missed {
                    self.on_change(change, true).await;
                }
                if done {
                    break;
                }
            }
        }
    }
}

/// The retained changes after `since`, or `ResyncRequired` when some were already trimmed or
/// `since` is past the latest `seq` (a subscription after it would wait for seqs the model
/// already gave out again, delivering nothing).
async fn load_replay(store: &dyn Store, model: &str, since: u64) -> Result<Replay, SubscribeError> {
    let internal = |_| SubscribeError::Internal;
    let latest = store.last_seq(model).await.map_err(internal)?;
    if since > latest {
        let oldest = store
            .changes_since(model, 0, 1)
            .await
            .map_err(internal)?
            .first()
            .map_or(latest + 1, |c| c.seq);
        return Err(SubscribeError::ResyncRequired { oldest, latest });
    }
    let mut out: Vec<Arc<Change>> = Vec::new();
    let mut after = since;
    loop {
        let page = store
            .changes_since(model, after, PAGE)
            .await
            .map_err(internal)?;
        if out.is_empty() {
            match page.first().map(|c| c.seq) {
                Some(seq) if seq > since + 1 => {
                    return Err(SubscribeError::ResyncRequired {
                        oldest: seq,
                        latest: latest.max(seq),
                    });
                }
                None if latest > since => {
                    return Err(SubscribeError::ResyncRequired {
                        oldest: latest + 1,
                        latest,
                    });
                }
                _ => {}
            }
        }
        let done = page.len() < PAGE;
        after = page.last().map_or(after, |c| c.seq);
        out.extend(page);
        if done {
            let actors = load_actors(store, &out).await;
            return Ok(Replay {
                changes: out,
                actors,
            });
        }
    }
}

/// The users who made `changes`, as events name them: loaded here, off the hub task, so a
/// replayed event names its author as the live one did.
async fn load_actors(store: &dyn Store, changes: &[Arc<Change>]) -> HashMap<String, Actor> {
    let mut actors = HashMap::new();
    for id in changes.iter().filter_map(|c| c.actor.as_deref()) {
        if actors.contains_key(id) {
            continue;
        }
        if let Ok(Some(doc)) = store.get("user", id).await {
            actors.insert(id.to_owned(), actor_of(&doc));
        }
    }
    actors
}

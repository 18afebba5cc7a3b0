//! The hub: shards, one task each (one per core by default), each owning its share of the
//! connections and their subscriptions. Every shard reads the store's whole change stream in
//! commit order and, per change, serialises the event once, then for each of its
//! subscriptions of that model runs the one delivery check (`admit.rs`: the `seq`, the
//! subscriber's read right on this document, the filters) and pushes the event to the
//! subscriber's outlet. The shards run in parallel, so one change reaches ten thousand
//! sockets from every core; a connection's events all come from its one shard, in commit
//! order. A shard never awaits a client: a full outlet closes that connection. Identity
//! effects are in `effects.rs`, `since` replay and recovery from the change log in
//! `replay.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jxp_model::Schema;
use jxp_query::{Filter, parse_mongo_filter};
use jxp_store::{Change, Store};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

mod admit;
mod conn;
mod effects;
mod replay;

pub(crate) use replay::Page;

use super::event::{Actor, Bodies, EventKind};
use super::handle::{ConnId, Hub, HubCmd, RealtimeSettings};
use super::outlet::{
    CloseReason, Outbound, PushError, Responder, SubscribeError, SubscribeOk, SubscribeRequest,
};
use super::subs::{ModelSubs, Sub, key_model};
use crate::app::Generations;
use crate::error::CoreError;
use crate::perms::{Access, Right, access};
use crate::view::check_filter;
use admit::{Verdict, admits};
use conn::{AuthState, ConnState};

struct State {
    schema: Arc<Schema>,
    /// Moved on for each change of a model this shard has subscriptions to, before its events
    /// go out, so that a client that has an event and asks again is not answered from a cache
    /// older than it.
    generations: Arc<Generations>,
    store: Arc<dyn Store>,
    settings: RealtimeSettings,
    /// Its own command channel, for replays loaded off the task to report back. Weak, so the
    /// shard ends (and lets go of the store) once every `Hub` handle and connection is gone.
    cmds: mpsc::WeakUnboundedSender<HubCmd>,
    conns: HashMap<ConnId, ConnState>,
    subs: HashMap<String, ModelSubs>,
    /// `since` replays under way, by connection and subscription key.
    replays: HashMap<(ConnId, String), replay::Replaying>,
    next_replay: u64,
    last_seen: HashMap<String, u64>,
    actors: HashMap<String, Actor>,
    /// The server is shutting down: connections are closed as they come.
    closing: bool,
}

/// Starts the hub's shards; each ends when every `Hub` handle and connection is gone.
pub(crate) fn spawn_hub(
    schema: Arc<Schema>,
    store: Arc<dyn Store>,
    settings: RealtimeSettings,
    generations: Arc<Generations>,
) -> Hub {
    let shards = (0..settings.shards.max(1))
        .map(|_| {
            let (tx, rx) = mpsc::unbounded_channel();
            // Subscribed before the task starts, so no change committed after `App::new` is
            // missed.
            let changes = store.subscribe();
            let state = State {
                schema: schema.clone(),
                generations: generations.clone(),
                store: store.clone(),
                settings: settings.clone(),
                cmds: tx.downgrade(),
                conns: HashMap::new(),
                subs: HashMap::new(),
                replays: HashMap::new(),
                next_replay: 0,
                last_seen: HashMap::new(),
                actors: HashMap::new(),
                closing: false,
            };
            tokio::spawn(run(state, rx, changes));
            tx
        })
        .collect();
    Hub::new(shards, settings)
}

async fn run(
    mut state: State,
    mut cmds: mpsc::UnboundedReceiver<HubCmd>,
    mut changes: tokio::sync::broadcast::Receiver<Arc<Change>>,
) {
    for slug in state.schema.models.keys() {
        if let Ok(seq) = state.store.last_seq(slug).await {
            state.last_seen.insert(slug.clone(), seq);
        }
    }
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(cmd) => state.command(cmd),
                None => break,
            },
            change = changes.recv() => match change {
                // With more changes waiting, the connections' own tasks write this one, in
                // parallel and batched; otherwise the hub writes it at once.
                Ok(change) => {
                    // Only where an event may go out: a shard with no subscription to the
                    // model leaves the shared counters alone.
                    if state.subs.contains_key(&change.model) {
                        state.generations.bump(&change.model);
                    }
                    state.on_change(&change, !changes.is_empty()).await;
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "realtime hub fell behind the change stream; recovering from the change log");
                    for model in state.schema.models.keys() {
                        state.generations.bump(model);
                    }
                    state.recover().await;
                }
                Err(RecvError::Closed) => break,
            },
            _ = sweep.tick() => state.sweep_expired(),
        }
    }
    tracing::debug!("realtime hub stopped");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl State {
    fn command(&mut self, cmd: HubCmd) {
        match cmd {
            HubCmd::Connect { id, outlet } => {
                if self.closing {
                    outlet.close(CloseReason::Shutdown);
                }
                self.conns.insert(
                    id,
                    ConnState {
                        outlet,
                        auth: None,
                        subs: Vec::new(),
                        last_seq: Vec::new(),
                    },
                );
            }
            HubCmd::Disconnect { id } => self.drop_conn(id),
            HubCmd::Auth {
                id,
                identity,
                trace,
                limits,
                reply,
            } => {
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.auth = Some(AuthState {
                        identity,
                        trace,
                        limits,
                    });
                    self.recheck_subs(id);
                }
                let _ = reply.send(());
            }
            HubCmd::Subscribe { id, req, respond } => self.subscribe(id, req, respond),
            HubCmd::Unsubscribe { id, req, reply } => {
                let result = self.unsubscribe(id, &req);
                let _ = reply.send(result);
            }
            HubCmd::ReplayPage {
                id,
                key,
                token,
                page,
            } => self.replay_page(id, key, token, page),
            HubCmd::ReplayDrained { id, key, token } => self.replay_drained(id, key, token),
            HubCmd::PingAll => {
                let ids: Vec<ConnId> = self.conns.keys().copied().collect();
                for id in ids {
                    self.push(id, Outbound::Ping);
                }
            }
            HubCmd::CloseAll => {
                self.closing = true;
                for conn in self.conns.values() {
                    conn.outlet.close(CloseReason::Shutdown);
                }
            }
        }
    }

    /// Forgets a connection and its subscriptions: as cheap with twenty thousand
    /// connections as with ten, so a wave of disconnects does not hold up events.
    fn drop_conn(&mut self, id: ConnId) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        for key in conn.subs {
            self.forget_sub(id, &key);
        }
    }

    /// Removes one subscription from the model's index (not from the connection's list), and
    /// its replay if one is under way; answers whether it was there.
    fn forget_sub(&mut self, id: ConnId, key: &str) -> bool {
        self.replays.remove(&(id, key.to_owned()));
        let model = key_model(key);
        let Some(subs) = self.subs.get_mut(model) else {
            return false;
        };
        let removed = subs.remove(id, key);
        if removed {
            metrics::gauge!("jxp_ws_subscriptions").decrement(1.0);
        }
        if subs.is_empty() {
            self.subs.remove(model);
        }
        removed
    }

    /// Pushes a frame; a full outlet closes the connection as too slow.
    fn push(&mut self, id: ConnId, item: Outbound) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        match conn.outlet.push(item) {
            Ok(()) => {}
            Err(PushError::Full) => self.close_slow(id),
            Err(PushError::Closed) => self.drop_conn(id),
        }
    }

    /// Closes a connection whose outlet is full: it reads too slowly, and nobody waits for it.
    fn close_slow(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get(&id) {
            conn.outlet.close(CloseReason::TooSlow);
            tracing::info!(
                conn = id,
                "closing a realtime connection that reads too slowly"
            );
        }
        self.drop_conn(id);
    }

    fn deauth(&mut self, id: ConnId, reason: &str) {
        if let Some(conn) = self.conns.get_mut(&id)
            && conn.auth.take().is_some()
        {
            self.push(id, Outbound::Deauth(reason.into()));
        }
    }

    /// After a new identity: subscriptions it may not read end.
    fn recheck_subs(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let Some(auth) = &conn.auth else {
            return;
        };
        let denied: Vec<String> =
            conn.subs
                .iter()
                .filter(|key| {
                    let slug = key_model(key);
                    auth.hooks_refuse(slug)
                        || self.schema.get(slug).is_none_or(|m| {
                            access(m, &auth.identity, Right::Read) == Access::Denied
                        })
                })
                .cloned()
                .collect();
        if denied.is_empty() {
            return;
        }
        for key in &denied {
            self.forget_sub(id, key);
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.subs.retain(|k| !denied.contains(k));
        }
    }

    fn subscribe(&mut self, id: ConnId, req: SubscribeRequest, respond: Responder) {
        let result = self.try_subscribe(id, &req);
        match result {
            Ok(Some(key)) => self.start_replay(id, key, &req, respond),
            Ok(None) => {
                let frame = respond(Ok(SubscribeOk::Subscribed));
                self.push(id, Outbound::Reply(frame));
            }
            Err(SubscribeOutcome::Already) => {
                let frame = respond(Ok(SubscribeOk::AlreadySubscribed));
                self.push(id, Outbound::Reply(frame));
            }
            Err(SubscribeOutcome::Failed(e)) => {
                let frame = respond(Err(e));
                self.push(id, Outbound::Reply(frame));
            }
        }
    }

    /// Registers a subscription. `Ok(Some(key))` when a replay must load first.
    fn try_subscribe(
        &mut self,
        id: ConnId,
        req: &SubscribeRequest,
    ) -> Result<Option<String>, SubscribeOutcome> {
        let fail = |e: SubscribeError| Err(SubscribeOutcome::Failed(e));
        let Some(conn) = self.conns.get(&id) else {
            return fail(SubscribeError::Internal);
        };
        let Some(auth) = &conn.auth else {
            return fail(SubscribeError::NotAuthenticated);
        };
        let Some(model) = self.schema.get(&req.model) else {
            return fail(SubscribeError::UnknownModel(req.model.clone()));
        };
        if access(model, &auth.identity, Right::Read) == Access::Denied
            || auth.hooks_refuse(&model.slug)
        {
            return fail(SubscribeError::Forbidden);
        }
        if let Some(doc_id) = &req.id
            && !jxp_model::is_object_id(doc_id)
        {
            return fail(SubscribeError::BadId(doc_id.clone()));
        }
        let filter = match &req.filter {
            None => Filter::All,
            Some(f) => match parse_mongo_filter(model, f) {
                Ok(f) => f,
                Err(e) => return fail(SubscribeError::BadFilter(e.to_string())),
            },
        };
        // Which events arrive would tell a field the subscriber may not see.
        if let Err(CoreError::Forbidden(why)) = check_filter(model, &auth.identity, &filter) {
            return fail(SubscribeError::BadFilter(why));
        }
        let key = sub_key(req);
        let doc_id = req.id.as_ref().map(|i| i.to_ascii_lowercase());
        let subs = self.subs.entry(req.model.clone()).or_default();
        if subs.contains(id, &key) {
            return Err(SubscribeOutcome::Already);
        }
        if conn.subs.len() >= self.settings.max_subscriptions {
            return fail(SubscribeError::TooMany(self.settings.max_subscriptions));
        }
        let replay = req.since.is_some();
        subs.insert(Sub {
            conn: id,
            key: key.clone(),
            id: doc_id,
            filter,
            enter_leave: req.enter_leave,
            after: req
                .since
                .unwrap_or_else(|| self.last_seen.get(&req.model).copied().unwrap_or_default()),
            buffer: replay.then(Vec::new),
        });
        metrics::gauge!("jxp_ws_subscriptions").increment(1.0);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.subs.push(key.clone());
        }
        Ok(replay.then_some(key))
    }

    fn unsubscribe(&mut self, id: ConnId, req: &SubscribeRequest) -> Result<(), String> {
        let key = sub_key(req);
        if !self.forget_sub(id, &key) {
            return Err("Not subscribed".into());
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.subs.retain(|k| *k != key);
        }
        Ok(())
    }

    /// Delivers one change; `behind` when more are waiting, so the connections' tasks write.
    async fn on_change(&mut self, change: &Arc<Change>, behind: bool) {
        let seen = self.last_seen.entry(change.model.clone()).or_default();
        if change.seq <= *seen {
            return;
        }
        *seen = change.seq;
        self.identity_effects(change);
        if change.silent {
            return;
        }
        let Some(model) = self.schema.get(&change.model).cloned() else {
            return;
        };
        let wanted = self
            .subs
            .get(&change.model)
            .is_some_and(|subs| subs.wants(&change.id));
        if !wanted {
            return;
        }
        let actor = self.actor(change.actor.as_deref()).await;
        let users = self.schema.get("user").cloned();
        let mut bodies = Bodies::new(&model, change, actor.as_ref(), users.as_deref());
        let now = now_ms();
        let owner = change.doc.get("_owner_id").and_then(Value::as_str);
        let (mut expired, mut overflowed, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        let (mut entering, mut leaving) = (Vec::new(), Vec::new());
        let mut delivered = 0u64;
        let waiting_max = replay::buffer_limit(self.settings.send_queue);
        let Some(subs) = self.subs.get_mut(&change.model) else {
            return;
        };
        // One pass over the model's subscriptions; a connection gets the event once however
        // many of its subscriptions match.
        for sub in subs.for_doc_mut(&change.id) {
            if let Some(buffer) = &mut sub.buffer {
                // A replay is under way: the change waits for it, within a bound.
                buffer.push(change.clone());
                if buffer.len() > waiting_max {
                    overflowed.push(sub.conn);
                }
                continue;
            }
            let Some(conn) = self.conns.get_mut(&sub.conn) else {
                continue;
            };
            match admits(sub, conn, &model, change, owner, now) {
                Verdict::Deliver => {}
                Verdict::Enter => {
                    entering.push(sub.conn);
                    continue;
                }
                Verdict::Leave => {
                    leaving.push(sub.conn);
                    continue;
                }
                Verdict::Skip => continue,
                Verdict::Expired => {
                    expired.push(sub.conn);
                    continue;
                }
            }
            conn.set_last_seq(&change.model, change.seq);
            let sight = bodies.sight(conn.auth.as_ref().map(|a| &a.identity));
            let item = Outbound::Event(bodies.get(EventKind::Change, sight));
            match send(conn, item, behind) {
                Ok(()) => delivered += 1,
                Err(e) => failed(e, sub.conn, &mut overflowed, &mut gone),
            }
        }
        // Enter and leave wait for the pass to end: a connection with several subscriptions
        // gets the document if any of them still shows it, an `enter` if one shows it now
        // and none did, and a `leave` only if none shows it now.
        for (conns, kind) in [(entering, EventKind::Enter), (leaving, EventKind::Leave)] {
            for id in conns {
                let Some(conn) = self.conns.get_mut(&id) else {
                    continue;
                };
                if change.seq <= conn.last_seq(&change.model) {
                    continue;
                }
                conn.set_last_seq(&change.model, change.seq);
                let sight = bodies.sight(conn.auth.as_ref().map(|a| &a.identity));
                match send(conn, Outbound::Event(bodies.get(kind, sight)), behind) {
                    Ok(()) => delivered += 1,
                    Err(e) => failed(e, id, &mut overflowed, &mut gone),
                }
            }
        }
        // Once per change, not per subscriber: the count is what costs, not the delivery.
        metrics::counter!("jxp_ws_events_delivered_total").increment(delivered);
        for id in expired {
            self.deauth(id, "token expired");
        }
        for id in overflowed {
            self.close_slow(id);
        }
        for id in gone {
            self.drop_conn(id);
        }
    }

    /// The name and email of the user who made a change, cached.
    async fn actor(&mut self, id: Option<&str>) -> Option<Actor> {
        let id = id?;
        if let Some(a) = self.actors.get(id) {
            return Some(a.clone());
        }
        let doc = self.store.get("user", id).await.ok().flatten()?;
        let actor = actor_of(&doc);
        self.actors.insert(id.to_owned(), actor.clone());
        Some(actor)
    }
}

enum SubscribeOutcome {
    Already,
    Failed(SubscribeError),
}

/// Hands a connection an event: written by its own task when the hub is `behind`, else now.
fn send(conn: &ConnState, item: Outbound, behind: bool) -> Result<(), PushError> {
    if behind {
        conn.outlet.push_later(item)
    } else {
        conn.outlet.push(item)
    }
}

/// Notes a connection whose outlet refused an event, to be closed or dropped after the pass.
fn failed(e: PushError, id: ConnId, overflowed: &mut Vec<ConnId>, gone: &mut Vec<ConnId>) {
    match e {
        PushError::Full => overflowed.push(id),
        PushError::Closed => gone.push(id),
    }
}

fn sub_key(req: &SubscribeRequest) -> String {
    let id = req.id.as_deref().unwrap_or_default().to_ascii_lowercase();
    let filter = req
        .filter
        .as_ref()
        .map(Value::to_string)
        .unwrap_or_default();
    format!("{}\0{id}\0{filter}", req.model)
}

fn actor_of(doc: &jxp_model::Document) -> Actor {
    let text = |k: &str| {
        doc.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Actor {
        name: text("name"),
        email: text("email"),
    }
}

//! `since` replay and recovery, the hub's two reads of the change log.
//!
//! A replaying subscription is registered first with a buffer, where live changes wait. The
//! change log is read off the hub task a page at a time, with the users who made the changes,
//! and sent at the client's pace: a batch of at most half the connection's queue, then
//! nothing more until the outlet says its queue has drained to a quarter
//! ([`Outlet::when_drained`](crate::realtime::Outlet::when_drained)); the hub never waits.
//! After the last page the buffer is sent the same way, until it is found empty and the
//! subscription goes live. Every change passes the same delivery check as a live one, whose
//! `seq` test skips what was already sent: no gap and no duplicate at the seam. Memory is
//! bounded: one page, and a buffer that closes the connection (1013, as a full queue does)
//! when it grows past [`buffer_limit`]. A hub that fell behind the change stream re-reads
//! what it missed, model by model, in order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use jxp_store::{Change, Store};
use serde_json::Value;

use super::admit::{Verdict, admits};
use super::{Actor, Bodies, EventKind, SubscribeRequest, actor_of, now_ms};
use super::{ConnId, HubCmd, Outbound, Responder, State, SubscribeError, SubscribeOk};

/// Changes read per query when replaying or recovering.
const PAGE: usize = 1000;

/// How long a replay waits before reading a page again after the store failed to answer.
const RETRY: Duration = Duration::from_secs(1);

/// Live changes that may wait behind a replay, for a connection queue of `send_queue`
/// frames: more means the client does not keep up with the writes, and it is closed.
pub(super) fn buffer_limit(send_queue: usize) -> usize {
    send_queue.saturating_mul(16).max(PAGE)
}

/// One page of the change log, with the users who made its changes.
pub(crate) struct Page {
    changes: Vec<Arc<Change>>,
    actors: HashMap<String, Actor>,
    /// The log held nothing more when it was read.
    last: bool,
}

/// A replay under way: what was read and not yet sent, and where the log reading stands.
pub(super) struct Replaying {
    /// Tells this replay's page and drain notices from a former one of the same key.
    token: u64,
    model: String,
    /// The reply to the subscribe, until the first page is read (it may need a resync).
    respond: Option<Responder>,
    /// Read and not yet sent, oldest first.
    queue: VecDeque<Arc<Change>>,
    actors: HashMap<String, Actor>,
    /// The last `seq` read from the change log.
    read_to: u64,
    /// The log held nothing after `read_to`: the buffer comes next.
    log_done: bool,
}

impl State {
    /// Starts a replay for a new subscription: its first page is read off the hub task, and
    /// the reply waits for it (`replay_page`).
    pub(super) fn start_replay(
        &mut self,
        id: ConnId,
        key: String,
        req: &SubscribeRequest,
        respond: Responder,
    ) {
        let token = self.next_replay;
        self.next_replay += 1;
        let since = req.since.unwrap_or_default();
        self.replays.insert(
            (id, key.clone()),
            Replaying {
                token,
                model: req.model.clone(),
                respond: Some(respond),
                queue: VecDeque::new(),
                actors: HashMap::new(),
                read_to: since,
                log_done: false,
            },
        );
        self.read_page(id, key, token, (req.model.clone(), since), Duration::ZERO);
    }

    /// Reads the page of `model` after `seq` off the hub task, after `delay`; the hub gets
    /// it as `ReplayPage`.
    fn read_page(
        &self,
        id: ConnId,
        key: String,
        token: u64,
        (model, after): (String, u64),
        delay: Duration,
    ) {
        let store = self.store.clone();
        let cmds = self.cmds.clone();
        let first = self
            .replays
            .get(&(id, key.clone()))
            .is_some_and(|r| r.respond.is_some());
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let page = load_page(store.as_ref(), &model, after, first).await;
            if let Some(cmds) = cmds.upgrade() {
                let _ = cmds.send(HubCmd::ReplayPage {
                    id,
                    key,
                    token,
                    page,
                });
            }
        });
    }

    /// A page arrived: the first answers the subscribe; each is then sent at the client's
    /// pace.
    pub(super) fn replay_page(
        &mut self,
        id: ConnId,
        key: String,
        token: u64,
        page: Result<Page, SubscribeError>,
    ) {
        let k = (id, key);
        let Some(replay) = self.replays.get_mut(&k).filter(|r| r.token == token) else {
            return;
        };
        let respond = replay.respond.take();
        let page = match (page, respond) {
            (Ok(page), respond) => {
                replay.read_to = page.changes.last().map_or(replay.read_to, |c| c.seq);
                replay.log_done = page.last;
                replay.queue.extend(page.changes);
                replay.actors = page.actors;
                respond
            }
            (Err(e), Some(respond)) => {
                self.forget_sub(id, &k.1);
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.subs.retain(|s| *s != k.1);
                }
                self.push(id, Outbound::Reply(respond(Err(e))));
                return;
            }
            (Err(SubscribeError::ResyncRequired { .. }), None) => {
                // Trimmed while the client read what came before: it reconnects, and its
                // `since` then answers resync required.
                tracing::info!(conn = id, "a replay fell behind the change log's retention");
                self.close_slow(id);
                return;
            }
            (Err(_), None) => {
                tracing::error!(
                    conn = id,
                    "cannot read the change log for a replay; retrying"
                );
                let at = (replay.model.clone(), replay.read_to);
                let (key, token) = (k.1, replay.token);
                self.read_page(id, key, token, at, RETRY);
                return;
            }
        };
        if let Some(respond) = page {
            self.push(id, Outbound::Reply(respond(Ok(SubscribeOk::Subscribed))));
        }
        self.pump(id, &k.1);
    }

    /// The connection's queue drained: the replay goes on.
    pub(super) fn replay_drained(&mut self, id: ConnId, key: String, token: u64) {
        if self
            .replays
            .get(&(id, key.clone()))
            .is_some_and(|r| r.token == token)
        {
            self.pump(id, &key);
        }
    }

    /// Sends what the replay holds, a batch at most, then asks for more: the next page, or a
    /// word from the outlet when its queue has drained. With the log read and the buffer
    /// empty, the subscription goes live and the replay ends.
    fn pump(&mut self, id: ConnId, key: &str) {
        let Some(mut replay) = self.replays.remove(&(id, key.to_owned())) else {
            return;
        };
        let Some(model) = self.schema.get(&replay.model).cloned() else {
            return;
        };
        let users = self.schema.get("user").cloned();
        // Looked up once per pass, not once per event.
        let delivered = metrics::counter!("jxp_ws_events_delivered_total");
        let batch = (self.settings.send_queue / 2).max(1);
        let mut sent = 0;
        loop {
            if !self.conns.contains_key(&id) {
                return;
            }
            if sent >= batch {
                self.when_drained(id, key, replay.token, batch / 2);
                break;
            }
            let Some(change) = replay.queue.pop_front() else {
                if !replay.log_done {
                    let at = (replay.model.clone(), replay.read_to);
                    self.read_page(id, key.to_owned(), replay.token, at, Duration::ZERO);
                    break;
                }
                // The log is read: the live changes that waited meanwhile go the same way.
                let Some(sub) = self
                    .subs
                    .get_mut(&replay.model)
                    .and_then(|subs| subs.find_mut(id, key))
                else {
                    return;
                };
                match sub.buffer.take() {
                    Some(waited) if !waited.is_empty() => {
                        sub.buffer = Some(Vec::new());
                        replay.queue.extend(waited);
                        continue;
                    }
                    // Nothing waits: live from here.
                    _ => return,
                }
            };
            if change.silent {
                continue;
            }
            let actor = change
                .actor
                .as_deref()
                .and_then(|a| self.actors.get(a).or_else(|| replay.actors.get(a)))
                .cloned();
            let bodies = Bodies::new(&model, &change, actor.as_ref(), users.as_deref());
            if self.deliver_one(bodies, id, key) {
                sent += 1;
                delivered.increment(1);
            }
        }
        let alive = self.conns.contains_key(&id)
            && self
                .subs
                .get(&replay.model)
                .is_some_and(|subs| subs.contains(id, key));
        if alive {
            self.replays.insert((id, key.to_owned()), replay);
        }
    }

    /// Asks the connection's outlet to say when at most `frames` wait.
    fn when_drained(&self, id: ConnId, key: &str, token: u64, frames: usize) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let cmds = self.cmds.clone();
        let key = key.to_owned();
        conn.outlet.when_drained(
            frames,
            Box::new(move || {
                if let Some(cmds) = cmds.upgrade() {
                    let _ = cmds.send(HubCmd::ReplayDrained { id, key, token });
                }
            }),
        );
    }

    /// Delivers one change to one subscription of one connection, if it passes the check;
    /// answers whether it was pushed.
    fn deliver_one(&mut self, mut bodies: Bodies<'_>, id: ConnId, key: &str) -> bool {
        let (model, change) = (bodies.model, bodies.change);
        let owner = change.doc.get("_owner_id").and_then(Value::as_str);
        let Some(sub) = self
            .subs
            .get_mut(&change.model)
            .and_then(|subs| subs.find_mut(id, key))
        else {
            return false;
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return false;
        };
        let kind = match admits(sub, conn, model, change, owner, now_ms()) {
            Verdict::Deliver => EventKind::Change,
            Verdict::Enter => EventKind::Enter,
            Verdict::Leave => EventKind::Leave,
            Verdict::Expired => {
                self.deauth(id, "token expired");
                return false;
            }
            Verdict::Skip => return false,
        };
        conn.set_last_seq(&change.model, change.seq);
        let sight = bodies.sight(conn.auth.as_ref().map(|a| &a.identity));
        self.push(id, Outbound::Event(bodies.get(kind, sight)));
        true
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

/// The page of the change log after `after`. The first page of a replay (`first`) checks
/// that the replay can start there: `ResyncRequired` when changes after `after` were
/// trimmed, or when `after` is past the latest `seq` (a subscription after it would wait for
/// seqs the model already gave out again, delivering nothing). A later page answers
/// `ResyncRequired` when the retention trimmed what comes next.
async fn load_page(
    store: &dyn Store,
    model: &str,
    after: u64,
    first: bool,
) -> Result<Page, SubscribeError> {
    let internal = |_| SubscribeError::Internal;
    let latest = store.last_seq(model).await.map_err(internal)?;
    if first && after > latest {
        let oldest = store
            .changes_since(model, 0, 1)
            .await
            .map_err(internal)?
            .first()
            .map_or(latest + 1, |c| c.seq);
        return Err(SubscribeError::ResyncRequired { oldest, latest });
    }
    let changes = store
        .changes_since(model, after, PAGE)
        .await
        .map_err(internal)?;
    match changes.first().map(|c| c.seq) {
        Some(seq) if seq > after + 1 => {
            return Err(SubscribeError::ResyncRequired {
                oldest: seq,
                latest: latest.max(seq),
            });
        }
        None if latest > after => {
            return Err(SubscribeError::ResyncRequired {
                oldest: latest + 1,
                latest,
            });
        }
        _ => {}
    }
    let actors = load_actors(store, &changes).await;
    Ok(Page {
        last: changes.len() < PAGE,
        changes,
        actors,
    })
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

//! The listener: a dedicated connection that `LISTEN`s on the schema's channel and publishes
//! the change log on this process's change stream, in commit order (and op order within a
//! transaction; only a catch-up after reconnecting goes model by model), in seq order per
//! model and each change once. Notifications only say which model moved and to which seq; the rows come from the
//! log, so a notification missed while the connection was down costs nothing: after
//! reconnecting, every model is caught up from the log before listening goes on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use jxp_model::sync::lock;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_postgres::{AsyncMessage, Client};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::read;
use crate::change::Change;
use crate::error::StoreError;

/// Most log rows read per query while catching up.
const PAGE: usize = 1000;

struct Listener {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    channel: String,
    published: Arc<Published>,
}

/// This process's change stream and the last seq published on it per model, which a writer
/// waits on so that its changes are on the stream by the time its write returns (as on
/// SQLite). Changes reach the stream two ways: the listener reads them from the log, and the
/// writer of this process hands over what it has just committed, which saves the round trip
/// through the log. A batch that does not follow on from what is published yet (another
/// process committed in between) is held until the listener has published the gap, then goes
/// out at once. Both go through one lock, which is where a change already published is
/// dropped, so each change is published once and in seq order.
///
/// Only the writer's copy of an update carries the document as it was (`Change::prev`, what
/// enter/leave events need), so the listener lets the writer go first: a notification for a
/// model that this process's writer is committing right now waits until that batch is handed
/// over (or a short while passes) before the log is read.
pub(crate) struct Published {
    state: Mutex<Stream>,
    events: broadcast::Sender<Arc<Change>>,
    tick: watch::Sender<u64>,
}

/// The longest the listener waits for this process's writer to hand over a batch it is
/// committing; past it, the log's copy (without `prev`) is published.
const OWN_FIRST: Duration = Duration::from_secs(2);

/// Batches held at most. Holding only saves a read of the log: a batch let go is published
/// by the listener when its notification comes.
const MAX_HELD: usize = 256;

#[derive(Default)]
struct Stream {
    seen: HashMap<String, u64>,
    /// This process's committed batches (in commit order) waiting for a gap to be published.
    held: VecDeque<Vec<Arc<Change>>>,
    /// The writer's batch between sending COMMIT and handing its changes over: its number and
    /// the models it logs.
    committing: Option<(u64, Vec<String>)>,
    /// Batches begun, and the last one handed over (or failed).
    begun: u64,
    finished: u64,
}

impl Stream {
    /// Whether `changes` (in op order; a model's changes of a batch are consecutive seqs)
    /// follow on, for every model, from what is published.
    fn follows(&self, changes: &[Arc<Change>]) -> bool {
        let mut checked: Vec<&str> = Vec::new();
        for c in changes {
            if checked.contains(&c.model.as_str()) {
                continue;
            }
            checked.push(c.model.as_str());
            if self.seen.get(&c.model).copied().unwrap_or_default() + 1 != c.seq {
                return false;
            }
        }
        true
    }

    fn send(&mut self, events: &broadcast::Sender<Arc<Change>>, changes: Vec<Arc<Change>>) {
        for c in changes {
            self.seen.insert(c.model.clone(), c.seq);
            // No receiver is not an error: nobody listens yet.
            let _ = events.send(c);
        }
    }

    /// Publishes the held batches that now follow on, in order; drops what the listener
    /// published meanwhile.
    fn release(&mut self, events: &broadcast::Sender<Arc<Change>>) {
        while let Some(front) = self.held.front() {
            let rest: Vec<Arc<Change>> = front
                .iter()
                .filter(|c| c.seq > self.seen.get(&c.model).copied().unwrap_or_default())
                .cloned()
                .collect();
            if !rest.is_empty() && !self.follows(&rest) {
                return;
            }
            self.held.pop_front();
            self.send(events, rest);
        }
    }
}

impl Published {
    pub fn new(seen: HashMap<String, u64>, events: broadcast::Sender<Arc<Change>>) -> Self {
        Published {
            state: Mutex::new(Stream {
                seen,
                ..Stream::default()
            }),
            events,
            tick: watch::Sender::new(0),
        }
    }

    fn get(&self, model: &str) -> u64 {
        lock(&self.state)
            .seen
            .get(model)
            .copied()
            .unwrap_or_default()
    }

    /// Publishes the changes of `page` (one model's, in seq order) not yet published, and
    /// marks the model published up to `reached`; then whatever held batch now follows on.
    fn publish_page(&self, model: &str, page: Vec<Arc<Change>>, reached: u64) {
        let mut state = lock(&self.state);
        let mut last = state.seen.get(model).copied().unwrap_or_default();
        for change in page {
            if change.seq > last {
                last = change.seq;
                let _ = self.events.send(change);
            }
        }
        state.seen.insert(model.to_owned(), last.max(reached));
        state.release(&self.events);
        drop(state);
        self.tick.send_modify(|t| *t = t.wrapping_add(1));
    }

    /// Marks the writer's batch, which logs changes of `models`, as about to commit.
    pub fn committing(&self, models: &[&str]) {
        let mut state = lock(&self.state);
        state.begun += 1;
        let number = state.begun;
        state.committing = Some((number, models.iter().map(|m| (*m).to_owned()).collect()));
    }

    /// Hands over what this process's writer just committed (in op order; empty when the
    /// batch failed): published if it follows on from what is published, otherwise held until
    /// it does.
    pub fn committed(&self, changes: Vec<Arc<Change>>) {
        let mut state = lock(&self.state);
        state.finished = state.begun;
        state.committing = None;
        if changes.is_empty() {
            // A failed batch: nothing to publish, but the listener may go on.
        } else if state.held.is_empty() && state.follows(&changes) {
            state.send(&self.events, changes);
        } else {
            if state.held.len() >= MAX_HELD {
                state.held.pop_front();
            }
            state.held.push_back(changes);
            state.release(&self.events);
        }
        drop(state);
        self.tick.send_modify(|t| *t = t.wrapping_add(1));
    }

    /// Waits while this process's writer is committing a batch that logs changes of `model`,
    /// so that its copies (with `prev`) are the ones published.
    async fn own_first(&self, model: &str) {
        let number = {
            let state = lock(&self.state);
            match &state.committing {
                Some((n, models)) if models.iter().any(|m| m == model) => *n,
                _ => return,
            }
        };
        let mut tick = self.tick.subscribe();
        let handed_over = tokio::time::timeout(OWN_FIRST, async {
            while lock(&self.state).finished < number {
                if tick.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if handed_over.is_err() {
            tracing::debug!(
                model,
                "the writer's batch is slow to hand over; reading the log"
            );
        }
    }

    /// Waits until every `(model, seq)` is published, or `limit` passes (the listener may be
    /// reconnecting; the write is committed either way).
    pub async fn wait(&self, targets: &[(String, u64)], limit: Duration) {
        if targets.iter().all(|(m, s)| self.get(m) >= *s) {
            return;
        }
        let mut tick = self.tick.subscribe();
        let reached = tokio::time::timeout(limit, async {
            loop {
                if targets.iter().all(|(m, s)| self.get(m) >= *s) {
                    return;
                }
                if tick.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if reached.is_err() {
            tracing::warn!("committed changes not yet on the change stream; going on");
        }
    }
}

/// Connects and listens, then keeps doing so in the background until `stop` resolves (the
/// store was dropped). Answers once the first `LISTEN` is in place.
pub(crate) async fn start(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    channel: String,
    published: Arc<Published>,
    stop: oneshot::Receiver<()>,
) -> Result<(), StoreError> {
    let mut listener = Listener {
        config,
        tls,
        channel,
        published,
    };
    let first = listener.connect().await?;
    tokio::spawn(async move {
        tokio::select! {
            () = listener.run(first) => {}
            _ = stop => {}
        }
    });
    Ok(())
}

/// A listening connection: its client, and the payloads of its notifications (the channel
/// closes when the connection ends).
type Session = (Client, mpsc::UnboundedReceiver<String>);

impl Listener {
    async fn connect(&self) -> Result<Session, StoreError> {
        let mut config = self.config.clone();
        config.application_name(format!("jxp-listener {}", self.channel));
        let (client, mut conn) = config.connect(self.tls.clone()).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "change listener connection lost");
                        break;
                    }
                }
            }
        });
        let quoted = self.channel.replace('"', "\"\"");
        client
            .batch_execute(&format!("LISTEN \"{quoted}\""))
            .await?;
        Ok((client, rx))
    }

    /// Serves sessions for ever, reconnecting (with a growing pause) after each ends.
    async fn run(&mut self, first: Session) {
        let mut session = Some(first);
        let mut pause = Duration::from_millis(50);
        loop {
            let current = match session.take() {
                Some(s) => Ok(s),
                None => self.connect().await,
            };
            match current {
                Ok((client, notes)) => {
                    pause = Duration::from_millis(50);
                    if let Err(e) = self.serve(&client, notes).await {
                        tracing::warn!(error = %e, "change listener failed; reconnecting");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change listener cannot connect; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Catches every model up from the log, then follows the notifications.
    async fn serve(
        &mut self,
        client: &Client,
        mut notes: mpsc::UnboundedReceiver<String>,
    ) -> Result<(), StoreError> {
        let mut latest: Vec<(String, u64)> = read::all_seqs(client).await?.into_iter().collect();
        latest.sort();
        for (model, seq) in latest {
            self.publish_upto(client, &model, seq).await?;
        }
        while let Some(payload) = notes.recv().await {
            // `model:seq model:seq …`: runs of one transaction's changes, in op order.
            for run in payload.split(' ') {
                let Some((model, seq)) = run
                    .rsplit_once(':')
                    .and_then(|(m, s)| Some((m, s.parse::<u64>().ok()?)))
                else {
                    continue;
                };
                self.publish_upto(client, model, seq).await?;
            }
        }
        Err(StoreError::Database("listener connection closed".into()))
    }

    /// Publishes the logged changes of `model` after the last one published, up to `seq`.
    async fn publish_upto(
        &mut self,
        client: &Client,
        model: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        self.published.own_first(model).await;
        loop {
            let after = self.published.get(model);
            if after >= seq {
                return Ok(());
            }
            let page =
                read::changes_between(client, model, after, Some(seq), PAGE, read::Lag::Measure)
                    .await?;
            let last = page.last().map(|c| c.seq);
            // Rows pruned from the log (a listener far behind) are skipped.
            let reached = match last {
                Some(s) if s < seq => s,
                _ => seq,
            };
            self.published.publish_page(model, page, reached);
        }
    }
}

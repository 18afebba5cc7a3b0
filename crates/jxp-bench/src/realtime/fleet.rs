//! N subscribers: opened in parallel batches, each its own task, stopped and counted together.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout_at};

use super::stats::{Totals, WriteLog, analyze};
use super::ws::{ConnLog, SubConfig, SubError, subscriber};
use crate::procfs;

/// The whole connect phase may take this long at most.
const CONNECT_PHASE_LIMIT: Duration = Duration::from_secs(600);
/// File descriptors needed besides the subscribers (HTTP clients, runtime, stdio).
const FD_MARGIN: u64 = 64;
/// Progress on stderr during long connect phases.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

const EMFILE: i32 = 24;
const ENFILE: i32 = 23;
const EADDRNOTAVAIL: i32 = 99;

/// Subscribers that are reading, and how opening them went.
pub struct Fleet {
    handles: Vec<JoinHandle<ConnLog>>,
    stop: watch::Sender<bool>,
    seen: Arc<AtomicU64>,
    pub subscribed: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub connect_s: f64,
}

/// What the subscribers saw, checked against the writes.
pub struct Outcome {
    pub totals: Totals,
    /// Subscribed connections that ended before the run stopped them.
    pub ended: u64,
    pub first_end: Option<String>,
    /// Connections that got a `deauth` event.
    pub deauthed: u64,
}

/// Refuses a subscriber count this process cannot hold open, with the fix.
pub fn check_fd_limit(subs: u32) -> Result<()> {
    procfs::check_open_files(
        "--subs",
        subs,
        FD_MARGIN,
        ", and start the server from a shell with the same limit (it holds one file per \
         connection too)",
    )
}

/// Opens `n` subscribers, at most `concurrency` handshakes at once, and waits until each one
/// is subscribed or has failed.
pub async fn open(cfg: Arc<SubConfig>, n: u32, concurrency: u32) -> Result<Fleet> {
    check_fd_limit(n)?;
    let gate = Arc::new(Semaphore::new(concurrency as usize));
    let seen = Arc::new(AtomicU64::new(0));
    let (stop, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready) = mpsc::unbounded_channel::<Result<(), SubError>>();
    let started = Instant::now();
    let handles: Vec<JoinHandle<ConnLog>> = (0..n)
        .map(|_| {
            tokio::spawn(subscriber(
                Arc::clone(&cfg),
                Arc::clone(&gate),
                ready_tx.clone(),
                Arc::clone(&seen),
                stop_rx.clone(),
            ))
        })
        .collect();
    drop(ready_tx);
    let mut fleet = Fleet {
        handles,
        stop,
        seen,
        subscribed: 0,
        failed: 0,
        first_error: None,
        connect_s: 0.0,
    };

    let deadline = started + CONNECT_PHASE_LIMIT;
    let mut next_progress = started + PROGRESS_EVERY;
    let mut rate_limited = false;
    let mut refused_full = false;
    while fleet.subscribed + fleet.failed < u64::from(n) {
        let Ok(Some(result)) = timeout_at(deadline.min(next_progress), ready.recv()).await else {
            if Instant::now() >= deadline {
                fleet.abort();
                bail!(
                    "opening {n} subscribers took over {} s ({} subscribed, {} failed)",
                    CONNECT_PHASE_LIMIT.as_secs(),
                    fleet.subscribed,
                    fleet.failed
                );
            }
            eprintln!(
                "[jxp-bench] subscribed {}/{n} ({} failed) after {:.0} s",
                fleet.subscribed,
                fleet.failed,
                started.elapsed().as_secs_f64()
            );
            next_progress += PROGRESS_EVERY;
            continue;
        };
        match result {
            Ok(()) => fleet.subscribed += 1,
            Err(e) => {
                fleet.failed += 1;
                match e.os_error {
                    Some(EMFILE | ENFILE) => {
                        fleet.abort();
                        bail!(
                            "subscriber {} of {n} could not connect: too many open files ({}). \
                             Raise this shell's limit with `ulimit -n $(ulimit -Hn)` (or lower \
                             --subs) and run again",
                            fleet.subscribed + fleet.failed,
                            e.message
                        );
                    }
                    Some(EADDRNOTAVAIL) => {
                        fleet.abort();
                        bail!(
                            "subscriber {} of {n} could not connect: out of local ports ({}); \
                             lower --subs (see /proc/sys/net/ipv4/ip_local_port_range)",
                            fleet.subscribed + fleet.failed,
                            e.message
                        );
                    }
                    _ => {}
                }
                rate_limited |= e.message.contains("Too many attempts");
                refused_full |= e.message.contains("503");
                fleet.first_error.get_or_insert(e.message);
            }
        }
    }
    fleet.connect_s = started.elapsed().as_secs_f64();

    if rate_limited {
        fleet.abort();
        bail!(
            "{} of {n} WebSocket `auth` requests were refused by the server's login rate limit \
             (it counts every WebSocket auth, token or API key included, per client address): \
             start jxp with LOGIN_RATE_LIMIT_ENABLED=false (start-jxp.sh does), or pass \
             --ws-anonymous if the model may be read anonymously",
            fleet.failed
        );
    }
    if fleet.subscribed == 0 {
        let first = fleet.first_error.clone().unwrap_or_default();
        fleet.abort();
        bail!(
            "none of the {n} subscribers could subscribe; first error: {first} (is the server \
             running, is --model right, and may the user read it?)"
        );
    }
    if fleet.failed > 0 {
        let hint = if refused_full {
            "some were refused with 503: the server holds its maximum of WebSocket connections \
             (jxp: WS_MAX_CONNECTIONS, default 10000)"
        } else {
            "if the server ran out of file descriptors, start it after `ulimit -n $(ulimit -Hn)`"
        };
        eprintln!(
            "[jxp-bench] warning: {} of {n} subscribers failed (first: {}); going on with {} ({hint})",
            fleet.failed,
            fleet.first_error.as_deref().unwrap_or("?"),
            fleet.subscribed
        );
    }
    Ok(fleet)
}

impl Fleet {
    /// Events of this run's writes received so far, all subscribers together.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Waits until `target` events of ours arrived or `deadline` passed; true if they did.
    pub async fn wait_for(&self, target: u64, deadline: Instant) -> bool {
        loop {
            if self.seen() >= target {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            sleep(Duration::from_millis(5)).await;
        }
    }

    fn abort(&self) {
        let _ = self.stop.send(true);
        for h in &self.handles {
            h.abort();
        }
    }

    /// Stops every subscriber and checks what each one received against the writes.
    pub async fn finish(self, log: &WriteLog) -> Result<Outcome> {
        let _ = self.stop.send(true);
        let mut out = Outcome {
            totals: Totals::new(log.writes.len()),
            ended: 0,
            first_end: None,
            deauthed: 0,
        };
        for handle in self.handles {
            let conn = match handle.await {
                Ok(conn) => conn,
                Err(e) => bail!("a subscriber task failed: {e}"),
            };
            if !conn.subscribed {
                continue;
            }
            if let Some(why) = conn.ended {
                out.ended += 1;
                out.first_end.get_or_insert(why);
            }
            if conn.deauth.is_some() {
                out.deauthed += 1;
            }
            out.totals.add(&analyze(&conn.events, log));
        }
        Ok(out)
    }
}

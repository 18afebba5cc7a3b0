//! The open-loop REST writer: write `i` is due at `start + i / rate` whatever the response
//! times, so a slow server does not lower the offered rate. Writes are grouped in chains (one
//! create, or create/update/delete of one document for `--mix cud`); each chain runs in its
//! own task and sends each write at its due time or when the chain's previous write has been
//! answered, whichever is later.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, RequestBuilder};
use serde_json::Value;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use super::stats::{Kind, WriteLog, WriteRec, WriteState};
use super::unix_us;
use crate::cli::Mix;
use crate::client::{self, snippet};
use crate::hist::Histogram;
use crate::target::check_path_segment;

/// What to write.
#[derive(Clone, Debug)]
pub struct WritePlan {
    /// `<base>/api/<model>`.
    pub collection: String,
    /// Sent in `foo` of every write, so subscribers can tell this run's events from others'.
    pub tag: String,
    pub writes: u32,
    pub rate: f64,
    pub mix: Mix,
}

impl WritePlan {
    fn chain_len(&self) -> u32 {
        match self.mix {
            Mix::Create => 1,
            Mix::Cud => 3,
        }
    }

    /// When write `i` is due, counted from the start.
    fn due(&self, i: u32) -> Duration {
        Duration::from_secs_f64(f64::from(i) / self.rate)
    }

    fn kind(&self, i: u32) -> Kind {
        match (self.mix, i % 3) {
            (Mix::Create, _) | (Mix::Cud, 0) => Kind::Create,
            (Mix::Cud, 1) => Kind::Update,
            (Mix::Cud, _) => Kind::Delete,
        }
    }
}

/// The writer's results.
#[derive(Debug)]
pub struct WriteRun {
    pub log: WriteLog,
    /// Round trip of every answered write (successful or not).
    pub rtt: Histogram,
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    pub first_error: Option<String>,
    /// From the first write's send to the last write's answer, in seconds.
    pub window_s: f64,
    /// The schedule's length, `writes / rate` seconds.
    pub planned_s: f64,
    /// Largest delay of a send past its due time (the writer or the chain falling behind).
    pub max_lag_us: u64,
    /// Send time of the first write, µs since the UNIX epoch.
    pub first_send_us: Option<u64>,
}

impl WriteRun {
    /// Successful writes per second: over the schedule's length, or over the write window if
    /// the answers took longer (so a server that keeps up shows exactly the requested rate).
    pub fn achieved_rate(&self) -> f64 {
        let s = self.window_s.max(self.planned_s);
        if s > 0.0 {
            self.log.ok() as f64 / s
        } else {
            0.0
        }
    }
}

/// A write's outcome as one chain records it.
struct Done {
    index: u32,
    rec: WriteRec,
    lag_us: u64,
    error: Option<String>,
    done_us: u64,
}

/// Sends every write of the plan and waits for every answer (each bounded by the client's
/// request timeout).
pub async fn run(client: Client, plan: WritePlan) -> Result<WriteRun> {
    if plan.writes == 0 {
        bail!("nothing to write");
    }
    let start = Instant::now();
    let chain_len = plan.chain_len();
    let mut chains = JoinSet::new();
    let mut first = 0;
    while first < plan.writes {
        let last = (first + chain_len).min(plan.writes);
        // Start each chain's task at its first write's due time: few tasks exist at once.
        sleep_until(start + plan.due(first)).await;
        let (client, plan) = (client.clone(), plan.clone());
        chains.spawn(async move { chain(&client, &plan, start, first..last).await });
        first = last;
    }

    let mut writes: Vec<WriteRec> = (0..plan.writes)
        .map(|i| WriteRec::skipped(plan.kind(i)))
        .collect();
    let mut out = WriteRun {
        log: WriteLog::default(),
        rtt: Histogram::new(),
        sent: 0,
        failed: 0,
        skipped: 0,
        first_error: None,
        window_s: 0.0,
        planned_s: f64::from(plan.writes) / plan.rate,
        max_lag_us: 0,
        first_send_us: None,
    };
    let mut last_done_us = 0;
    while let Some(done) = chains.join_next().await {
        for d in done.map_err(|e| anyhow!("a writer task failed: {e}"))? {
            let rec = d.rec;
            if rec.state != WriteState::Skipped {
                out.sent += 1;
                out.rtt.record_us(rec.rtt_us);
                out.max_lag_us = out.max_lag_us.max(d.lag_us);
                out.first_send_us = Some(
                    out.first_send_us
                        .map_or(rec.send_us, |f| f.min(rec.send_us)),
                );
                last_done_us = last_done_us.max(d.done_us);
            }
            if rec.state == WriteState::Failed {
                out.failed += 1;
            }
            if let Some(e) = d.error {
                out.first_error.get_or_insert(e);
            }
            if let Some(slot) = writes.get_mut(d.index as usize) {
                *slot = rec;
            }
        }
    }
    out.skipped = writes
        .iter()
        .filter(|w| w.state == WriteState::Skipped)
        .count() as u64;
    if let Some(first) = out.first_send_us {
        out.window_s = last_done_us.saturating_sub(first) as f64 / 1e6;
    }
    out.log = WriteLog::new(writes);
    Ok(out)
}

/// One document's writes, in order; a failed create skips the rest of the chain.
async fn chain(
    client: &Client,
    plan: &WritePlan,
    start: Instant,
    range: std::ops::Range<u32>,
) -> Vec<Done> {
    let mut out = Vec::with_capacity(range.len());
    let mut doc: Option<String> = None;
    let mut prev_n: Option<u32> = None;
    for i in range {
        let kind = plan.kind(i);
        let due = start + plan.due(i);
        sleep_until(due).await;
        let id = match (kind, &doc) {
            (Kind::Create, _) => None,
            (_, Some(id)) => Some(id.clone()),
            (_, None) => break, // the create failed: nothing to update or delete
        };
        let send_us = unix_us();
        let lag_us = u64::try_from(Instant::now().saturating_duration_since(due).as_micros())
            .unwrap_or(u64::MAX);
        let body = format!(r#"{{"foo":"{}","bar":"{send_us}","n":{i}}}"#, plan.tag);
        let request = match (kind, id.as_deref()) {
            (Kind::Create, _) | (_, None) => client.post(&plan.collection).body(body),
            (Kind::Update, Some(id)) => client.put(format!("{}/{id}", plan.collection)).body(body),
            (Kind::Delete, Some(id)) => client.delete(format!("{}/{id}", plan.collection)),
        };
        let sent = Instant::now();
        let result = exchange(request.header(CONTENT_TYPE, "application/json")).await;
        let rtt_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (state, error) = match result.and_then(|body| created_id(kind, &body)) {
            Ok(created) => {
                if let Some(created) = created {
                    doc = Some(created);
                }
                (WriteState::Ok, None)
            }
            Err(e) => (
                WriteState::Failed,
                Some(format!("write {i} ({kind:?}): {e:#}")),
            ),
        };
        let ok = state == WriteState::Ok;
        out.push(Done {
            index: i,
            rec: WriteRec {
                kind,
                state,
                send_us,
                rtt_us,
                prev_n: if kind == Kind::Delete { prev_n } else { None },
            },
            lag_us,
            error,
            done_us: unix_us(),
        });
        if ok && kind != Kind::Delete {
            prev_n = Some(i);
        }
        if !ok && kind == Kind::Create {
            break;
        }
    }
    out
}

/// One request; the answer body if it was 2xx.
async fn exchange(request: RequestBuilder) -> Result<String> {
    let (status, body) = client::exchange(request).await?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", snippet(&body));
    }
    Ok(body)
}

/// For a create, the new document's `data._id`.
fn created_id(kind: Kind, body: &str) -> Result<Option<String>> {
    if kind != Kind::Create {
        return Ok(None);
    }
    let id = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/data/_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .ok_or_else(|| anyhow!("no data._id in {}", snippet(body)))?;
    check_path_segment("document id", &id)?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(mix: Mix, writes: u32, rate: f64) -> WritePlan {
        WritePlan {
            collection: "http://127.0.0.1:1/api/test".into(),
            tag: "t".into(),
            writes,
            rate,
            mix,
        }
    }

    #[test]
    fn schedule_and_kinds() {
        let p = plan(Mix::Cud, 7, 50.0);
        let kinds: Vec<Kind> = (0..7).map(|i| p.kind(i)).collect();
        use Kind::*;
        assert_eq!(
            kinds,
            [Create, Update, Delete, Create, Update, Delete, Create]
        );
        assert_eq!(p.due(0), Duration::ZERO);
        assert_eq!(p.due(50), Duration::from_secs(1));
        assert_eq!(p.chain_len(), 3);
        let p = plan(Mix::Create, 3, 4.0);
        assert!((0..3).all(|i| p.kind(i) == Create));
        assert_eq!(p.due(2), Duration::from_millis(500));
    }

    #[test]
    fn created_ids() {
        let ok = r#"{"status":"ok","data":{"_id":"65a1b2c3d4e5f60718293a4b","n":1}}"#;
        assert_eq!(
            created_id(Kind::Create, ok).ok().flatten().as_deref(),
            Some("65a1b2c3d4e5f60718293a4b")
        );
        assert!(created_id(Kind::Create, r#"{"data":{}}"#).is_err());
        assert!(created_id(Kind::Create, r#"{"data":{"_id":"../x"}}"#).is_err());
        assert_eq!(created_id(Kind::Delete, "").ok(), Some(None));
    }
}

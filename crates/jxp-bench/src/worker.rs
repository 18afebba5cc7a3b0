//! One load worker: its own connection, a request loop bounded by the deadline, and its counts.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, RequestBuilder};
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::client::error_chain;
use crate::hist::Histogram;
use crate::prng::XorShift64;

/// Pause after a transport error so a dead server does not turn the loop into a busy spin.
const ERROR_BACKOFF: Duration = Duration::from_millis(1);

/// What every worker sends.
pub enum Plan {
    /// GET one of these document URLs, chosen at random.
    Get { urls: Vec<String> },
    /// POST a new document to `url`; `run` makes `bar` unique across runs.
    Post { url: String, run: u64 },
    /// One of these prepared requests, chosen at random (the `query` scenarios).
    Requests { reqs: Vec<Req> },
}

/// A prepared request: a GET, or a POST of a JSON body.
pub struct Req {
    pub url: String,
    pub body: Option<String>,
    /// Extra header (PocketBase's `Authorization` without `Bearer`, say).
    pub header: Option<(String, String)>,
}

/// The request loop's clock: requests started before `record_from` are warm-up.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub record_from: Instant,
    pub end: Instant,
}

/// Counts of one worker (or, merged, of all), over the recorded window only.
#[derive(Debug, Default)]
pub struct Stats {
    /// Latency of 2xx responses only.
    pub hist: Histogram,
    pub ok: u64,
    pub non_2xx: u64,
    pub transport_errors: u64,
    pub first_error: Option<String>,
}

impl Stats {
    pub fn merge(&mut self, other: Stats) {
        self.hist.merge(&other.hist);
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.transport_errors += other.transport_errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub fn errors(&self) -> u64 {
        self.non_2xx + self.transport_errors
    }
}

enum Outcome {
    Success,
    Status(u16),
    Transport(String),
}

/// Sends requests back to back until `window.end`; a request still in flight at the deadline
/// is abandoned and counted nowhere.
pub async fn run(id: u32, client: Client, plan: Arc<Plan>, window: Window, seed: u64) -> Stats {
    let mut rng = XorShift64::new(seed);
    let mut stats = Stats::default();
    let mut sent: u64 = 0;
    loop {
        let started = Instant::now();
        if started >= window.end {
            break;
        }
        let request = match &*plan {
            Plan::Get { urls } => client.get(&urls[rng.below(urls.len())]),
            Plan::Post { url, run } => client
                .post(url)
                .header(CONTENT_TYPE, "application/json")
                .body(format!(
                    r#"{{"foo":"bench","bar":"{run:x}-{id}-{sent}","n":{sent}}}"#
                )),
            Plan::Requests { reqs } => {
                let req = &reqs[rng.below(reqs.len())];
                let mut builder = match &req.body {
                    Some(body) => client
                        .post(&req.url)
                        .header(CONTENT_TYPE, "application/json")
                        .body(body.clone()),
                    None => client.get(&req.url),
                };
                if let Some((name, value)) = &req.header {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder
            }
        };
        sent += 1;
        let Ok(outcome) = timeout_at(window.end, exchange(request)).await else {
            break;
        };
        let latency = started.elapsed();
        let recording = started >= window.record_from;
        match outcome {
            Outcome::Success if recording => {
                stats.ok += 1;
                stats.hist.record(latency);
            }
            Outcome::Status(code) if recording => {
                stats.non_2xx += 1;
                stats
                    .first_error
                    .get_or_insert_with(|| format!("HTTP {code}"));
            }
            Outcome::Transport(msg) => {
                if recording {
                    stats.transport_errors += 1;
                    stats.first_error.get_or_insert(msg);
                }
                sleep_until((Instant::now() + ERROR_BACKOFF).min(window.end)).await;
            }
            _ => {}
        }
    }
    stats
}

/// One request and its whole response body (the connection can only be reused once read).
async fn exchange(request: RequestBuilder) -> Outcome {
    match request.send().await {
        Err(e) => Outcome::Transport(error_chain(&e)),
        Ok(resp) => {
            let status = resp.status();
            match resp.bytes().await {
                Err(e) => Outcome::Transport(error_chain(&e)),
                Ok(_) if status.is_success() => Outcome::Success,
                Ok(_) => Outcome::Status(status.as_u16()),
            }
        }
    }
}

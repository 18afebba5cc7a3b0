//! The `soak` scenario: a long mixed load, reported per interval so that growth shows. REST
//! workers read (by id, lists, counts) and write (updates, and creates each followed by the
//! delete of what it made, so the data stays one size); subscribers stay a while,
//! leave and are replaced (`--churn` per second); `--slow` clients subscribe and never read,
//! so the server must close them (1013) and forget them. Every interval prints one JSON line:
//! the server's RSS, REST throughput and p99, events received, subscribers replaced and slow
//! clients cycled; the last line sums up, with the RSS growth from the first interval to the
//! last (a leak grows it; a server that holds steady does not).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use futures_util::StreamExt;
use reqwest::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_tungstenite::tungstenite::Message;

use crate::cli::SoakArgs;
use crate::client;
use crate::hist::Histogram;
use crate::prng::XorShift64;
use crate::procfs::vm_rss_kib;
use crate::realtime::ws::{SubConfig, handshake};
use crate::rest::{create, unix_nanos};
use crate::target::{Target, check_path_segment};

/// Documents the GETs and updates pick from.
const PRELOAD: u32 = 100;

/// What the workers count, taken and reset by the reporter each interval.
#[derive(Default)]
struct Interval {
    hist: Histogram,
    ok: u64,
    failed: u64,
}

#[derive(Default)]
struct Counters {
    events: AtomicU64,
    joined: AtomicU64,
    left: AtomicU64,
    sub_errors: AtomicU64,
    slow_cycles: AtomicU64,
    slow_closed_by_server: AtomicU64,
}

pub async fn run(args: SoakArgs) -> Result<()> {
    let target = Target::parse(&args.common.base)?;
    let model = args.common.model.clone();
    check_path_segment("--model", &model)?;
    let auth = client::connect(&target, &args.common).await?;
    let setup = client::build(&auth.headers)?;
    let collection = target.collection(&model);
    let run_id = unix_nanos();
    let tag = format!("soak-{run_id:x}");
    let mut ids = Vec::new();
    for i in 0..PRELOAD {
        let doc = json!({"foo": tag, "bar": format!("{run_id:x}-{i}"), "n": i});
        ids.push(create(&setup, &collection, &doc).await?);
    }
    let ids = Arc::new(ids);
    let subs_cfg = Arc::new(SubConfig {
        url: target.websocket_url()?,
        auth: auth
            .token
            .as_ref()
            .map(|t| json!({ "token": t }))
            .or_else(|| args.common.apikey.as_ref().map(|k| json!({ "apikey": k }))),
        model: model.clone(),
        tag: tag.clone(),
        handshake_timeout: Duration::from_secs(10),
    });

    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration_s);
    let interval = Arc::new(Mutex::new(Interval::default()));
    let counters = Arc::new(Counters::default());
    let mut tasks = JoinSet::new();
    for w in 0..args.rest_concurrency {
        let client = client::build(&auth.headers)?;
        let (ids, interval) = (Arc::clone(&ids), Arc::clone(&interval));
        let (collection, tag) = (collection.clone(), tag.clone());
        let count_url = target.url(&format!("/count/{model}"));
        let seed = run_id ^ u64::from(w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        tasks.spawn(async move {
            rest_worker(client, collection, count_url, ids, tag, interval, seed, end).await;
        });
    }
    // A subscriber lives subs/churn seconds on average, so about `churn` leave per second.
    let lifetime = f64::from(args.subs.max(1)) / args.churn;
    for s in 0..args.subs {
        let (cfg, counters) = (Arc::clone(&subs_cfg), Arc::clone(&counters));
        let seed = run_id ^ u64::from(s).wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 1;
        tasks.spawn(async move { subscriber(cfg, counters, lifetime, seed, end).await });
    }
    for _ in 0..args.slow {
        let (cfg, counters) = (Arc::clone(&subs_cfg), Arc::clone(&counters));
        let hold = Duration::from_secs(args.interval_s);
        tasks.spawn(async move { slow_client(cfg, counters, hold, end).await });
    }

    let mut series = Vec::new();
    let mut next = start;
    while next < end {
        next = (next + Duration::from_secs(args.interval_s)).min(end);
        sleep_until(next).await;
        let taken = std::mem::take(&mut *lock(&interval));
        let secs = args.interval_s as f64;
        let rss = args.server_pid.and_then(|pid| vm_rss_kib(pid).ok());
        let ms = |p: f64| taken.hist.percentile_us(p).map(|us| us as f64 / 1000.0);
        let line = json!({
            "scenario": "soak",
            "t_s": start.elapsed().as_secs(),
            "rss_kib": rss,
            "rest_rps": taken.ok as f64 / secs,
            "rest_failed": taken.failed,
            "rest_p50_ms": ms(50.0),
            "rest_p99_ms": ms(99.0),
            "events": counters.events.swap(0, Ordering::Relaxed),
            "subs_joined": counters.joined.swap(0, Ordering::Relaxed),
            "subs_left": counters.left.swap(0, Ordering::Relaxed),
            "sub_errors": counters.sub_errors.swap(0, Ordering::Relaxed),
            "slow_cycles": counters.slow_cycles.swap(0, Ordering::Relaxed),
            "slow_closed_by_server": counters.slow_closed_by_server.swap(0, Ordering::Relaxed),
        });
        println!("{line}");
        series.push(line);
    }
    while tasks.join_next().await.is_some() {}
    summary(&series)
}

/// One line over the whole run: throughput, worst p99, RSS first, last, peak and growth.
fn summary(series: &[Value]) -> Result<()> {
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let rss: Vec<f64> = series.iter().filter_map(|v| num(v, "rss_kib")).collect();
    let p99 = series
        .iter()
        .filter_map(|v| num(v, "rest_p99_ms"))
        .fold(0.0, f64::max);
    let requests: f64 = series.iter().filter_map(|v| num(v, "rest_rps")).sum();
    let failed: f64 = series.iter().filter_map(|v| num(v, "rest_failed")).sum();
    let line = json!({
        "scenario": "soak-summary",
        "intervals": series.len(),
        "rest_rps_mean": requests / series.len().max(1) as f64,
        "rest_failed": failed,
        "rest_p99_ms_worst": p99,
        "rss_kib_first": rss.first(),
        "rss_kib_last": rss.last(),
        "rss_kib_peak": rss.iter().copied().fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
        "rss_growth_kib": rss.first().zip(rss.last()).map(|(a, b)| b - a),
    });
    println!("{line}");
    eprintln!(
        "[jxp-bench soak] {} intervals; REST {:.0} req/s mean, worst p99 {p99:.2} ms, {failed} failed; RSS {} -> {} KiB",
        series.len(),
        requests / series.len().max(1) as f64,
        rss.first().map_or("?".into(), |r| r.to_string()),
        rss.last().map_or("?".into(), |r| r.to_string()),
    );
    if series.is_empty() {
        bail!("the run ended before its first interval");
    }
    Ok(())
}

fn lock(m: &Mutex<Interval>) -> std::sync::MutexGuard<'_, Interval> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Requests until `end`: GET by id, lists, counts, creates and updates, by a fixed mix.
#[allow(clippy::too_many_arguments)]
async fn rest_worker(
    client: Client,
    collection: String,
    count_url: String,
    ids: Arc<Vec<String>>,
    tag: String,
    interval: Arc<Mutex<Interval>>,
    seed: u64,
    end: Instant,
) {
    let mut rng = XorShift64::new(seed);
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        let id = &ids[rng.below(ids.len())];
        let request = match rng.below(20) {
            0..=7 => client.get(format!("{collection}/{id}")),
            8..=11 => client.get(format!("{collection}?limit=20&sort=-n")),
            12 => client.get(&count_url),
            // A create and then the delete of what it made, so the table stays one size:
            // a soak measures the server, not a growing scan.
            13..=16 => {
                let created = client
                    .post(&collection)
                    .json(&json!({"foo": tag, "bar": format!("{seed:x}-{n}"), "n": n}))
                    .send()
                    .await;
                let id = match created {
                    Ok(resp) => resp.json::<Value>().await.ok().and_then(|v| {
                        v.pointer("/data/_id")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    }),
                    Err(_) => None,
                };
                match id {
                    Some(id) => client.delete(format!("{collection}/{id}?_permaDelete=1")),
                    None => {
                        lock(&interval).failed += 1;
                        continue;
                    }
                }
            }
            _ => client
                .put(format!("{collection}/{id}"))
                .json(&json!({"n": n})),
        };
        let sent = Instant::now();
        let ok = match request.send().await {
            Ok(resp) => {
                let status = resp.status();
                // Read the body, as a client would, so the connection is reused.
                resp.bytes().await.is_ok() && status.is_success()
            }
            Err(_) => {
                sleep(Duration::from_millis(1)).await;
                false
            }
        };
        let mut i = lock(&interval);
        if ok {
            i.hist.record(sent.elapsed());
            i.ok += 1;
        } else {
            i.failed += 1;
        }
    }
}

/// Subscribes, reads for a random while around `lifetime` seconds, leaves; again until `end`.
async fn subscriber(
    cfg: Arc<SubConfig>,
    counters: Arc<Counters>,
    lifetime: f64,
    seed: u64,
    end: Instant,
) {
    let mut rng = XorShift64::new(seed);
    while Instant::now() < end {
        let mut ws = match handshake(&cfg).await {
            Ok(ws) => ws,
            Err(_) => {
                counters.sub_errors.fetch_add(1, Ordering::Relaxed);
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        counters.joined.fetch_add(1, Ordering::Relaxed);
        let factor = 0.5 + rng.below(1000) as f64 / 1000.0;
        let leave = (Instant::now() + Duration::from_secs_f64(lifetime * factor)).min(end);
        loop {
            let next = tokio::select! {
                next = ws.next() => next,
                _ = sleep_until(leave) => break,
            };
            match next {
                Some(Ok(Message::Text(_))) => {
                    counters.events.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    counters.sub_errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        counters.left.fetch_add(1, Ordering::Relaxed);
        drop(ws);
    }
}

/// Subscribes and never reads; after `hold`, looks whether the server closed it, and starts
/// again.
async fn slow_client(cfg: Arc<SubConfig>, counters: Arc<Counters>, hold: Duration, end: Instant) {
    while Instant::now() < end {
        let Ok(mut ws) = handshake(&cfg).await else {
            sleep(Duration::from_millis(100)).await;
            continue;
        };
        sleep_until((Instant::now() + hold).min(end)).await;
        counters.slow_cycles.fetch_add(1, Ordering::Relaxed);
        // Whatever waited is read now, quickly: a close frame at its end means the server
        // gave up on this client, as it should once the queue was full.
        let drained = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(m)) = ws.next().await {
                if matches!(m, Message::Close(_)) {
                    return true;
                }
            }
            false
        })
        .await;
        if drained.unwrap_or(false) {
            counters
                .slow_closed_by_server
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

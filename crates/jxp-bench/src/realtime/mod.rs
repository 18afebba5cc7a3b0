//! The realtime scenarios: `fanout`, `burst` and `idle`. Each opens N WebSocket subscribers
//! (one task per connection), writes over REST at an open-loop rate, waits a bounded time for
//! the deliveries, and reports one JSON line on stdout and a summary on stderr.

mod fleet;
mod stats;
mod writer;
pub mod ws;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::cli::{BurstArgs, Common, FanoutArgs, IdleArgs, Mix, SubscriberOpts};
use crate::client;
use crate::hist::Histogram;
use crate::procfs;
use crate::rest::unix_nanos;
use crate::target::{Target, check_path_segment};
use fleet::{Fleet, Outcome};
use stats::Totals;
use writer::{WritePlan, WriteRun};
use ws::SubConfig;

/// Pause after the last subscription before reading the server's RSS and writing.
const SETTLE: Duration = Duration::from_secs(1);
/// One subscriber's connect + auth + subscribe may take this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// A run's write phase may be planned this long at most.
const MAX_WRITE_PHASE: Duration = Duration::from_secs(3_600);
/// Keep-alive connections of the writer's HTTP client.
const WRITER_CONNECTIONS: usize = 16;

/// Microseconds since the UNIX epoch (the clock shared with `bar`).
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Everything the three scenarios share: the checked target, the writer's HTTP client and
/// the subscribers' configuration.
struct Setup {
    target: Target,
    model: String,
    writer: Client,
    subscribers: Arc<SubConfig>,
    server_pid: Option<u32>,
    connect_concurrency: u32,
    drain: Duration,
}

async fn setup(common: &Common, opts: &SubscriberOpts) -> Result<Setup> {
    let target = Target::parse(&common.base)?;
    let model = common.model.clone();
    check_path_segment("--model", &model)?;
    let url = target.websocket_url()?;
    if let Some(pid) = opts.server_pid {
        procfs::vm_rss_kib(pid)?;
        match procfs::comm(pid) {
            Some(name) if name.contains("jxp") => {}
            name => eprintln!(
                "[jxp-bench] warning: --server-pid {pid} is {:?}, not a jxp process",
                name.unwrap_or_default()
            ),
        }
    }
    // One login for the whole run: the token serves every request and every socket.
    let auth = client::connect(&target, common).await?;
    let ws_auth = if opts.ws_anonymous {
        None
    } else if let Some(token) = &auth.token {
        Some(json!({ "token": token }))
    } else {
        common.apikey.as_ref().map(|key| json!({ "apikey": key }))
    };
    if ws_auth.is_none() && !opts.ws_anonymous {
        eprintln!("[jxp-bench] note: no --email/--password or --apikey: subscribing anonymously");
    }
    let subscribers = Arc::new(SubConfig {
        url,
        auth: ws_auth,
        model: model.clone(),
        tag: format!("jxpb-{:x}", unix_nanos()),
        handshake_timeout: HANDSHAKE_TIMEOUT,
    });
    Ok(Setup {
        writer: client::build_pooled(&auth.headers, WRITER_CONNECTIONS)?,
        target,
        model,
        subscribers,
        server_pid: opts.server_pid,
        connect_concurrency: opts.connect_concurrency,
        drain: Duration::from_secs(opts.drain_s),
    })
}

/// The server's VmRSS readings of a run, KiB.
#[derive(Debug, Default)]
struct Rss {
    before: Option<u64>,
    subscribed: Option<u64>,
    held: Option<u64>,
    end: Option<u64>,
}

impl Rss {
    /// `(reading - before) / connections`, in KiB.
    fn per_conn(before: Option<u64>, after: Option<u64>, conns: u64) -> Option<f64> {
        match (before, after) {
            (Some(b), Some(a)) if conns > 0 => Some(round((a as f64 - b as f64) / conns as f64, 2)),
            _ => None,
        }
    }
}

fn rss(pid: Option<u32>) -> Option<u64> {
    pid.and_then(|p| procfs::vm_rss_kib(p).ok())
}

/// One run: subscribe, (hold,) write, drain, count.
struct Run {
    subs: u32,
    subscribed: u64,
    sub_errors: u64,
    first_sub_error: Option<String>,
    connect_s: f64,
    writes: WriteRun,
    outcome: Outcome,
    rss: Rss,
    /// Every expected delivery arrived before the drain deadline.
    drained: bool,
    /// Time waited for deliveries after the last write was answered.
    drain_waited_s: f64,
}

impl Run {
    fn totals(&self) -> &Totals {
        &self.outcome.totals
    }

    fn expected(&self) -> u64 {
        self.totals().expected(&self.writes.log)
    }

    fn lost(&self) -> u64 {
        self.totals().lost(&self.writes.log)
    }
}

async fn run(setup: &Setup, subs: u32, hold: Duration, plan: WritePlan) -> Result<Run> {
    let pid = setup.server_pid;
    let mut rss_kib = Rss {
        before: rss(pid),
        ..Rss::default()
    };
    let fleet: Fleet = fleet::open(
        Arc::clone(&setup.subscribers),
        subs,
        setup.connect_concurrency,
    )
    .await?;
    eprintln!(
        "[jxp-bench] {}/{subs} subscribed to {} in {:.1} s",
        fleet.subscribed, setup.model, fleet.connect_s
    );
    sleep(SETTLE).await;
    rss_kib.subscribed = rss(pid);
    if !hold.is_zero() {
        sleep(hold).await;
        rss_kib.held = rss(pid);
    }

    let writes = writer::run(setup.writer.clone(), plan).await?;
    let expected = writes.log.ok() * fleet.subscribed;
    let drain_from = Instant::now();
    let drained = fleet.wait_for(expected, drain_from + setup.drain).await;
    let drain_waited_s = drain_from.elapsed().as_secs_f64();
    rss_kib.end = rss(pid);
    let (subscribed, sub_errors, first_sub_error, connect_s) = (
        fleet.subscribed,
        fleet.failed,
        fleet.first_error.clone(),
        fleet.connect_s,
    );
    let outcome = fleet.finish(&writes.log).await?;
    Ok(Run {
        subs,
        subscribed,
        sub_errors,
        first_sub_error,
        connect_s,
        writes,
        outcome,
        rss: rss_kib,
        drained,
        drain_waited_s,
    })
}

fn plan(setup: &Setup, writes: u32, rate: f64, mix: Mix) -> Result<WritePlan> {
    let planned = Duration::from_secs_f64(f64::from(writes) / rate);
    if planned > MAX_WRITE_PHASE {
        bail!(
            "--writes {writes} at --rate {rate} would take {:.0} s; keep it under {} s",
            planned.as_secs_f64(),
            MAX_WRITE_PHASE.as_secs()
        );
    }
    Ok(WritePlan {
        collection: setup.target.collection(&setup.model),
        tag: setup.subscribers.tag.clone(),
        writes,
        rate,
        mix,
    })
}

/// Fails (after the report was printed) when the run measured nothing.
fn check_writes(run: &Run) -> Result<()> {
    if run.writes.log.ok() == 0 {
        bail!(
            "no write succeeded (first error: {})",
            run.writes.first_error.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}

pub async fn fanout(args: FanoutArgs) -> Result<()> {
    let setup = setup(&args.common, &args.subscribers).await?;
    let plan = plan(&setup, args.writes, args.rate, args.mix)?;
    let r = run(&setup, args.subs, Duration::ZERO, plan).await?;
    let t = r.totals();
    let log = &r.writes.log;
    let reached = t.all_reached(log, r.subscribed);
    let delivery_window_s = match (r.writes.first_send_us, t.last_recv_us) {
        (Some(first), Some(last)) => last.saturating_sub(first) as f64 / 1e6,
        _ => 0.0,
    };
    let deliveries_per_s = if delivery_window_s > 0.0 {
        t.counts.unique as f64 / delivery_window_s
    } else {
        0.0
    };
    let mut out = json!({
        "scenario": "fanout",
        "model": setup.model,
        "mix": args.mix.as_str(),
        "subs": r.subs,
        "subscribed": r.subscribed,
        "writes": args.writes,
        "writes_ok": log.ok(),
        "rate": args.rate,
        "achieved_rate": round(r.writes.achieved_rate(), 2),
    });
    extend(&mut out, delivery_counts(&r, t));
    extend(
        &mut out,
        json!({
        "p50_ms": pct_ms(&t.latency, 50.0),
        "p90_ms": pct_ms(&t.latency, 90.0),
        "p99_ms": pct_ms(&t.latency, 99.0),
        "max_ms": max_ms(&t.latency),
        "mean_ms": mean_ms(&t.latency),
        "deliveries_per_s": round(deliveries_per_s, 1),
        "delivery_window_s": round(delivery_window_s, 3),
        "all_reached_p50_ms": pct_ms(&reached, 50.0),
        "all_reached_p99_ms": pct_ms(&reached, 99.0),
        "all_reached_max_ms": max_ms(&reached),
        "writes_fully_delivered": reached_count(&reached),
        "write_rtt_p50_ms": pct_ms(&r.writes.rtt, 50.0),
        "write_rtt_p99_ms": pct_ms(&r.writes.rtt, 99.0),
        "write_rtt_max_ms": max_ms(&r.writes.rtt),
        "write_window_s": round(r.writes.window_s, 3),
        "send_lag_max_ms": us_to_ms(r.writes.max_lag_us),
        }),
    );
    extend(&mut out, common_and_rss_fields(&setup, &r));
    println!("{out}");
    eprintln!(
        "[jxp-bench fanout {}] {}/{} subscribed in {:.1} s; {}/{} writes ({}) at {:.1}/s (target {}); \
         deliveries {}/{} lost {} dup {} out-of-order {}{}; latency ms p50 {} p90 {} p99 {} max {}; \
         all subscribers reached p99 {} ms; {:.0} deliveries/s; write rtt ms p50 {} p99 {}{}",
        setup.model,
        r.subscribed,
        r.subs,
        r.connect_s,
        log.ok(),
        args.writes,
        args.mix.as_str(),
        r.writes.achieved_rate(),
        args.rate,
        t.counts.unique,
        r.expected(),
        r.lost(),
        t.counts.duplicates,
        t.counts.out_of_order,
        closed_note(&r),
        ms_text(pct_ms(&t.latency, 50.0)),
        ms_text(pct_ms(&t.latency, 90.0)),
        ms_text(pct_ms(&t.latency, 99.0)),
        ms_text(max_ms(&t.latency)),
        ms_text(pct_ms(&reached, 99.0)),
        deliveries_per_s,
        ms_text(pct_ms(&r.writes.rtt, 50.0)),
        ms_text(pct_ms(&r.writes.rtt, 99.0)),
        rss_note(&r.rss, r.rss.subscribed, r.subscribed),
    );
    check_writes(&r)
}

pub async fn burst(args: BurstArgs) -> Result<()> {
    let setup = setup(&args.common, &args.subscribers).await?;
    let plan = plan(&setup, 1, 1.0, Mix::Create)?;
    let r = run(&setup, args.subs, Duration::ZERO, plan).await?;
    let t = r.totals();
    let last_ms = max_ms(&t.latency);
    let mut out = json!({
        "scenario": "burst",
        "model": setup.model,
        "subs": r.subs,
        "subscribed": r.subscribed,
        "write_ok": r.writes.log.ok() == 1,
    });
    extend(&mut out, delivery_counts(&r, t));
    extend(
        &mut out,
        json!({
        // Send -> the last subscriber's receipt; `all_reached_ms` only if none was lost.
        "all_reached_ms": if r.lost() == 0 { last_ms } else { None },
        "last_received_ms": last_ms,
        "p50_ms": pct_ms(&t.latency, 50.0),
        "p90_ms": pct_ms(&t.latency, 90.0),
        "p99_ms": pct_ms(&t.latency, 99.0),
        "mean_ms": mean_ms(&t.latency),
        "write_rtt_ms": max_ms(&r.writes.rtt),
        }),
    );
    extend(&mut out, common_and_rss_fields(&setup, &r));
    println!("{out}");
    eprintln!(
        "[jxp-bench burst {}] {}/{} subscribed in {:.1} s; one write reached {}/{} subscribers \
         (lost {}, dup {}){}; last one after {} ms, p50 {} ms, p99 {} ms; write rtt {} ms{}",
        setup.model,
        r.subscribed,
        r.subs,
        r.connect_s,
        t.counts.unique,
        r.expected(),
        r.lost(),
        t.counts.duplicates,
        closed_note(&r),
        ms_text(last_ms),
        ms_text(pct_ms(&t.latency, 50.0)),
        ms_text(pct_ms(&t.latency, 99.0)),
        ms_text(max_ms(&r.writes.rtt)),
        rss_note(&r.rss, r.rss.subscribed, r.subscribed),
    );
    check_writes(&r)
}

pub async fn idle(args: IdleArgs) -> Result<()> {
    let setup = setup(&args.common, &args.subscribers).await?;
    let plan = plan(&setup, 1, 1.0, Mix::Create)?;
    let hold = Duration::from_secs(args.hold_s);
    let r = run(&setup, args.subs, hold, plan).await?;
    let t = r.totals();
    // After the hold (or right after subscribing without one).
    let held = if hold.is_zero() {
        r.rss.subscribed
    } else {
        r.rss.held
    };
    let mut out = json!({
        "scenario": "idle",
        "model": setup.model,
        "subs": r.subs,
        "subscribed": r.subscribed,
        "hold_s": args.hold_s,
        "rss_kib": { "before": r.rss.before, "subscribed": r.rss.subscribed, "held": held, "end": r.rss.end },
        "rss_per_conn_kib": Rss::per_conn(r.rss.before, held, r.subscribed),
        "probe_ok": r.writes.log.ok() == 1,
        "probe_expected": r.expected(),
        "probe_delivered": t.counts.unique,
        "probe_lost": r.lost(),
        "probe_duplicates": t.counts.duplicates,
        "probe_p50_ms": pct_ms(&t.latency, 50.0),
        "probe_p99_ms": pct_ms(&t.latency, 99.0),
        "probe_max_ms": max_ms(&t.latency),
    });
    extend(&mut out, common_fields(&setup, &r));
    println!("{out}");
    eprintln!(
        "[jxp-bench idle {}] {}/{} subscribed in {:.1} s, held {} s{}{}; probe write delivered to \
         {}/{} (lost {}), last after {} ms",
        setup.model,
        r.subscribed,
        r.subs,
        r.connect_s,
        args.hold_s,
        closed_note(&r),
        rss_note(&r.rss, held, r.subscribed),
        t.counts.unique,
        r.expected(),
        r.lost(),
        ms_text(max_ms(&t.latency)),
    );
    check_writes(&r)
}

/// How the deliveries of a fanout or burst run add up.
fn delivery_counts(r: &Run, t: &Totals) -> Value {
    json!({
        "expected": r.expected(),
        "received": t.counts.received,
        "unique": t.counts.unique,
        "lost": r.lost(),
        "duplicates": t.counts.duplicates,
        "out_of_order": t.counts.out_of_order,
    })
}

/// Fields every realtime report ends with.
fn common_fields(setup: &Setup, r: &Run) -> Value {
    let t = r.totals();
    json!({
        "sub_errors": r.sub_errors,
        "first_sub_error": r.first_sub_error,
        "connect_s": round(r.connect_s, 3),
        "closed": r.outcome.ended,
        "first_close": r.outcome.first_end,
        "deauthed": r.outcome.deauthed,
        "foreign": t.counts.foreign,
        "unmatched": t.counts.unmatched,
        "missing_seq": t.counts.missing_seq,
        "write_errors": r.writes.failed,
        "writes_skipped": r.writes.skipped,
        "first_write_error": r.writes.first_error,
        "drain_s": setup.drain.as_secs(),
        "drained": r.drained,
        "drain_waited_s": round(r.drain_waited_s, 3),
        "server_pid": setup.server_pid,
        "base": setup.target.base(),
    })
}

/// The common fields, then the server's memory before subscribing, once subscribed and at the
/// end: how the fanout and burst reports end.
fn common_and_rss_fields(setup: &Setup, r: &Run) -> Value {
    let mut out = common_fields(setup, r);
    extend(
        &mut out,
        json!({
            "rss_kib": { "before": r.rss.before, "subscribed": r.rss.subscribed, "end": r.rss.end },
            "rss_per_conn_kib": Rss::per_conn(r.rss.before, r.rss.subscribed, r.subscribed),
        }),
    );
    out
}

/// Appends the fields of `more` (an object) to `out` (an object).
fn extend(out: &mut Value, more: Value) {
    if let (Value::Object(out), Value::Object(more)) = (out, more) {
        out.extend(more);
    }
}

fn closed_note(r: &Run) -> String {
    if r.outcome.ended == 0 && r.sub_errors == 0 {
        return String::new();
    }
    format!(
        " ({} failed to subscribe, {} closed early{})",
        r.sub_errors,
        r.outcome.ended,
        r.outcome
            .first_end
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    )
}

fn rss_note(rss: &Rss, after: Option<u64>, conns: u64) -> String {
    match (rss.before, after) {
        (Some(b), Some(a)) => format!(
            "; server RSS {b} -> {a} KiB ({:.1} KiB/connection), end {} KiB",
            Rss::per_conn(Some(b), Some(a), conns).unwrap_or(f64::NAN),
            rss.end.map_or_else(|| "?".to_owned(), |e| e.to_string())
        ),
        _ => String::new(),
    }
}

fn reached_count(h: &Histogram) -> u64 {
    // The histogram holds one value per fully delivered write.
    h.count()
}

fn pct_ms(h: &Histogram, p: f64) -> Option<f64> {
    h.percentile_us(p).map(us_to_ms)
}

fn max_ms(h: &Histogram) -> Option<f64> {
    h.max_us().map(us_to_ms)
}

fn mean_ms(h: &Histogram) -> Option<f64> {
    h.mean_us().map(|us| round(us / 1000.0, 3))
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn ms_text(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_per_connection() {
        assert_eq!(Rss::per_conn(Some(10_000), Some(30_000), 1_000), Some(20.0));
        assert_eq!(Rss::per_conn(Some(10_000), Some(9_000), 400), Some(-2.5));
        assert_eq!(Rss::per_conn(None, Some(9_000), 400), None);
        assert_eq!(Rss::per_conn(Some(1), Some(2), 0), None);
    }

    #[test]
    fn extend_appends_fields() {
        let mut a = json!({ "x": 1 });
        extend(&mut a, json!({ "y": 2 }));
        assert_eq!(a.to_string(), r#"{"x":1,"y":2}"#);
    }
}

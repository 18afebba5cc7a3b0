//! The HTTP request series: a counter and a latency histogram by route template, method and
//! status, kept per thread and summed when `/metrics` is read.
//!
//! A shared series (the `prometheus` crate's `IntCounterVec` and `HistogramVec`) takes five
//! atomic read-modify-writes a request on cache lines every worker writes, which move between
//! cores with each request. Here each worker thread counts into its own [`Shard`] of a series,
//! written by that thread alone with a plain load and store, and a scrape adds the shards up
//! and hands the sums to the crate's text encoder as metric families.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use prometheus::proto::{Bucket, Counter, Histogram, LabelPair, Metric, MetricFamily, MetricType};

/// Seconds; the buckets of the request latency histogram.
pub(super) const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How many buckets a shard counts: one per bound, and one above them all.
const SLOTS: usize = LATENCY_BUCKETS.len() + 1;

const REQUESTS_NAME: &str = "jxp_http_requests_total";
const REQUESTS_HELP: &str = "HTTP requests answered, by route template, method and status";
const LATENCY_NAME: &str = "jxp_http_request_duration_seconds";
const LATENCY_HELP: &str = "Time to the answer's headers, in seconds";

/// One thread's requests of one (route, method, status). Only the thread that made it writes
/// it, so an update is a load and a store rather than a locked instruction; a scrape reads it
/// from another thread and may miss the request being counted at that instant, never more.
/// Aligned to a cache line, so that two threads' shards never share one whatever the
/// allocator puts side by side.
#[repr(align(64))]
pub(super) struct Shard {
    /// Requests by latency bucket, not cumulative; the last slot is above every bound.
    slots: [AtomicU64; SLOTS],
    /// The sum of their latencies in seconds, an `f64`'s bits.
    sum: AtomicU64,
}

impl Shard {
    /// Counts one request that took `seconds`. Called by the shard's own thread only.
    pub(super) fn observe(&self, seconds: f64) {
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(count) = self.slots.get(slot) {
            count.store(count.load(Relaxed).wrapping_add(1), Relaxed);
        }
        let sum = f64::from_bits(self.sum.load(Relaxed)) + seconds;
        self.sum.store(sum.to_bits(), Relaxed);
    }
}

/// The labels of a series.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Labels {
    route: Box<str>,
    method: &'static str,
    status: u16,
}

/// Every shard of the process, with its labels: each thread's new series adds one, a scrape
/// reads them all. Shards of threads that have ended stay, so the counts never go back.
static SHARDS: Mutex<Vec<(Labels, Arc<Shard>)>> = Mutex::new(Vec::new());

/// A new shard of the series of (`route`, `method`, `status`) for the calling thread to count
/// into.
pub(super) fn new_shard(route: &str, method: &'static str, status: u16) -> Arc<Shard> {
    let shard = Arc::new(Shard {
        slots: Default::default(),
        sum: AtomicU64::new(0.0_f64.to_bits()),
    });
    let labels = Labels {
        route: route.into(),
        method,
        status,
    };
    jxp_model::sync::lock(&SHARDS).push((labels, Arc::clone(&shard)));
    shard
}

/// A series' sums over its shards.
struct Totals {
    slots: [u64; SLOTS],
    sum: f64,
}

/// The two metric families of the request series, their shards added up, in label order;
/// none before the process has counted a request.
pub(super) fn gather() -> Vec<MetricFamily> {
    families(&jxp_model::sync::lock(&SHARDS))
}

fn families(shards: &[(Labels, Arc<Shard>)]) -> Vec<MetricFamily> {
    let mut totals: BTreeMap<Labels, Totals> = BTreeMap::new();
    for (labels, shard) in shards {
        let total = totals.entry(labels.clone()).or_insert(Totals {
            slots: [0; SLOTS],
            sum: 0.0,
        });
        for (sum, count) in total.slots.iter_mut().zip(&shard.slots) {
            *sum = sum.wrapping_add(count.load(Relaxed));
        }
        total.sum += f64::from_bits(shard.sum.load(Relaxed));
    }
    let (mut requests, mut latency) = (Vec::new(), Vec::new());
    for (labels, total) in &totals {
        // The histogram's buckets are cumulative, and its count is the last of them, so a
        // scrape's count, `+Inf` bucket and counter agree.
        let mut running = 0u64;
        let buckets: Vec<Bucket> = LATENCY_BUCKETS
            .iter()
            .zip(&total.slots)
            .map(|(&bound, &count)| {
                running = running.wrapping_add(count);
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(bound);
                bucket.set_cumulative_count(running);
                bucket
            })
            .collect();
        let count = total.slots.iter().fold(0u64, |n, c| n.wrapping_add(*c));

        let mut counter = Counter::default();
        counter.set_value(count as f64);
        let mut metric = Metric::from_label(label_pairs(labels));
        metric.set_counter(counter);
        requests.push(metric);

        let mut histogram = Histogram::default();
        histogram.set_sample_count(count);
        histogram.set_sample_sum(total.sum);
        histogram.set_bucket(buckets);
        let mut metric = Metric::from_label(label_pairs(labels));
        metric.set_histogram(histogram);
        latency.push(metric);
    }
    // The encoder refuses a family without metrics: before the first request, none.
    if requests.is_empty() {
        return Vec::new();
    }
    vec![
        family(REQUESTS_NAME, REQUESTS_HELP, MetricType::COUNTER, requests),
        family(LATENCY_NAME, LATENCY_HELP, MetricType::HISTOGRAM, latency),
    ]
}

/// The labels as the encoder takes them, by name in alphabetical order as the crate's own
/// series have them.
fn label_pairs(labels: &Labels) -> Vec<LabelPair> {
    let status = labels.status.to_string();
    [
        ("method", labels.method),
        ("route", &*labels.route),
        ("status", status.as_str()),
    ]
    .into_iter()
    .map(|(name, value)| {
        let mut pair = LabelPair::default();
        pair.set_name(name.to_owned());
        pair.set_value(value.to_owned());
        pair
    })
    .collect()
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name{labels}` in the text of the request series, rendered by
    /// the crate's encoder.
    fn sample(name: &str, labels: &str) -> f64 {
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&gather(), &mut text)
            .unwrap();
        let head = format!("{name}{{{labels}}} ");
        let line = text.lines().find(|l| l.starts_with(&head));
        let line = line.unwrap_or_else(|| panic!("no {head} in\n{text}"));
        line[head.len()..].parse().unwrap()
    }

    #[test]
    fn shards_of_one_series_are_added_up_into_cumulative_buckets() {
        let route = "/test/series/summed";
        let here = new_shard(route, "GET", 200);
        here.observe(0.0004);
        here.observe(0.003);
        let other = std::thread::spawn(move || {
            let there = new_shard(route, "GET", 200);
            there.observe(0.0004);
            there.observe(20.0);
        });
        other.join().unwrap();
        new_shard(route, "POST", 201).observe(0.2);

        let get = format!("method=\"GET\",route=\"{route}\",status=\"200\"");
        let bucket = |le: &str| {
            sample(
                "jxp_http_request_duration_seconds_bucket",
                &format!("{get},le=\"{le}\""),
            )
        };
        assert_eq!(sample("jxp_http_requests_total", &get), 4.0);
        assert_eq!(sample("jxp_http_request_duration_seconds_count", &get), 4.0);
        let sum = sample("jxp_http_request_duration_seconds_sum", &get);
        assert!((sum - 20.0038).abs() < 1e-9, "{sum}");
        assert_eq!(bucket("0.0005"), 2.0);
        assert_eq!(bucket("0.001"), 2.0);
        assert_eq!(bucket("0.005"), 3.0);
        assert_eq!(bucket("10"), 3.0);
        assert_eq!(bucket("+Inf"), 4.0);
        let post = format!("method=\"POST\",route=\"{route}\",status=\"201\"");
        assert_eq!(sample("jxp_http_requests_total", &post), 1.0);
    }

    #[test]
    fn no_series_render_as_nothing_rather_than_an_error() {
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&families(&[]), &mut text)
            .unwrap();
        assert_eq!(text, "");
    }

    #[test]
    fn a_latency_on_a_bound_falls_in_that_bucket() {
        let shard = new_shard("/test/series/bound", "GET", 200);
        shard.observe(0.001);
        shard.observe(11.0);
        let slots: Vec<u64> = shard.slots.iter().map(|s| s.load(Relaxed)).collect();
        assert_eq!(slots[1], 1, "{slots:?}");
        assert_eq!(slots[SLOTS - 1], 1, "{slots:?}");
        assert_eq!(slots.iter().sum::<u64>(), 2);
    }
}

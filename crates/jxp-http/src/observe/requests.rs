//! The HTTP request series of `/metrics`: `jxp_http_requests_total` and
//! `jxp_http_request_duration_seconds` by route template, method and status, kept here as
//! atomic counters and rendered next to the exporter's text. The exporter keeps each sample of
//! a histogram (a timestamp taken and a lock-free buffer entered per request) until its upkeep
//! folds it into the buckets; counting the request into its bucket at once is three atomic
//! additions, and the request count is the histogram's own count.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jxp_model::sync::lock;

/// Seconds; the latency histogram's upper bounds (`le`), `+Inf` after them.
const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The same bounds in nanoseconds, which a request's duration is compared with.
const BOUNDS_NANOS: [u64; 14] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// One (route, method, status): its requests and their durations.
pub(crate) struct Series {
    route: Box<str>,
    method: &'static str,
    status: u16,
    count: AtomicU64,
    sum_nanos: AtomicU64,
    /// Requests by the first bound they fall under (not cumulative); longer ones are only in
    /// `count`.
    buckets: [AtomicU64; BOUNDS.len()],
}

impl Series {
    /// Counts one request that took `elapsed`.
    pub(crate) fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        if let Some(bucket) = BOUNDS_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .and_then(|i| self.buckets.get(i))
        {
            bucket.fetch_add(1, Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub(crate) fn method(&self) -> &'static str {
        self.method
    }

    pub(crate) fn status(&self) -> u16 {
        self.status
    }
}

/// Every series of the process: like the exporter's recorder, one for all the servers a
/// process runs, so the same labels are the same series whichever server counted them.
static SERIES: Mutex<Vec<Arc<Series>>> = Mutex::new(Vec::new());

/// The series of (`route`, `method`, `status`), made the first time it is asked for.
pub(crate) fn series(route: &str, method: &'static str, status: u16) -> Arc<Series> {
    let mut all = lock(&SERIES);
    if let Some(found) = all
        .iter()
        .find(|s| s.method == method && s.status == status && *s.route == *route)
    {
        return found.clone();
    }
    let made = Arc::new(Series {
        route: route.into(),
        method,
        status,
        count: AtomicU64::new(0),
        sum_nanos: AtomicU64::new(0),
        buckets: Default::default(),
    });
    all.push(made.clone());
    made
}

/// Appends both metrics, in Prometheus' text format, to `out`. A request counted while this
/// reads may be in some of the numbers and not yet in others; the count written is never
/// below the buckets', so the buckets stay cumulative up to `+Inf`.
pub(crate) fn render(out: &mut String) {
    let mut all: Vec<Arc<Series>> = lock(&SERIES).clone();
    if all.is_empty() {
        return;
    }
    all.sort_by(|a, b| (&a.route, a.method, a.status).cmp(&(&b.route, b.method, b.status)));
    let read: Vec<(&Series, [u64; BOUNDS.len()], u64, u64)> = all
        .iter()
        .map(|s| {
            let buckets = std::array::from_fn(|i| s.buckets[i].load(Relaxed));
            let sum = s.sum_nanos.load(Relaxed);
            let count = s.count.load(Relaxed).max(buckets.iter().sum());
            (&**s, buckets, sum, count)
        })
        .collect();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("# TYPE jxp_http_requests_total counter\n");
    for (s, _, _, count) in &read {
        out.push_str("jxp_http_requests_total");
        labels(out, s, None);
        let _ = writeln!(out, " {count}");
    }
    out.push('\n');
    out.push_str("# TYPE jxp_http_request_duration_seconds histogram\n");
    for (s, buckets, sum, count) in &read {
        let mut below = 0;
        for (bound, n) in BOUNDS.iter().zip(buckets) {
            below += n;
            out.push_str("jxp_http_request_duration_seconds_bucket");
            labels(out, s, Some(&bound.to_string()));
            let _ = writeln!(out, " {below}");
        }
        out.push_str("jxp_http_request_duration_seconds_bucket");
        labels(out, s, Some("+Inf"));
        let _ = writeln!(out, " {count}");
        out.push_str("jxp_http_request_duration_seconds_sum");
        labels(out, s, None);
        let _ = writeln!(out, " {}", *sum as f64 / 1e9);
        out.push_str("jxp_http_request_duration_seconds_count");
        labels(out, s, None);
        let _ = writeln!(out, " {count}");
    }
    out.push('\n');
}

/// `{route="…",method="…",status="…"}`, with `le` last when given.
fn labels(out: &mut String, s: &Series, le: Option<&str>) {
    out.push_str("{route=\"");
    escaped(out, &s.route);
    out.push_str("\",method=\"");
    escaped(out, s.method);
    let _ = write!(out, "\",status=\"{}\"", s.status);
    if let Some(le) = le {
        let _ = write!(out, ",le=\"{le}\"");
    }
    out.push('}');
}

/// A label value as the text format escapes it: `\\`, `\"` and `\n`.
fn escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_in_nanoseconds_are_the_bounds_in_seconds() {
        for (seconds, nanos) in BOUNDS.iter().zip(BOUNDS_NANOS) {
            assert_eq!((seconds * 1e9).round() as u64, nanos);
        }
    }

    fn rendered(route: &str) -> String {
        let mut out = String::new();
        render(&mut out);
        out.lines()
            .filter(|l| l.contains(&format!("route=\"{route}\"")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_request_falls_in_the_first_bucket_whose_bound_it_does_not_pass() {
        let route = "/test/buckets/{id}";
        let s = series(route, "GET", 200);
        s.record(Duration::from_micros(500));
        s.record(Duration::from_micros(501));
        s.record(Duration::from_millis(3));
        s.record(Duration::from_secs(11));
        assert!(Arc::ptr_eq(&s, &series(route, "GET", 200)));
        let text = rendered(route);
        let value = |line: &str| -> String {
            text.lines()
                .find(|l| l.starts_with(line))
                .and_then(|l| l.rsplit(' ').next())
                .unwrap_or_default()
                .to_owned()
        };
        let labels = format!("{{route=\"{route}\",method=\"GET\",status=\"200\"");
        let bucket = |le: &str| {
            value(&format!(
                "jxp_http_request_duration_seconds_bucket{labels},le=\"{le}\"}}"
            ))
        };
        assert_eq!(bucket("0.0005"), "1");
        assert_eq!(bucket("0.001"), "2");
        assert_eq!(bucket("0.0025"), "2");
        assert_eq!(bucket("0.005"), "3");
        assert_eq!(bucket("10"), "3");
        assert_eq!(bucket("+Inf"), "4");
        assert_eq!(value(&format!("jxp_http_requests_total{labels}}}")), "4");
        assert_eq!(
            value(&format!(
                "jxp_http_request_duration_seconds_count{labels}}}"
            )),
            "4"
        );
        assert_eq!(
            value(&format!("jxp_http_request_duration_seconds_sum{labels}}}")),
            "11.004001"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let route = "/test/odd\"route\\\n";
        series(route, "OTHER", 599).record(Duration::from_millis(1));
        let mut out = String::new();
        render(&mut out);
        assert!(
            out.contains(
                "jxp_http_requests_total{route=\"/test/odd\\\"route\\\\\\n\",method=\"OTHER\",status=\"599\"} 1"
            ),
            "{out}"
        );
    }
}

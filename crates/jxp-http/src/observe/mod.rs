//! What the operator sees of each request: Prometheus metrics by route template, method and
//! status, and one access-log line (target `jxp::access`), both from one middleware around
//! every route. The hot path allocates nothing once a route's handles exist: label values come
//! from the route table, a fixed list of methods and the status code.
//!
//! The request series are kept per worker thread ([`series`]) and rendered by the
//! `prometheus` crate's text encoder; the rest of the server's metrics are the `metrics`
//! crate's with its Prometheus exporter; `/metrics` renders both. The exporter keeps every
//! sample of a histogram (with a timestamp, in a growing lock-free buffer) until its upkeep
//! folds it into the buckets; the request series count each request into its bucket at once,
//! with no memory per request.

mod line;
mod redact;
mod series;

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

pub use line::{AccessFormat, write_access_lines_to};
pub(crate) use redact::{Redacted, Target};

/// The access log's `tracing` target: `RUST_LOG=jxp::access=off` turns the lines off.
pub const ACCESS_TARGET: &str = "jxp::access";

/// Writes per store transaction; the buckets of the batch size histogram.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// Seconds; the buckets of PostgreSQL's notification lag.
const LAG_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's metrics recorder, once, and answers its handle (`None` if another
/// recorder was installed first). Metrics recorded before it are lost, so the server installs
/// it before it builds the app.
pub fn install_metrics() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("jxp_store_write_batch_size".into()),
                    BATCH_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("jxp_pg_notification_lag_seconds".into()),
                        LAG_BUCKETS,
                    )
                });
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are off: the recorder could not be built");
                    return None;
                }
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(_) => {
                    tracing::warn!("metrics are off: another metrics recorder is installed");
                    None
                }
            }
        })
        .clone()
}

/// The HTTP side of the metrics: the exporter's handle. A thread that first sees a (route,
/// method, status) makes its own shard of that series and keeps it in its [`HANDLES`]; the
/// shards are the process's, so a scrape adds up those of every thread, for every server in
/// the process.
pub(crate) struct HttpMetrics {
    handle: Option<PrometheusHandle>,
}

struct RouteHandles {
    method: &'static str,
    status: u16,
    shard: Arc<series::Shard>,
}

/// One route's handles, by method and status, with the route's template they were made for.
struct RouteEntry {
    route: Box<str>,
    handles: Vec<RouteHandles>,
}

thread_local! {
    /// Each route's shards, per thread, so that counting a request takes no lock and writes
    /// nothing shared with the other workers. They are found by the address of the route's
    /// template: the router hands every request of a route the same `Arc<str>`, so the address
    /// is the route for the router's life and finding it hashes one word instead of the text.
    /// The text is compared as well, in case a later router's template takes a freed one's
    /// address.
    static HANDLES: RefCell<HandleMap> = RefCell::default();
}

type HandleMap = HashMap<usize, RouteEntry, BuildHasherDefault<AddressHasher>>;

/// The entry of the route whose template `route` lies at `address`: a fresh one where none is,
/// or where the one there was made for another template.
fn route_entry<'m>(handles: &'m mut HandleMap, address: usize, route: &str) -> &'m mut RouteEntry {
    let fresh = || RouteEntry {
        route: route.into(),
        handles: Vec::new(),
    };
    let entry = handles.entry(address).or_insert_with(fresh);
    if *entry.route != *route {
        *entry = fresh();
    }
    entry
}

/// Hashes a template's address: one wide multiplication, its high half folded into the low
/// bits the table indexes with (an address's lowest bits are zero by alignment).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // The full product, its halves folded: the high half is what mixes the bits.
        let wide = u128::from(n) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (wide as u64) ^ ((wide >> 64) as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl HttpMetrics {
    pub(crate) fn new(enabled: bool) -> Self {
        HttpMetrics {
            handle: if enabled { install_metrics() } else { None },
        }
    }

    /// Whether metrics are on.
    pub(crate) fn enabled(&self) -> bool {
        self.handle.is_some()
    }

    /// Every metric in Prometheus' text format (the exporter's, then the request series),
    /// when metrics are on.
    pub(crate) fn render(&self) -> Option<String> {
        let mut text = self.handle.as_ref()?.render();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let before = text.len();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&series::gather(), &mut text) {
            // Nothing half-written: the exporter's metrics alone.
            text.truncate(before);
            tracing::warn!(error = %e, "the HTTP request metrics could not be rendered");
        }
        Some(text)
    }

    fn record(&self, route: &str, method: &'static str, status: StatusCode, seconds: f64) {
        let status = status.as_u16();
        HANDLES.with(|handles| {
            // A re-entrant borrow cannot happen (recording does not come back here); were it
            // to, the request goes uncounted rather than panicking.
            let Ok(mut handles) = handles.try_borrow_mut() else {
                return;
            };
            let entry = route_entry(&mut handles, route.as_ptr() as usize, route);
            if let Some(h) = entry
                .handles
                .iter()
                .find(|h| h.method == method && h.status == status)
            {
                h.shard.observe(seconds);
                return;
            }
            let shard = series::new_shard(route, method, status);
            shard.observe(seconds);
            entry.handles.push(RouteHandles {
                method,
                status,
                shard,
            });
        });
    }

    /// Keeps the exporter's histogram buffers drained between scrapes.
    pub(crate) fn upkeep(&self) {
        if let Some(h) = &self.handle {
            h.run_upkeep();
        }
    }
}

/// Method label values: a fixed set, so a client cannot grow the metrics with made-up verbs.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Route label of a request no route matched: never the raw path, which a client chooses.
const UNMATCHED: &str = "unmatched";

tokio::task_local! {
    /// The user id a request authenticated as, for its access-log line: set by the `Caller`
    /// extractor inside the middleware's scope. An ObjectId's 24 characters fit without an
    /// allocation.
    static USER: std::cell::Cell<Option<UserId>>;
}

/// A user id kept inline.
#[derive(Clone, Copy)]
struct UserId {
    len: u8,
    bytes: [u8; 32],
}

impl UserId {
    /// The id's bytes: the UTF-8 of the `&str` it was noted from.
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

/// Notes who the current request is, for its access-log line; outside a request, nothing.
pub(crate) fn note_user(id: &str) {
    let bytes = id.as_bytes();
    if bytes.len() > 32 {
        return;
    }
    let mut user = UserId {
        len: 0,
        bytes: [0; 32],
    };
    user.bytes[..bytes.len()].copy_from_slice(bytes);
    user.len = u8::try_from(bytes.len()).unwrap_or(0);
    let _ = USER.try_with(|cell| cell.set(Some(user)));
}

/// The middleware: times the request, counts it by route template, method and status, and
/// writes its access-log line.
pub(crate) async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let log = tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO);
    let metrics = state.metrics.enabled();
    if !log && !metrics {
        return next.run(req).await;
    }
    let started = Instant::now();
    let method = req.method().clone();
    // The matched path is an `Arc<str>` inside the request: cloning it is a reference count.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let uri = log.then(|| Target::of(req.uri()));
    // The handler's future runs inside the task-local's scope, and the slot is read from the
    // scope once it is done (no second future around the handler's to read it from inside).
    let mut scoped = std::pin::pin!(USER.scope(std::cell::Cell::new(None), next.run(req)));
    let response = scoped.as_mut().await;
    let user = scoped
        .as_mut()
        .take_value()
        .and_then(std::cell::Cell::into_inner);
    let ended = Instant::now();
    let elapsed = ended.duration_since(started);
    let status = response.status();
    if metrics {
        let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        state
            .metrics
            .record(route, method_label(&method), status, elapsed.as_secs_f64());
    }
    if let Some(uri) = uri {
        let bytes = response.body().size_hint().exact();
        let access = line::Access {
            method: &method,
            target: uri.as_str(),
            status,
            bytes,
            duration: elapsed,
            ended,
            user: user.as_ref().map(UserId::as_bytes),
        };
        if line::write(&access) {
            return response;
        }
        tracing::info!(
            target: ACCESS_TARGET,
            method = %method,
            path = %Redacted(uri.as_str()),
            status = status.as_u16(),
            bytes,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            user = user.as_ref().map(UserId::as_str),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_at_a_reused_address_gets_its_own_handles() {
        // Only where the handles are kept matters here.
        let mut handles = HandleMap::default();
        let first = route_entry(&mut handles, 0x1000, "/api/{model}");
        first.handles.push(RouteHandles {
            method: "GET",
            status: 200,
            shard: series::new_shard("/test/reused", "GET", 200),
        });
        assert_eq!(
            route_entry(&mut handles, 0x1000, "/api/{model}")
                .handles
                .len(),
            1
        );
        let reused = route_entry(&mut handles, 0x1000, "/login");
        assert_eq!(&*reused.route, "/login");
        assert!(reused.handles.is_empty());
        assert!(
            route_entry(&mut handles, 0x2000, "/api/{model}")
                .handles
                .is_empty()
        );
    }

    #[test]
    fn addresses_spread_over_the_low_bits() {
        use std::hash::BuildHasher as _;
        let build = BuildHasherDefault::<AddressHasher>::default();
        let low: std::collections::HashSet<u64> = (0..64usize)
            .map(|i| build.hash_one(0x7f00_0000_0000 + i * 64) & 63)
            .collect();
        assert!(low.len() > 32, "{} distinct of 64", low.len());
    }
}

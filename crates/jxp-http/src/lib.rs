//! The wire layer: the axum router with the REST routes, extractors that turn requests into
//! typed calls on `jxp_core::App`, and one `ApiError` that answers every failure as
//! `{ "code", "message" }`. No business rule lives here.

mod accept;
mod cache;
mod cors;
mod docs;
mod error;
mod extract;
mod mcp;
mod observe;
mod openapi;
mod routes;
mod ws;

use std::future::Future;
use std::sync::Arc;

use std::time::Duration;

use axum::Router;
use jxp_core::App;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use cors::{BadOrigin, CorsOrigins};
pub use docs::DocsAccess;
pub use error::ApiError;
pub use extract::json_object;
pub use mcp::McpSettings;
pub use observe::{ACCESS_TARGET, AccessFormat, install_metrics, write_access_lines_to};
pub use routes::is_api_path;
pub use ws::WsSettings;

/// Settings of the HTTP layer. Its `Debug` leaves `METRICS_TOKEN` out.
#[derive(Clone)]
pub struct HttpSettings {
    /// Largest accepted request body in bytes (413 above).
    pub body_limit: usize,
    /// Count login attempts against the first `X-Forwarded-For` address (behind a proxy).
    pub trust_forwarded_for: bool,
    pub ws: WsSettings,
    /// `CACHE_ENABLED`: keep GET answers of `/api` until their model is written or the TTL ends.
    pub cache_enabled: bool,
    pub cache_ttl: Duration,
    /// `CORS_ORIGINS`: the other origins browser pages may call the API and open sockets from.
    pub cors: CorsOrigins,
    /// `DOCS_ACCESS`: who the console at `/docs` is for.
    pub docs: DocsAccess,
    /// `HTTP_HEADER_TIMEOUT`: how long a client has to send a request's headers, counted from
    /// when the connection opens or its previous answer was sent.
    pub header_timeout: Duration,
    /// `HTTP_BODY_TIMEOUT`: how long a request's body may take to arrive (408 beyond).
    pub body_timeout: Duration,
    /// `HTTP_KEEP_ALIVE_TIMEOUT`: a connection that moves no byte for this long while no
    /// request of it is answered is closed.
    pub keep_alive_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS_PER_CLIENT`: HTTP connections one client address may hold open;
    /// more are answered 503 and closed.
    pub max_connections_per_client: usize,
    /// `MCP_*`: the Model Context Protocol endpoint.
    pub mcp: McpSettings,
    /// `METRICS_ENABLED`: count requests, sockets and writes, and serve them at `/metrics`.
    pub metrics_enabled: bool,
    /// `METRICS_TOKEN`: a bearer token that may read `/metrics` without being an admin.
    pub metrics_token: Option<String>,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("body_limit", &self.body_limit)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("ws", &self.ws)
            .field("cache_enabled", &self.cache_enabled)
            .field("cache_ttl", &self.cache_ttl)
            .field("cors", &self.cors)
            .field("docs", &self.docs)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("keep_alive_timeout", &self.keep_alive_timeout)
            .field(
                "max_connections_per_client",
                &self.max_connections_per_client,
            )
            .field("mcp", &self.mcp)
            .field("metrics_enabled", &self.metrics_enabled)
            .field(
                "metrics_token",
                &jxp_core::shown_secret(&self.metrics_token),
            )
            .finish()
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            body_limit: 1024 * 1024,
            trust_forwarded_for: false,
            ws: WsSettings::default(),
            cache_enabled: false,
            cache_ttl: Duration::from_secs(300),
            cors: CorsOrigins::default(),
            docs: DocsAccess::default(),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(15),
            max_connections_per_client: 256,
            mcp: McpSettings::default(),
            metrics_enabled: true,
            metrics_token: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub http: Arc<HttpSettings>,
    pub(crate) cache: Arc<cache::ResponseCache>,
    /// Cancelled as the server shuts down, which ends the MCP sessions' open event streams:
    /// requests the graceful shutdown would otherwise wait for. Behind an `Arc` because the
    /// state is cloned for every request, and cloning a token takes the lock of its tree.
    pub(crate) mcp_stop: Arc<CancellationToken>,
    pub(crate) metrics: Arc<observe::HttpMetrics>,
    pub(crate) api_documents: Arc<openapi::Documents>,
}

impl AppState {
    pub fn new(app: App, http: HttpSettings) -> Self {
        let cache = Arc::new(cache::ResponseCache::new(
            http.cache_enabled,
            http.cache_ttl,
        ));
        let metrics = Arc::new(observe::HttpMetrics::new(http.metrics_enabled));
        AppState {
            app,
            http: Arc::new(http),
            cache,
            mcp_stop: Arc::new(CancellationToken::new()),
            metrics,
            api_documents: Arc::default(),
        }
    }
}

/// How often the metrics exporter folds recorded histogram samples into their buckets.
const METRICS_UPKEEP: Duration = Duration::from_millis(200);

/// The whole API as a router, so tests and the binary build the same thing.
pub fn router(state: AppState) -> Router {
    let cors = cors::layer(&state.http.cors);
    let observe = axum::middleware::from_fn_with_state(state.clone(), observe::observe);
    let mut router = routes::router();
    if let Some(mcp) = mcp::router(&state) {
        router = router.merge(mcp);
    }
    // Inside the routing, so the middleware sees the matched route's template.
    let router = router.layer(observe).with_state(state);
    // Around every route and the fallbacks, so that preflights of any path are answered and
    // error answers carry the headers too: a page cannot read a 401's body without them.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (closing, mut closing_rx) = watch::channel(false);
    // One ticker has the hub ping every WebSocket, in order with its other frames, instead
    // of a timer per connection.
    let interval = state.http.ws.ping_interval;
    let hub = state.app.hub().clone();
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(interval);
        timer.tick().await;
        loop {
            tokio::select! {
                _ = timer.tick() => hub.ping_all(),
                _ = closing_rx.changed() => break,
            }
        }
    });
    openapi::warm(&state);
    let metrics = state.metrics.clone();
    let mut closing_upkeep = closing.subscribe();
    tokio::spawn(async move {
        // The exporter keeps each recorded histogram sample (write batch sizes, notification
        // lag) until upkeep folds it into the buckets. Folded every 5 s, a busy server's
        // samples piled up by the hundred thousand (when the request latency was one of them,
        // before it moved to the `prometheus` crate), and allocating and freeing their blocks
        // cost a POST about 5% of its throughput; folded every 200 ms they stay few.
        let mut timer = tokio::time::interval(METRICS_UPKEEP);
        loop {
            tokio::select! {
                _ = timer.tick() => metrics.upkeep(),
                _ = closing_upkeep.changed() => break,
            }
        }
    });
    let hub = state.app.hub().clone();
    let mcp_stop = Arc::clone(&state.mcp_stop);
    let shutdown = async move {
        shutdown.await;
        mcp_stop.cancel();
        // Open WebSockets are told first (1001); they are not requests the server would
        // wait for.
        hub.close_all();
        let _ = closing.send(true);
    };
    let limits = accept::Limits {
        header_timeout: state.http.header_timeout,
        keep_alive_timeout: state.http.keep_alive_timeout,
        max_per_client: state.http.max_connections_per_client,
    };
    accept::serve(listener, router(state), limits, shutdown).await
}

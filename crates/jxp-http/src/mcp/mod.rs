//! The Model Context Protocol endpoint (`MCP_PATH`, Streamable HTTP): a read-only view of the
//! data for AI clients, with the caller's credentials and the permissions of `GET /api/:model`.
//! The protocol is `rmcp`'s; what is jxp's own lives in the submodules: which models an MCP
//! caller sees (`visible.rs`), the five tools (`tools.rs`), the instructions and the guide
//! resource (`guide.rs`), resource subscriptions fed by the realtime hub (`subscribe.rs`), and
//! the handler that joins them (`server.rs`).

mod guide;
mod server;
mod subscribe;
mod tools;
mod visible;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use jxp_core::Credentials;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ClientKey, credentials};

/// `MCP_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSettings {
    /// `MCP_ENABLED`: serve the endpoint at all.
    pub enabled: bool,
    /// `MCP_PATH`: where, on the API's port.
    pub path: String,
    /// `MCP_REQUIRE_API_KEY`: a request without credentials is a 401.
    pub require_credentials: bool,
    /// `MCP_MODEL_WHITELIST`: models shown although hidden by default (the built-in auth
    /// models, `internal` ones).
    pub whitelist: Vec<String>,
    /// `MCP_MODEL_BLACKLIST`: models never shown.
    pub blacklist: Vec<String>,
    /// `MCP_DEFAULT_LIMIT`: documents a find or export returns without `limit`.
    pub default_limit: u64,
    /// `MCP_MAX_LIMIT`: the most documents one call returns.
    pub max_limit: u64,
    /// `MCP_MAX_RESPONSE_SIZE`: the largest tool answer in bytes; above it the tool answers an
    /// error that says how to ask for less.
    pub max_response_size: u64,
    /// `MCP_INSTRUCTIONS_APPEND`: text added to the server instructions.
    pub instructions_append: String,
    /// `MCP_GUIDE_FILES`: markdown files appended to the `jxp://guide` resource, in order.
    pub guide_files: Vec<PathBuf>,
}

impl Default for McpSettings {
    fn default() -> Self {
        McpSettings {
            enabled: true,
            path: "/mcp".to_owned(),
            require_credentials: true,
            whitelist: Vec::new(),
            blacklist: Vec::new(),
            default_limit: 20,
            max_limit: 100,
            max_response_size: 256 * 1024,
            instructions_append: String::new(),
            guide_files: Vec::new(),
        }
    }
}

/// What a request to the endpoint was authenticated as, for the handler to read from the
/// request's parts: the identity its tools run as, and the credentials and client address a
/// subscription authenticates its hub connection with.
#[derive(Clone)]
pub(crate) struct McpCaller {
    pub who: jxp_core::Identity,
    pub creds: Credentials,
    pub client: String,
}

/// The MCP endpoint as a router to merge into the API's, or `None` when it is off.
pub(crate) fn router(state: &AppState) -> Option<Router<AppState>> {
    let settings = &state.http.mcp;
    if !settings.enabled {
        return None;
    }
    let shared = Arc::new(server::Shared {
        state: state.clone(),
        guide: guide::Guide::load_or_log(settings),
    });
    let config = StreamableHttpServerConfig::default()
        // The API answers on whatever name it is reached by (`API_URL`, a proxy's); the
        // credentials every request must carry are what guards it, as for the REST routes.
        .disable_allowed_hosts()
        .with_cancellation_token((*state.mcp_stop).clone());
    let service = StreamableHttpService::new(
        move || Ok(server::JxpMcp::new(shared.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = Router::new()
        .route_service(&settings.path, service)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Some(router)
}

/// Authenticates every request to the endpoint as the REST routes do, before the protocol
/// sees it: no credentials is a 401 while `MCP_REQUIRE_API_KEY` holds, wrong ones what REST
/// answers them.
async fn authenticate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let creds = credentials(&parts)?;
    if creds == Credentials::None && state.http.mcp.require_credentials {
        return Ok(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "MCP needs credentials: send X-API-Key, a Bearer token or Basic",
        )
        .into_response());
    }
    let who = state.app.authenticate(&creds).await?;
    let client = {
        use axum::extract::FromRequestParts;
        ClientKey::from_request_parts(&mut parts, &state).await?.0
    };
    parts.extensions.insert(McpCaller { who, creds, client });
    Ok(next.run(Request::from_parts(parts, body)).await)
}

//! An MCP client for tests: `rmcp`'s client over Streamable HTTP with a test's credentials,
//! its tool answers as text, and the resource updates it was sent.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, ReadResourceRequestParams, ResourceContents,
    ResourceUpdatedNotificationParam, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::harness::{Auth, TestServer, basic_header};

/// Collects the URIs of `notifications/resources/updated`.
pub struct Watcher {
    updates: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Watcher {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        let _ = self.updates.send(params.uri);
    }
}

pub struct Mcp {
    pub service: RunningService<RoleClient, Watcher>,
    updates: mpsc::UnboundedReceiver<String>,
}

/// What a tool answered: its text, and whether it is an error.
#[derive(Debug)]
pub struct ToolAnswer {
    pub error: bool,
    pub text: String,
}

impl ToolAnswer {
    /// The text as JSON, for a successful answer.
    pub fn json(&self) -> Value {
        assert!(!self.error, "tool failed: {}", self.text);
        serde_json::from_str(&self.text).unwrap()
    }
}

/// The headers that carry `auth`.
fn headers(auth: &Auth) -> HashMap<HeaderName, HeaderValue> {
    let (name, value) = match auth {
        Auth::Basic(e, p) => ("authorization", basic_header(e, p)),
        Auth::Bearer(t) => ("authorization", format!("Bearer {t}")),
        Auth::Key(k) => ("x-api-key", k.clone()),
        Auth::Raw(v) => ("authorization", v.clone()),
        Auth::None | Auth::QueryKey(_) => return HashMap::new(),
    };
    HashMap::from([(
        HeaderName::from_static(name),
        HeaderValue::from_str(&value).unwrap(),
    )])
}

impl Mcp {
    /// Connects to `path` on `s` with `auth` and completes the handshake.
    pub async fn connect_at(s: &TestServer, path: &str, auth: &Auth) -> Self {
        let config = StreamableHttpClientTransportConfig::with_uri(format!("{}{path}", s.base))
            .custom_headers(headers(auth));
        let transport = StreamableHttpClientTransport::from_config(config);
        let (tx, updates) = mpsc::unbounded_channel();
        let service = Watcher { updates: tx }.serve(transport).await.unwrap();
        Mcp { service, updates }
    }

    pub async fn connect(s: &TestServer, auth: &Auth) -> Self {
        Self::connect_at(s, "/mcp", auth).await
    }

    /// Calls tool `name` with `args` (a JSON object).
    pub async fn tool(&self, name: &str, args: Value) -> ToolAnswer {
        let mut params = CallToolRequestParams::new(name.to_owned());
        params.arguments = args.as_object().cloned();
        let result = self.service.call_tool(params).await.unwrap();
        let text = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("");
        ToolAnswer {
            error: result.is_error == Some(true),
            text,
        }
    }

    /// `tool`, expecting success, as JSON.
    pub async fn ok(&self, name: &str, args: Value) -> Value {
        self.tool(name, args).await.json()
    }

    /// The slugs `jxp_list_models` answers.
    pub async fn model_slugs(&self) -> Vec<String> {
        let models = self.ok("jxp_list_models", serde_json::json!({})).await;
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["model"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The text of resource `uri`.
    pub async fn read(&self, uri: &str) -> Result<String, String> {
        let result = self
            .service
            .read_resource(ReadResourceRequestParams::new(uri))
            .await
            .map_err(|e| e.to_string())?;
        Ok(result
            .contents
            .into_iter()
            .map(|c| match c {
                ResourceContents::TextResourceContents { text, .. } => text,
                other => panic!("not text: {other:?}"),
            })
            .collect())
    }

    #[allow(deprecated)]
    pub async fn subscribe(&self, uri: &str) -> Result<(), String> {
        self.service
            .subscribe(SubscribeRequestParams::new(uri))
            .await
            .map_err(|e| e.to_string())
    }

    #[allow(deprecated)]
    pub async fn unsubscribe(&self, uri: &str) -> Result<(), String> {
        self.service
            .unsubscribe(UnsubscribeRequestParams::new(uri))
            .await
            .map_err(|e| e.to_string())
    }

    /// The next resource update, or `None` if none comes within `wait`.
    pub async fn next_update(&mut self, wait: Duration) -> Option<String> {
        tokio::time::timeout(wait, self.updates.recv())
            .await
            .ok()
            .flatten()
    }
}

//! The MCP handler: one per session, answering `initialize` with the instructions, the tools
//! (`tools.rs`), the guide and document resources, and subscriptions (`subscribe.rs`). Each
//! request runs as the identity the endpoint's authentication put in its parts.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::McpCaller;
use super::guide::{GUIDE_NAME, GUIDE_TITLE, GUIDE_URI, Guide};
use super::subscribe::{SubscribeFailed, Subscriptions, parse_uri};
use super::tools::{Args, Call, definitions};
use super::visible::readable;
use crate::AppState;

/// What every session shares.
pub(crate) struct Shared {
    pub state: AppState,
    pub guide: Guide,
}

/// One MCP session.
pub(crate) struct JxpMcp {
    shared: Arc<Shared>,
    subs: Subscriptions,
}

impl JxpMcp {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        JxpMcp {
            shared,
            subs: Subscriptions::default(),
        }
    }

    /// The caller the endpoint authenticated this request as.
    fn caller(ctx: &RequestContext<RoleServer>) -> Result<McpCaller, ErrorData> {
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<McpCaller>())
            .cloned()
            .ok_or_else(|| ErrorData::internal_error("the request was not authenticated", None))
    }

    fn call<'a>(&'a self, caller: &'a McpCaller) -> Call<'a> {
        Call {
            state: &self.shared.state,
            settings: &self.shared.state.http.mcp,
            who: &caller.who,
        }
    }

    /// Whether `uri` names a model this caller is shown, for subscriptions and reads.
    fn check_uri<'u>(
        &self,
        caller: &McpCaller,
        uri: &'u str,
    ) -> Result<(&'u str, Option<&'u str>), SubscribeFailed> {
        let (slug, id) = parse_uri(uri)?;
        let unknown = || SubscribeFailed::UnknownModel(slug.to_owned());
        let model = self.shared.state.app.model(slug).map_err(|_| unknown())?;
        readable(&self.shared.state.http.mcp, model, &caller.who).ok_or_else(unknown)?;
        Ok((slug, id))
    }
}

fn invalid(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::invalid_params(e.to_string(), None)
}

impl ServerHandler for JxpMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("jxp", env!("CARGO_PKG_VERSION")))
            .with_instructions(self.shared.guide.instructions.clone())
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    /// The revisions with sessions and `resources/subscribe`, which this server implements.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(
            &ProtocolVersion::LATEST_WITH_INITIALIZE,
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(definitions()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = Self::caller(&ctx)?;
        let outcome = match Args::parse(request.arguments) {
            Ok(args) => self.call(&caller).run(&request.name, args).await,
            Err(e) => Err(e),
        };
        Ok(match outcome {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
        }
        .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let guide = Resource::new(GUIDE_URI, GUIDE_NAME)
            .with_title(GUIDE_TITLE)
            .with_description("How to use this server's tools, filters and limits.")
            .with_mime_type("text/markdown");
        Ok(ListResourcesResult::with_all_items(vec![guide]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let doc = ResourceTemplate::new("jxp://{model}/{id}", "jxp-document")
            .with_description("One document, as jxp_find with id answers it; subscribable.")
            .with_mime_type("application/json");
        let model = ResourceTemplate::new("jxp://{model}", "jxp-model")
            .with_description("A model's first page, as jxp_find answers it; subscribable.")
            .with_mime_type("application/json");
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            doc, model,
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        if uri == GUIDE_URI {
            let text = ResourceContents::text(self.shared.guide.text.clone(), uri)
                .with_mime_type("text/markdown");
            return Ok(ReadResourceResult::new(vec![text]).into());
        }
        let caller = Self::caller(&ctx)?;
        let (slug, id) = self
            .check_uri(&caller, &uri)
            .map_err(|e| ErrorData::resource_not_found(e.to_string(), None))?;
        let args = Args::for_resource(slug, id);
        let text = self
            .call(&caller)
            .run("jxp_find", args)
            .await
            .map_err(|e| ErrorData::resource_not_found(e.to_string(), None))?;
        let contents = ResourceContents::text(text, uri).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let caller = Self::caller(&ctx)?;
        self.check_uri(&caller, &request.uri).map_err(invalid)?;
        self.subs
            .add(&self.shared.state, &caller, &request.uri, ctx.peer.clone())
            .await
            .map_err(invalid)
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if self.subs.remove(&request.uri) {
            Ok(())
        } else {
            Err(invalid(format!("not subscribed to {}", request.uri)))
        }
    }
}

//! The console at `/docs`: a page, its script and its style sheet, all inside the binary, so
//! the console works with no request to any other host (the Content-Security-Policy it is
//! served with says so to the browser too). Everything it shows comes from the API itself:
//! `GET /model` for the models, the REST routes for the explorer, the WebSocket feed for the
//! live view and, with MCP on, the MCP endpoint for its page, each with the signed-in user's
//! rights. `DOCS_ACCESS` turns it off or asks
//! for a sign-in before any model is shown.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

/// `DOCS_ACCESS`: who the console is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DocsAccess {
    /// Anyone may open it and see the models.
    Public,
    /// It opens for anyone but shows the models only after a sign-in.
    #[default]
    Protected,
    /// Not served: `/docs` is a 404.
    Off,
}

impl DocsAccess {
    /// Parses the setting's value; `None` for anything but the three names.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "public" => Some(DocsAccess::Public),
            "protected" => Some(DocsAccess::Protected),
            "off" => Some(DocsAccess::Off),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DocsAccess::Public => "public",
            DocsAccess::Protected => "protected",
            DocsAccess::Off => "off",
        }
    }
}

const PAGE: &str = include_str!("assets/console.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// Nothing but this server: scripts, styles, fetches and the socket (CSP 3's `'self'` covers
/// `ws:`/`wss:` to the same host).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn asset(state: &AppState, body: &'static str, kind: &'static str) -> Response {
    if state.http.docs == DocsAccess::Off {
        return ApiError::not_found("no such route").into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(POLICY),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn page(State(state): State<AppState>) -> Response {
    asset(&state, PAGE, "text/html; charset=utf-8")
}

pub(crate) async fn script(State(state): State<AppState>) -> Response {
    asset(&state, SCRIPT, "text/javascript; charset=utf-8")
}

pub(crate) async fn style(State(state): State<AppState>) -> Response {
    asset(&state, STYLE, "text/css; charset=utf-8")
}

/// What the page needs to know of this server before it asks the API anything.
pub(crate) async fn config(State(state): State<AppState>) -> Response {
    if state.http.docs == DocsAccess::Off {
        return ApiError::not_found("no such route").into_response();
    }
    let mcp = &state.http.mcp;
    axum::Json(json!({
        "access": state.http.docs.name(),
        "version": env!("CARGO_PKG_VERSION"),
        "mcp": mcp.enabled.then_some(mcp.path.as_str()),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_access_names_parse_and_nothing_else() {
        assert_eq!(DocsAccess::parse("public"), Some(DocsAccess::Public));
        assert_eq!(
            DocsAccess::parse(" Protected "),
            Some(DocsAccess::Protected)
        );
        assert_eq!(DocsAccess::parse("off"), Some(DocsAccess::Off));
        assert_eq!(DocsAccess::parse("private"), None);
        assert_eq!(DocsAccess::parse(""), None);
    }

    #[test]
    fn the_page_loads_only_its_own_assets() {
        for needle in ["http://", "https://", "//cdn", "<link rel=\"preconnect"] {
            assert!(!PAGE.contains(needle), "the page names {needle}");
            assert!(!SCRIPT.contains(needle), "the script names {needle}");
        }
        assert!(PAGE.contains("/docs/console.js"));
        assert!(PAGE.contains("/docs/console.css"));
    }
}

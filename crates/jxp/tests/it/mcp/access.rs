//! Who may use the endpoint and what it is: 401 without credentials, every kind of
//! credentials REST takes, `MCP_ENABLED=false` and `MCP_PATH`, the instructions, the tools
//! listed and the `jxp://guide` resource with `MCP_GUIDE_FILES`.

use reqwest::StatusCode;
use serde_json::json;

use super::client::Mcp;
use crate::harness::{Auth, TestServer, World, login_as, setup_admin, start};

/// An initialize request as a client sends it first.
fn initialize() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
}

async fn post_mcp(s: &TestServer, path: &str, auth: Option<(&str, &str)>) -> StatusCode {
    let mut req = s
        .client
        .post(format!("{}{path}", s.base))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize());
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    req.send().await.unwrap().status()
}

#[tokio::test]
async fn no_credentials_is_401_and_wrong_ones_are_refused() {
    let s = TestServer::open().await;
    assert_eq!(post_mcp(&s, "/mcp", None).await, StatusCode::UNAUTHORIZED);
    let (status, body) = s.get("/mcp").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("credentials"),
        "{body}"
    );
    let wrong = post_mcp(&s, "/mcp", Some(("x-api-key", "not-a-key"))).await;
    assert!(
        wrong.is_client_error() && wrong != StatusCode::OK,
        "{wrong}"
    );
}

#[tokio::test]
async fn anonymous_callers_get_the_open_models_when_credentials_are_not_required() {
    let models = [
        ("test", crate::harness::OPEN_TEST),
        ("link", crate::harness::OPEN_LINK),
    ];
    let s = start(&models, &[("MCP_REQUIRE_API_KEY", "false")]).await;
    s.create("test", json!({"foo": "open"})).await;
    let mcp = Mcp::connect(&s, &Auth::None).await;
    let found = mcp.ok("jxp_find", json!({"model": "test"})).await;
    assert_eq!(found["data"][0]["foo"], "open", "{found}");
}

#[tokio::test]
async fn every_kind_of_credentials_works() {
    let models = [
        ("test", crate::harness::OPEN_TEST),
        ("link", crate::harness::OPEN_LINK),
    ];
    let w = World::start(&models, &[], ["alice", "bob"]).await;
    let session = login_as(&w.s, &w.alice).await;
    for auth in [w.alice.basic(), session.bearer(), session.key()] {
        let mcp = Mcp::connect(&w.s, &auth).await;
        assert!(mcp.model_slugs().await.contains(&"test".to_owned()));
    }
}

#[tokio::test]
async fn disabled_is_404_and_the_path_is_configurable() {
    let off = TestServer::open_with(&[("MCP_ENABLED", "false")]).await;
    assert_eq!(
        post_mcp(&off, "/mcp", Some(("x-api-key", "k"))).await,
        StatusCode::NOT_FOUND
    );
    let moved = TestServer::open_with(&[("MCP_PATH", "/ai/mcp")]).await;
    let admin = setup_admin(&moved).await;
    assert_eq!(
        post_mcp(&moved, "/mcp", Some(("x-api-key", "k"))).await,
        StatusCode::NOT_FOUND
    );
    let mcp = Mcp::connect_at(&moved, "/ai/mcp", &admin.basic()).await;
    assert!(mcp.model_slugs().await.contains(&"test".to_owned()));
}

#[tokio::test]
async fn instructions_tools_and_the_guide_with_guide_files() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.md");
    let second = dir.path().join("second.md");
    std::fs::write(
        &first,
        "## Our readers\nA reader is a newsletter subscriber.\n",
    )
    .unwrap();
    std::fs::write(&second, "## Our segments\nSegments group readers.\n").unwrap();
    let files = format!("{},{}", first.display(), second.display());
    let s = TestServer::open_with(&[
        ("MCP_GUIDE_FILES", &files),
        ("MCP_INSTRUCTIONS_APPEND", "Dates are in UTC."),
    ])
    .await;
    let admin = setup_admin(&s).await;
    let mcp = Mcp::connect(&s, &admin.basic()).await;

    let info = mcp.service.peer_info().unwrap();
    let instructions = info.instructions.clone().unwrap();
    for name in [
        "jxp_list_models",
        "jxp_describe_model",
        "jxp_find",
        "jxp_count",
        "jxp_export_csv",
        "jxp://guide",
    ] {
        assert!(instructions.contains(name), "{name} in {instructions}");
    }
    assert!(
        instructions.ends_with("Dates are in UTC."),
        "{instructions}"
    );

    let tools: Vec<String> = mcp
        .service
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(
        tools,
        [
            "jxp_list_models",
            "jxp_describe_model",
            "jxp_find",
            "jxp_count",
            "jxp_export_csv"
        ]
    );

    let resources = mcp.service.list_resources(None).await.unwrap().resources;
    let guide = resources.iter().find(|r| r.uri == "jxp://guide").unwrap();
    assert_eq!(guide.name, "jxp-guide");
    assert_eq!(guide.title.as_deref(), Some("JXP MCP usage guide"));
    let text = mcp.read("jxp://guide").await.unwrap();
    assert!(text.starts_with("# JXP MCP usage guide"), "{text}");
    let (a, b) = (text.find("## Our readers"), text.find("## Our segments"));
    assert!(a.is_some() && a < b, "guide files merged in order: {text}");
}

#[tokio::test]
async fn an_unreadable_guide_file_is_a_configuration_error() {
    let s = TestServer::open().await;
    let mut vars = vec![("MCP_GUIDE_FILES".to_owned(), "/no/such/guide.md".to_owned())];
    vars.push(("MODEL_DIR".to_owned(), s.dir.path().display().to_string()));
    let err = jxp::Config::from_vars(vars).unwrap_err();
    assert_eq!(err.var, "MCP_GUIDE_FILES");
}

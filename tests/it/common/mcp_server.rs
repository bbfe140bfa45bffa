//! A real MCP server, built with the official Rust SDK (`rmcp`), for tests to put
//! authhost's gateway in front of: streamable HTTP, stateless (no sessions), on a free
//! loopback port. Tools: `whoami` (the HTTP request headers it received), `echo`,
//! `delete_records` and `count` (sends notifications before its result).

// `count` sends logging notifications, which SEP-2577 deprecates; rmcp still delivers them.
#![allow(deprecated)]

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::request::Parts;
use rmcp::handler::server::{tool::Extension, wrapper::Parameters};
use rmcp::model::{
    CallToolResult, Implementation, LoggingLevel, LoggingMessageNotificationParam,
    ProgressNotificationParam, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    text: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct DeleteArgs {
    table: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct CountArgs {
    n: u32,
}

#[derive(Clone)]
struct TestServer;

#[tool_router]
impl TestServer {
    #[tool(description = "The HTTP request headers this server received, lowercase name to value")]
    fn whoami(&self, Extension(parts): Extension<Parts>) -> CallToolResult {
        // A header sent more than once comes back as its values joined by ", ".
        let headers: BTreeMap<&str, String> = parts
            .headers
            .keys()
            .map(|name| {
                let values: Vec<_> = parts
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|value| String::from_utf8_lossy(value.as_bytes()))
                    .collect();
                (name.as_str(), values.join(", "))
            })
            .collect();
        CallToolResult::structured(serde_json::json!(headers))
    }

    #[tool(description = "Returns the text")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }

    #[tool(description = "Pretends to delete every record of a table")]
    fn delete_records(&self, Parameters(DeleteArgs { table }): Parameters<DeleteArgs>) -> String {
        format!("deleted {table}")
    }

    #[tool(description = "Sends n progress (or, without a progressToken, log) notifications")]
    async fn count(
        &self,
        Parameters(CountArgs { n }): Parameters<CountArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<String, ErrorData> {
        let token = context.meta.get_progress_token();
        for i in 1..=n {
            let sent = match &token {
                Some(token) => {
                    let param = ProgressNotificationParam::new(token.clone(), f64::from(i))
                        .with_total(f64::from(n));
                    context.peer.notify_progress(param).await
                }
                None => {
                    let param = LoggingMessageNotificationParam::new(
                        LoggingLevel::Info,
                        serde_json::json!(format!("count {i}")),
                    );
                    context.peer.notify_logging_message(param).await
                }
            };
            sent.map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(format!("counted {n}"))
    }
}

#[tool_handler]
impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
        )
        .with_server_info(Implementation::new("authhost-test-mcp", "1.0.0"))
    }
}

/// Start the server; returns its MCP URL `http://127.0.0.1:<port>/mcp`.
/// json_response = true: plain tool results come back as application/json;
/// false: every response is an SSE stream (text/event-stream).
pub async fn start(json_response: bool) -> String {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(json_response)
        .with_allowed_hosts(["127.0.0.1", "localhost"]);
    let service = StreamableHttpService::new(
        || Ok(TestServer),
        NeverSessionManager::default().into(),
        config,
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind MCP server");
    let addr = listener.local_addr().expect("MCP server address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/mcp")
}

/// One answer to a JSON-RPC request over streamable HTTP.
#[derive(Debug)]
pub struct Reply {
    pub status: reqwest::StatusCode,
    pub content_type: String,
    pub www_authenticate: Option<String>,
    /// Every JSON message of the body: one for JSON, one per event for SSE.
    pub messages: Vec<serde_json::Value>,
}

impl Reply {
    /// The final message (the response to the request).
    pub fn last(&self) -> &serde_json::Value {
        self.messages.last().expect("a message in the reply")
    }

    /// The structured result of a `whoami` call: the headers the server received.
    pub fn headers_seen(&self) -> &serde_json::Value {
        &self.last()["result"]["structuredContent"]
    }
}

/// POST one JSON-RPC request (protocol 2025-11-25, which needs no handshake here).
pub async fn call(
    url: &str,
    bearer: Option<&str>,
    method: &str,
    params: serde_json::Value,
) -> Reply {
    send(
        url,
        bearer,
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
    .await
}

/// POST any body (a batch, say).
pub async fn send(url: &str, bearer: Option<&str>, body: serde_json::Value) -> Reply {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the request is answered");
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let content_type = header("content-type").unwrap_or_default();
    let www_authenticate = header("www-authenticate");
    let text = response.text().await.unwrap_or_default();
    let messages = if content_type.starts_with("text/event-stream") {
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect()
    } else {
        serde_json::from_str(&text).into_iter().collect()
    };
    Reply {
        status,
        content_type,
        www_authenticate,
        messages,
    }
}

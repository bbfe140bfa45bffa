//! A small MCP server (streamable HTTP, JSON responses) with one tool, `whoami`, that
//! shows the identity authhost forwarded. It listens on its own loopback port, so the
//! only way in from outside is through the gateway.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Protocol revisions this server speaks, newest first.
const PROTOCOL_VERSIONS: &[&str] = &["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];

/// Start the server on a free loopback port; returns its MCP URL.
pub async fn start() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let app = axum::Router::new().route("/mcp", post(rpc).get(no_stream).delete(no_stream));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("demo MCP server stopped: {e}");
        }
    });
    Ok(url)
}

/// No server-initiated stream and no sessions.
async fn no_stream() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

async fn rpc(
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(message)) = body else {
        return error_response(Value::Null, -32700, "parse error: the body is not JSON");
    };
    let id = message.get("id").cloned();
    let method = message["method"].as_str().unwrap_or("");
    let Some(id) = id else {
        // A notification (e.g. notifications/initialized): accepted, nothing to say.
        return StatusCode::ACCEPTED.into_response();
    };
    let result = match method {
        "initialize" => {
            let requested = message["params"]["protocolVersion"].as_str().unwrap_or("");
            let version = PROTOCOL_VERSIONS
                .iter()
                .find(|v| **v == requested)
                .unwrap_or(&PROTOCOL_VERSIONS[0]);
            json!({
                "protocolVersion": version,
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "authhost-demo", "version": env!("CARGO_PKG_VERSION") },
            })
        }
        "ping" => json!({}),
        "tools/list" => json!({ "tools": [{
            "name": "whoami",
            "description": "Who authhost says you are.",
            "inputSchema": { "type": "object", "properties": {} },
        }]}),
        "tools/call" if message["params"]["name"] == "whoami" => {
            let identity = whoami(&headers);
            json!({
                "content": [{ "type": "text", "text": identity.to_string() }],
                "structuredContent": identity,
                "isError": false,
            })
        }
        "tools/call" => return error_response(id, -32602, "unknown tool"),
        _ => return error_response(id, -32601, "method not found"),
    };
    Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response()
}

/// Who authhost says is calling. Identity header values are percent-encoded UTF-8
/// (lists: split on `,`, then decode each).
fn whoami(headers: &HeaderMap) -> Value {
    let decode = |v: &str| {
        percent_encoding::percent_decode_str(v)
            .decode_utf8_lossy()
            .into_owned()
    };
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(decode);
    let list = |name: &str| -> Vec<String> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').map(decode).collect())
            .unwrap_or_default()
    };
    json!({
        "subject": get("x-authhost-subject"),
        "username": get("x-authhost-username"),
        "email": get("x-authhost-email"),
        "name": get("x-authhost-name"),
        "groups": list("x-authhost-groups"),
        "provider": get("x-authhost-provider"),
        "client_id": get("x-authhost-client-id"),
        "auth": get("x-authhost-auth"),
        "authorization_header_seen": headers.contains_key("authorization"),
    })
}

fn error_response(id: Value, code: i64, message: &str) -> Response {
    Json(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }))
        .into_response()
}

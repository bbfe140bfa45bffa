//! Policies on user claims, per server and per tool, decided on every request through
//! the real gateway in front of a real MCP server: denied calls get a JSON-RPC error,
//! lists show only what the caller may call, in JSON and in SSE responses.

use crate::common::mcp_server::{self, Reply};
use crate::common::server::{Browser, Options, TestAuthhost, mcp_server, start_upstream};
use authhost::cli::admin::{ApiKeySpec, create_api_key};
use authhost::config::{McpServerConfig, PolicyConfig, ToolRule};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// alice is in `admins` (alice@example.com); bob is in `sales` (bob@example.org).
fn tool_policy() -> PolicyConfig {
    PolicyConfig {
        deny_tools: vec!["count".into()],
        tools: vec![
            ToolRule {
                tools: vec!["delete_*".into()],
                allow: Some(r#""admins" in user.groups"#.into()),
                scopes: vec![],
            },
            ToolRule {
                tools: vec!["echo".into()],
                allow: None,
                scopes: vec!["mcp:echo".into()],
            },
        ],
        ..PolicyConfig::default()
    }
}

struct Setup {
    a: TestAuthhost,
    audit: std::path::PathBuf,
    _upstream: crate::common::upstream::Upstream,
    alice: String,
    bob: String,
}

async fn setup() -> Setup {
    let upstream = start_upstream();
    let json_mcp = mcp_server::start(true).await;
    let sse_mcp = mcp_server::start(false).await;
    let servers = vec![
        (
            "pol",
            McpServerConfig {
                api_keys: true,
                policy: tool_policy(),
                ..mcp_server("/pol", &json_mcp)
            },
        ),
        (
            "pol-sse",
            McpServerConfig {
                policy: tool_policy(),
                max_request_bytes: 2048,
                ..mcp_server("/pol-sse", &sse_mcp)
            },
        ),
        (
            "strict",
            McpServerConfig {
                policy: PolicyConfig {
                    allow: Some(
                        r#"user.email.endsWith("@example.com") && user.email_verified"#.into(),
                    ),
                    ..PolicyConfig::default()
                },
                ..mcp_server("/strict", &json_mcp)
            },
        ),
        ("sse-open", mcp_server("/sse-open", &sse_mcp)),
    ];
    let audit =
        std::env::temp_dir().join(format!("audit-{}.log", authhost::crypto::random_token()));
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: servers,
            audit_file: Some(audit.clone()),
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Policy client").await;
    // One grant per user and server would be needed for audiences; sign in per server.
    let alice = a
        .sign_in_as(&Browser::new(), &client, "/pol", "alice")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = a.sign_in_as(&Browser::new(), &client, "/pol", "bob").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    Setup {
        a,
        audit,
        _upstream: upstream,
        alice,
        bob,
    }
}

async fn tools(url: &str, token: &str) -> (Reply, Vec<String>) {
    let reply = mcp_server::call(url, Some(token), "tools/list", json!({})).await;
    let names = reply.last()["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("a tool list: {reply:?}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    (reply, names)
}

async fn call(url: &str, token: &str, tool: &str, arguments: Value) -> Reply {
    mcp_server::call(
        url,
        Some(token),
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await
}

fn denial(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let error = &reply.last()["error"];
    assert_eq!(
        error["code"],
        authhost::gateway::error::POLICY_DENIED,
        "{reply:?}"
    );
    assert_eq!(reply.last()["id"], 1);
    error["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn tool_rules_decide_calls_and_lists_per_caller() {
    let Setup {
        a,
        audit,
        alice,
        bob,
        _upstream: _keep,
    } = setup().await;
    let pol = a.url("/pol");

    let (_, alice_tools) = tools(&pol, &alice).await;
    assert!(
        alice_tools.contains(&"delete_records".to_string()),
        "{alice_tools:?}"
    );
    assert!(
        !alice_tools.contains(&"count".to_string()),
        "denied for everyone"
    );
    assert!(
        alice_tools.contains(&"echo".to_string()),
        "behind a scope alice can step up to, so listed"
    );
    let (_, bob_tools) = tools(&pol, &bob).await;
    assert!(
        bob_tools.contains(&"whoami".to_string())
            && !bob_tools.contains(&"delete_records".to_string()),
        "{bob_tools:?}"
    );

    let done = call(&pol, &alice, "delete_records", json!({"table": "users"})).await;
    assert_eq!(
        done.last()["result"]["content"][0]["text"],
        "deleted users",
        "{done:?}"
    );
    let message = denial(&call(&pol, &bob, "delete_records", json!({"table": "users"})).await);
    assert!(
        message.contains("admins"),
        "the reason names the condition: {message}"
    );
    assert!(denial(&call(&pol, &alice, "count", json!({"n": 1})).await).contains("denied"));
    // Lacking only a scope: a 403 scope challenge, so the client can step up.
    let challenged = call(&pol, &alice, "echo", json!({"text": "hi"})).await;
    assert_eq!(challenged.status, StatusCode::FORBIDDEN, "{challenged:?}");
    let challenge = challenged.www_authenticate.unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(r#"scope="mcp mcp:echo""#)
            && challenge.contains("resource_metadata="),
        "{challenge}"
    );
    // Tools outside every rule stay callable.
    assert_eq!(
        call(&pol, &bob, "whoami", json!({})).await.last()["result"]["structuredContent"]["x-authhost-subject"],
        "bob-sub"
    );

    // A batch with a denied call is not forwarded; each request says why.
    let batch = mcp_server::send(&pol, Some(&bob), json!([
        {"jsonrpc": "2.0", "id": "w", "method": "tools/call", "params": {"name": "whoami", "arguments": {}}},
        {"jsonrpc": "2.0", "id": "d", "method": "tools/call", "params": {"name": "delete_records", "arguments": {"table": "t"}}},
    ]))
    .await;
    let answers = batch.last().as_array().expect("a batch answer").clone();
    assert_eq!(answers.len(), 2);
    assert!(
        answers
            .iter()
            .all(|m| m["error"]["code"] == authhost::gateway::error::POLICY_DENIED),
        "{answers:?}"
    );

    // Every denial is in the audit log, with who and what.
    let log = std::fs::read_to_string(audit).unwrap();
    let denied: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "access_denied")
        .collect();
    assert!(
        denied.iter().any(|e| e["user"] == "bob-sub"
            && e["resource"] == "pol"
            && e["provider"] == "up"
            && e["detail"].as_str().unwrap().contains("delete_records")),
        "{denied:?}"
    );
}

#[tokio::test]
async fn scope_rules_apply_to_api_keys_and_sse_lists_are_filtered_event_by_event() {
    let Setup {
        a,
        _upstream: _keep,
        ..
    } = setup().await;
    let pol = a.url("/pol");
    let scopes = vec!["mcp".to_string(), "mcp:echo".to_string()];
    let (_, key) = create_api_key(
        &a.state.store,
        ApiKeySpec {
            name: "echoer",
            server: "pol",
            subject: None,
            groups: &[],
            scopes: &scopes,
            expires_in_days: None,
        },
    )
    .await
    .unwrap();
    let echoed = call(&pol, &key, "echo", json!({"text": "hi"})).await;
    assert_eq!(
        echoed.last()["result"]["content"][0]["text"],
        "hi",
        "{echoed:?}"
    );
    // A key cannot step up: without the scope, a JSON-RPC error and no listing.
    let few = vec!["mcp".to_string()];
    let (_, plain) = create_api_key(
        &a.state.store,
        ApiKeySpec {
            name: "plain",
            server: "pol",
            subject: None,
            groups: &[],
            scopes: &few,
            expires_in_days: None,
        },
    )
    .await
    .unwrap();
    assert!(denial(&call(&pol, &plain, "echo", json!({"text": "hi"})).await).contains("mcp:echo"));
    assert!(!tools(&pol, &plain).await.1.contains(&"echo".to_string()));

    // An OAuth client steps up: a new authorization asking for the scope.
    let client = a.register("step-up").await;
    let pkce = crate::common::server::Pkce::new();
    let url = a.authorize_url(
        &client,
        &pkce,
        &[("resource", &pol), ("scope", "mcp mcp:echo")],
    );
    let done = Browser::new()
        .authorize(&url, "alice", "alice-password")
        .await;
    let (status, stepped) = a
        .exchange_for("/pol", &client, &done.param("code").unwrap(), &pkce)
        .await;
    assert_eq!(status, StatusCode::OK, "{stepped}");
    assert_eq!(stepped["scope"], "mcp mcp:echo");
    let echoed = call(
        &pol,
        stepped["access_token"].as_str().unwrap(),
        "echo",
        json!({"text": "up"}),
    )
    .await;
    assert_eq!(
        echoed.last()["result"]["content"][0]["text"],
        "up",
        "{echoed:?}"
    );
    assert!(
        denial(&call(&pol, &key, "delete_records", json!({"table": "t"})).await).contains("admins")
    );

    // The same policy in front of an MCP server that answers in SSE.
    let sse = a.url("/pol-sse");
    let token = a
        .sign_in_as(
            &Browser::new(),
            &a.register("sse").await,
            "/pol-sse",
            "alice",
        )
        .await;
    let token = token["access_token"].as_str().unwrap();
    let (reply, names) = tools(&sse, token).await;
    assert!(
        reply.content_type.starts_with("text/event-stream"),
        "{reply:?}"
    );
    // Tool rules read the request, up to max_request_bytes.
    let big = call(&sse, token, "echo", json!({"text": "x".repeat(4096)})).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{big:?}");
    assert!(
        big.last()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2048 bytes")
    );
    assert!(
        names.contains(&"delete_records".to_string()) && !names.contains(&"count".to_string()),
        "{names:?}"
    );

    // Without tool rules, SSE notifications stream through before the result.
    let open = a
        .sign_in_as(
            &Browser::new(),
            &a.register("open").await,
            "/sse-open",
            "bob",
        )
        .await;
    let counted = mcp_server::call(
        &a.url("/sse-open"),
        open["access_token"].as_str(),
        "tools/call",
        json!({"name": "count", "arguments": {"n": 3}, "_meta": {"progressToken": "p1"}}),
    )
    .await;
    let progress = counted
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count();
    assert_eq!(progress, 3, "{counted:?}");
    assert_eq!(counted.last()["result"]["content"][0]["text"], "counted 3");
}

#[tokio::test]
async fn a_server_wide_condition_turns_away_everyone_else_with_403() {
    let Setup {
        a,
        _upstream: _keep,
        ..
    } = setup().await;
    let client = a.register("strict").await;
    let alice = a
        .sign_in_as(&Browser::new(), &client, "/strict", "alice")
        .await;
    let bob = a
        .sign_in_as(&Browser::new(), &client, "/strict", "bob")
        .await;
    let strict = a.url("/strict");
    let ok = call(
        &strict,
        alice["access_token"].as_str().unwrap(),
        "whoami",
        json!({}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    let refused = call(
        &strict,
        bob["access_token"].as_str().unwrap(),
        "whoami",
        json!({}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let message = refused.last()["error"]["message"].as_str().unwrap();
    assert!(message.contains("endsWith(\"@example.com\")"), "{message}");
}

/// A request of protocol 2026-07-28: no session, per-request `_meta`, and the method
/// and tool name repeated in headers for intermediaries.
async fn call_2026(
    url: &str,
    token: &str,
    method: &str,
    mut params: Value,
    name_header: Option<&str>,
) -> (StatusCode, Value) {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "policy-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(&json!({"jsonrpc": "2.0", "id": 5, "method": method, "params": params}));
    if let Some(name) = name_header {
        request = request.header("mcp-name", name);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn protocol_2026_requests_pass_and_headers_that_disagree_are_refused() {
    let Setup {
        a,
        bob,
        _upstream: _keep,
        ..
    } = setup().await;
    let pol = a.url("/pol");
    let (status, listed) = call_2026(&pol, &bob, "tools/list", json!({}), None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"whoami") && !names.contains(&"delete_records"),
        "{names:?}"
    );
    let (status, called) = call_2026(
        &pol,
        &bob,
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
        Some("whoami"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{called}");
    assert_eq!(
        called["result"]["structuredContent"]["x-authhost-subject"], "bob-sub",
        "{called}"
    );
    // A header naming an allowed tool next to a body calling a denied one: the
    // headers disagree with the body (MCP's HeaderMismatch), nothing is forwarded.
    let (status, smuggled) = call_2026(
        &pol,
        &bob,
        "tools/call",
        json!({"name": "delete_records", "arguments": {"table": "t"}}),
        Some("whoami"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{smuggled}");
    assert_eq!(smuggled["error"]["code"], -32020, "{smuggled}");
    // And without the header, which 2026-07-28 requires.
    let (status, missing) = call_2026(
        &pol,
        &bob,
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{missing}");
    assert_eq!(missing["error"]["code"], -32020, "{missing}");
}

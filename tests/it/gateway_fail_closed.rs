//! The gateway's policies cannot be bypassed by how a request is written: in front of
//! real MCP servers on the official TypeScript SDK (`createMcpExpressApp`, whose
//! `express.json()` inflates gzip and strips BOMs) and Python SDK, every encoding,
//! charset, duplicate or case-folded key, odd id, batch, method or URI spelling that
//! could smuggle a denied tool, resource or prompt is refused or judged as the server
//! would read it, and the server's ledger shows the denied thing never ran. Lists stay
//! filtered, in JSON and in SSE.

use crate::common::sdk_servers::{Sdk, SdkServer};
use crate::common::server::{Browser, Options, TestAuthhost, mcp_server, start_upstream};
use authhost::config::{McpServerConfig, PolicyConfig};
use authhost::gateway::error::POLICY_DENIED;
use reqwest::StatusCode;
use serde_json::Value;
use std::io::Write;

struct Target {
    a: TestAuthhost,
    server: SdkServer,
    token: String,
    _upstream: crate::common::upstream::Upstream,
}

fn policed(url: &str) -> McpServerConfig {
    McpServerConfig {
        policy: PolicyConfig {
            deny_tools: vec!["admin_*".into()],
            deny_resources: vec!["file:///secret/*".into()],
            deny_prompts: vec!["secret_*".into()],
            ..PolicyConfig::default()
        },
        ..mcp_server("/sdk", url)
    }
}

async fn target(sdk: Sdk, sse: bool) -> Target {
    let server = SdkServer::start(sdk, sse).await;
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("sdk", policed(&server.url))],
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Policy prober").await;
    let tokens = a
        .sign_in_as(&Browser::new(), &client, "/sdk", "alice")
        .await;
    Target {
        token: tokens["access_token"].as_str().unwrap().to_string(),
        a,
        server,
        _upstream: upstream,
    }
}

impl Target {
    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, self.a.url("/sdk"))
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
    }

    /// POST raw bytes with a content type; the status and the JSON-RPC answer (the
    /// last message of an SSE stream).
    async fn post(
        &self,
        content_type: &str,
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .request(reqwest::Method::POST)
            .header("content-type", content_type);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        answer(request.body(body).send().await.unwrap()).await
    }

    async fn json(&self, body: &str) -> (StatusCode, Value) {
        self.post("application/json", &[], body.as_bytes().to_vec())
            .await
    }
}

async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .next_back()
        .unwrap_or(&text)
        .trim()
        .to_string();
    (
        status,
        serde_json::from_str(&json).unwrap_or(Value::String(text)),
    )
}

const CALL_ADMIN: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"everything"}}}"#;

fn gzip(body: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

fn deflate(body: &str) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

fn utf16(body: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(body.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

fn assert_denied(what: &str, (status, answer): &(StatusCode, Value)) {
    let error = answer.as_array().map(|a| &a[a.len() - 1]).unwrap_or(answer);
    assert_eq!(*status, StatusCode::OK, "{what}: {answer}");
    assert_eq!(error["error"]["code"], POLICY_DENIED, "{what}: {answer}");
}

fn assert_refused(what: &str, expected: StatusCode, (status, answer): &(StatusCode, Value)) {
    assert_eq!(*status, expected, "{what}: {answer}");
    assert!(
        answer["error"]["message"].is_string(),
        "{what}: a JSON-RPC error: {answer}"
    );
}

async fn denied_things_never_run(sdk: Sdk, sse: bool) {
    let t = target(sdk, sse).await;
    let admin = CALL_ADMIN;

    assert_denied("a plain call", &t.json(admin).await);
    for (what, encoding, body) in [
        ("gzip", "gzip", gzip(admin)),
        ("deflate", "deflate", deflate(admin)),
        ("brotli, claimed", "br", admin.as_bytes().to_vec()),
        ("gzip, upper case", "GZIP", gzip(admin)),
    ] {
        let sent = t
            .post("application/json", &[("content-encoding", encoding)], body)
            .await;
        assert_refused(what, StatusCode::UNSUPPORTED_MEDIA_TYPE, &sent);
    }
    let utf16_body = t
        .post("application/json; charset=utf-16", &[], utf16(admin))
        .await;
    assert_refused("UTF-16", StatusCode::UNSUPPORTED_MEDIA_TYPE, &utf16_body);
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(admin.as_bytes());
    assert_refused(
        "a BOM",
        StatusCode::BAD_REQUEST,
        &t.post("application/json", &[], bom).await,
    );
    for (what, body) in [
        (
            "a duplicate method",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}"#,
        ),
        (
            "a duplicate name",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"admin_delete","arguments":{"target":"x","text":"x"}}}"#,
        ),
        (
            "a duplicate params",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}},"params":{"name":"admin_delete","arguments":{"target":"x"}}}"#,
        ),
        (
            "Method in another case",
            r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","method":"tools/list","params":{"name":"admin_delete","arguments":{"target":"x"}}}"#,
        ),
        (
            "NAME in another case",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"admin_delete","name":"echo","arguments":{"target":"x","text":"x"}}}"#,
        ),
        (
            "arguments with a long s",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"argument\u{17F}\":{\"text\":\"x\"}}}",
        ),
        ("trailing garbage", &format!("{admin} {{}}")),
        (
            "a lone surrogate",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_delete\ud800","arguments":{"target":"x"}}}"#,
        ),
        (
            "no tool name",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"target":"x"}}}"#,
        ),
        (
            "a resource URI with dot segments",
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public/../secret/keys.txt"}}"#,
        ),
        (
            "a resource URI on localhost",
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file://localhost/secret/keys.txt"}}"#,
        ),
        (
            "a resource URI in capitals",
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"FILE:///secret/keys.txt"}}"#,
        ),
        (
            "a resource URI with backslashes",
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public\\..\\secret\\keys.txt"}}"#,
        ),
    ] {
        assert_refused(what, StatusCode::BAD_REQUEST, &t.json(body).await);
    }
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    assert_refused(
        "deep nesting",
        StatusCode::BAD_REQUEST,
        &t.json(&deep).await,
    );

    // Judged as the server would read it: escapes decoded, every id form a call.
    for (what, body) in [
        (
            "an escaped name",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin\u005fdelete","arguments":{"target":"x"}}}"#,
        ),
        (
            "an escaped method",
            r#"{"jsonrpc":"2.0","id":1,"\u006dethod":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}"#,
        ),
        (
            "id null",
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}"#,
        ),
        (
            "no id",
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}"#,
        ),
        (
            "a batch",
            &format!(
                r#"[{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hi"}}}}}},{admin}]"#
            ),
        ),
        (
            "a secret resource",
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///secret/keys.txt"}}"#,
        ),
        (
            "a secret prompt",
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"secret_prompt"}}"#,
        ),
    ] {
        assert_denied(what, &t.json(body).await);
    }
    // A body on GET or DELETE is not read by the policy, so it is not sent on.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = t
            .request(method.clone())
            .header("content-type", "application/json")
            .body(admin)
            .send()
            .await
            .unwrap();
        assert_refused(
            &format!("a {method} body"),
            StatusCode::BAD_REQUEST,
            &answer(response).await,
        );
    }

    // Lists leave out what the caller may not use.
    let list =
        |method: &str| format!(r#"{{"jsonrpc":"2.0","id":3,"method":"{method}","params":{{}}}}"#);
    let names = |answer: &Value, list: &str, field: &str| -> Vec<String> {
        answer["result"][list]
            .as_array()
            .unwrap_or_else(|| panic!("{list}: {answer}"))
            .iter()
            .map(|e| e[field].as_str().unwrap().to_string())
            .collect()
    };
    let (_, tools) = t.json(&list("tools/list")).await;
    let tools = names(&tools, "tools", "name");
    assert!(
        tools.contains(&"echo".to_string()) && !tools.contains(&"admin_delete".to_string()),
        "{tools:?}"
    );
    let (_, resources) = t.json(&list("resources/list")).await;
    assert_eq!(
        names(&resources, "resources", "uri"),
        ["file:///public/readme.txt"]
    );
    let (_, templates) = t.json(&list("resources/templates/list")).await;
    assert_eq!(
        names(&templates, "resourceTemplates", "uriTemplate"),
        ["file:///users/{name}.txt"]
    );
    let (_, prompts) = t.json(&list("prompts/list")).await;
    assert_eq!(names(&prompts, "prompts", "name"), ["greet"]);

    // What is allowed runs, and nothing denied ever did.
    let (status, echoed) = t
        .json(r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"text":"allowed"}}}"#)
        .await;
    assert_eq!(status, StatusCode::OK, "{echoed}");
    let ran = t.server.executions().await;
    assert_eq!(
        ran,
        [("tool".to_string(), "echo".to_string())],
        "{sdk:?}: {ran:?}"
    );
}

#[tokio::test]
async fn typescript_sdk_server_json() {
    denied_things_never_run(Sdk::TypeScript, false).await;
}

#[tokio::test]
async fn typescript_sdk_server_sse() {
    denied_things_never_run(Sdk::TypeScript, true).await;
}

#[tokio::test]
async fn python_sdk_server_json() {
    denied_things_never_run(Sdk::Python, false).await;
}

#[tokio::test]
async fn python_sdk_server_sse() {
    denied_things_never_run(Sdk::Python, true).await;
}

//! Prints, in one run: authenticated `tools/call` throughput and p50/p99 latency through
//! authhost's gateway versus straight to the same MCP server (an rmcp server answering
//! in JSON), 16 concurrent clients, and the overhead ratios; also through a server with
//! a CEL tool policy (the request is read and the condition evaluated on every call).
//!
//! `cargo bench -p authhost-tests --bench gateway`

#[path = "../it/common/mod.rs"]
#[allow(dead_code)]
mod common;

use authhost::config::{McpServerConfig, PolicyConfig, ToolRule};
use common::server::{Browser, Options, TestAuthhost, mcp_server, start_upstream};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const RUN: Duration = Duration::from_secs(5);

struct Figures {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(url: String, token: Option<String>) -> Figures {
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hello"}}});
    let deadline = Instant::now() + RUN;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, url, token, body) = (http.clone(), url.clone(), token.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let mut request = http
                    .post(&url)
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-11-25")
                    .json(&body);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await.expect("answered");
                assert!(response.status().is_success(), "{}", response.status());
                let text = response.text().await.unwrap();
                assert!(text.contains("hello"), "{text}");
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    Figures {
        rps: all.len() as f64 / RUN.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let upstream = start_upstream();
        let mcp = common::mcp_server::start(true).await;
        let a = TestAuthhost::start(
            &upstream,
            Options {
                mcp_servers: vec![
                    ("bench", mcp_server("/bench", &mcp)),
                    (
                        "policed",
                        McpServerConfig {
                            policy: PolicyConfig {
                                tools: vec![ToolRule {
                                    tools: vec!["echo".into()],
                                    allow: Some(r#""admins" in user.groups"#.into()),
                                    scopes: vec![],
                                }],
                                ..PolicyConfig::default()
                            },
                            ..mcp_server("/policed", &mcp)
                        },
                    ),
                ],
                ..Options::default()
            },
        )
        .await;
        let client = a.register("bench").await;
        let tokens = a.sign_in_as(&Browser::new(), &client, "/bench", "alice").await;
        let token = tokens["access_token"].as_str().unwrap().to_string();
        let policed = a.sign_in_as(&Browser::new(), &client, "/policed", "alice").await;
        let policed = policed["access_token"].as_str().unwrap().to_string();
        let a = Arc::new(a);

        let direct = load(mcp.clone(), None).await;
        let gateway = load(a.url("/bench"), Some(token)).await;
        let with_policy = load(a.url("/policed"), Some(policed)).await;
        for (name, f) in [
            ("direct", &direct),
            ("through authhost", &gateway),
            ("  + tool policy", &with_policy),
        ] {
            println!(
                "{name:<17} tools/call: {:>7.0} req/s  p50 {:>8.2?}  p99 {:>8.2?}  ({CLIENTS} concurrent clients, {RUN:?})",
                f.rps, f.p50, f.p99
            );
        }
        println!(
            "authhost / direct: throughput {:.2}, p50 {:.2}, p99 {:.2}",
            gateway.rps / direct.rps,
            gateway.p50.as_secs_f64() / direct.p50.as_secs_f64(),
            gateway.p99.as_secs_f64() / direct.p99.as_secs_f64()
        );
        println!(
            "with policy / without: throughput {:.2}, p50 {:.2}",
            with_policy.rps / gateway.rps,
            with_policy.p50.as_secs_f64() / gateway.p50.as_secs_f64()
        );
    });
}

//! Browser-based MCP clients against the embedded default (`serve --dev`), in real
//! headless Chromium: (a) the official TypeScript SDK's client auth running inside a
//! page on another origin (discovery, registration, PKCE, token exchange and an MCP
//! call, all cross-origin fetches: CORS); (b) the real MCP Inspector, which does its
//! OAuth through its own backend.

use crate::common::clients::node;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `serve --dev` on a free port: the development IdP, the demo MCP server at `/mcp`,
/// CORS for any origin. Its MCP URL.
async fn serve_dev() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = authhost::config::Config::default();
    config.server.listen = listener.local_addr().unwrap();
    config.server.data_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dev-{}", authhost::crypto::random_token()));
    config.runtime.compile_cache_dir =
        Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache"));
    let (config, idp) = authhost::dev::embedded_config(config).await.unwrap();
    let base = config.server.base_url();
    let server = authhost::server::build(config).await.unwrap();
    let app = authhost::server::app(&server)
        .merge(idp)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("{base}/mcp")
}

fn chromium_available() -> bool {
    if Path::new("/usr/bin/chromium").exists() {
        return true;
    }
    assert!(
        std::env::var("AUTHHOST_REQUIRE_BROWSER").is_err(),
        "AUTHHOST_REQUIRE_BROWSER is set but /usr/bin/chromium is missing"
    );
    eprintln!("SKIPPED: no /usr/bin/chromium (scripts/test installs it)");
    false
}

/// Run `node tests/<folder>/run.mjs` against `url`, signing in as alice.
async fn run(folder: &'static str, url: String) -> Value {
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("screenshots-{folder}"));
    let mut args: Vec<String> = ["--url", &url, "--username", "alice", "--password", "alice"]
        .map(String::from)
        .into();
    args.extend(["--screenshot-dir".into(), shots.display().to_string()]);
    node(folder, "run.mjs", args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_client_auth_runs_in_a_page_on_another_origin() {
    if !chromium_available() {
        return;
    }
    let url = serve_dev().await;
    let result = run("browser-client", url).await;
    assert_ne!(result["page_origin"], result["authhost_origin"], "{result}");
    assert_eq!(result["whoami"]["username"], "alice", "{result}");
    assert!(result["cors_requests"].as_u64().unwrap() >= 5, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_inspector_signs_in_lists_tools_and_calls_whoami() {
    if !chromium_available() {
        return;
    }
    let url = serve_dev().await;
    let result = run("inspector", url).await;
    let tools: Vec<&str> = result["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{result}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"whoami"), "{result}");
    assert!(result["whoami"].to_string().contains("alice"), "{result}");
}

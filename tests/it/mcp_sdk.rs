//! The official MCP TypeScript SDK client (tests/e2e) against authhost, with a real
//! OpenID provider upstream: discovery from the 401, registration, PKCE, consent and
//! login, `whoami`, and a refresh after the access token expires. Once driven by
//! fetch, once by real headless Chromium clicking through the pages.

use crate::common::server::{Options, TestAuthhost, start_upstream};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const ACCESS_TOKEN_TTL: u64 = 3;

async fn run_client(mode: &'static str) {
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            access_token_ttl: Some(ACCESS_TOKEN_TTL),
            ..Options::default()
        },
    )
    .await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("e2e");
    if !dir.join("node_modules/@modelcontextprotocol/sdk").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "npm ci in tests/e2e failed");
    }
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("screenshots-{mode}"));
    let url = a.url("/mcp");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("mcp-client.mjs"))
            .args([
                "--url",
                &url,
                "--mode",
                mode,
                "--username",
                "alice",
                "--password",
                "alice-password",
            ])
            .arg("--screenshot-dir")
            .arg(&shots)
            .output()
            .expect("run node tests/e2e/mcp-client.mjs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "client output: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(
        result["ok"],
        true,
        "{result}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let first: Value = serde_json::from_str(result["first"].as_str().unwrap()).unwrap();
    assert_eq!(first["subject"], "alice-sub");
    assert_eq!(first["email"], "alice@example.com");
    assert_eq!(
        result["waited"], true,
        "the access token lifetime is {ACCESS_TOKEN_TTL}s"
    );
    assert_eq!(
        result["refreshed"], true,
        "the SDK refreshed after expiry: {result}"
    );
    let after: Value = serde_json::from_str(result["after_expiry"][0].as_str().unwrap()).unwrap();
    assert_eq!(after["subject"], "alice-sub");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_client_completes_the_flow_without_a_browser() {
    run_client("headless").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_client_completes_the_flow_in_headless_chromium() {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        assert!(
            std::env::var("AUTHHOST_REQUIRE_BROWSER").is_err(),
            "AUTHHOST_REQUIRE_BROWSER is set but /usr/bin/chromium is missing"
        );
        eprintln!("SKIPPED: no /usr/bin/chromium (scripts/test installs it)");
        return;
    }
    run_client("browser").await;
}

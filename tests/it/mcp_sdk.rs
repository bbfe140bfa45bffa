//! The official MCP TypeScript SDK client (tests/e2e) against authhost, with a real
//! OpenID provider upstream: discovery from the 401, registration, PKCE, consent and
//! login, `whoami`, and a refresh after the access token expires. Once driven by
//! fetch, once by real headless Chromium clicking through the pages.

use crate::common::clients::node;
use crate::common::server::{Options, TestAuthhost, start_upstream};
use serde_json::Value;
use std::path::PathBuf;

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
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("screenshots-{mode}"));
    let mut args: Vec<String> = ["--url", &a.url("/mcp"), "--mode", mode]
        .map(String::from)
        .into();
    args.extend(["--username", "alice", "--password", "alice-password"].map(String::from));
    args.extend(["--screenshot-dir".into(), shots.display().to_string()]);
    let result = node("e2e", "mcp-client.mjs", args).await;
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

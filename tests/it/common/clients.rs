//! The official MCP SDK clients as child processes, each printing one line of JSON:
//! the Node ones (tests/e2e, tests/browser-client, tests/inspector) and the Python one
//! of the authorization extensions (tests/machine-clients, in the venv of
//! tests/mcp-servers/py).

use super::sdk_servers::python_sdk;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The one line of JSON a client printed.
fn result(what: &str, output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "{what}: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Run `node tests/<folder>/<script> <args>` (after `npm ci` there, once) and return
/// its result, which must say `ok`.
pub async fn node(folder: &'static str, script: &'static str, args: Vec<String>) -> Value {
    let dir = tests_dir().join(folder);
    let output = tokio::task::spawn_blocking(move || {
        if !dir.join("node_modules").exists() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "npm ci in tests/{folder} failed");
        }
        Command::new("node")
            .arg(dir.join(script))
            .args(&args)
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let result = result(&format!("tests/{folder}/{script}"), &output);
    assert_eq!(
        result["ok"],
        true,
        "{result}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    result
}

/// Run `tests/machine-clients/client.py <args>` with the official Python SDK; its
/// result, `ok` or not.
pub async fn python(args: &[String]) -> Value {
    let output = tokio::process::Command::new(python_sdk().await)
        .arg(tests_dir().join("machine-clients/client.py"))
        .args(args)
        .output()
        .await
        .expect("run tests/machine-clients/client.py");
    result("tests/machine-clients/client.py", &output)
}

/// An EC key pair made by the Python client, in a folder of its own: `key.pem`
/// (private) and `jwks.json` (public, key id `machine-1`).
pub async fn key_pair() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("keys-{}", authhost::crypto::random_token()));
    std::fs::create_dir_all(&dir).unwrap();
    python(&["keygen".into(), dir.display().to_string()]).await;
    dir
}

/// The public keys in `dir/jwks.json`, served on loopback (a client or identity
/// provider publishing its keys); their URL.
pub async fn serve_public_keys(dir: &std::path::Path) -> String {
    let jwks = std::fs::read_to_string(dir.join("jwks.json")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/keys", axum::routing::get(move || async move { jwks }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/keys")
}

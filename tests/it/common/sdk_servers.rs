//! Real MCP servers on the official TypeScript (`createMcpExpressApp`) and Python SDKs
//! (tests/mcp-servers), as child processes: the servers authhost's policies must hold
//! in front of, whatever their SDK makes of a request. Each keeps a ledger of what it
//! executed (`GET /executions`).

use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sdk {
    TypeScript,
    Python,
}

pub struct SdkServer {
    /// The MCP endpoint.
    pub url: String,
    _child: Child,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mcp-servers")
}

/// Install each SDK once (a fresh clone running `cargo test`; scripts/test does it too).
fn setup(sdk: Sdk) {
    static TS: std::sync::Once = std::sync::Once::new();
    static PY: std::sync::Once = std::sync::Once::new();
    let (once, script) = match sdk {
        Sdk::TypeScript => (&TS, "ts/setup.sh"),
        Sdk::Python => (&PY, "py/setup.sh"),
    };
    once.call_once(|| {
        let status = std::process::Command::new("bash")
            .arg(dir().join(script))
            .status()
            .expect("run tests/mcp-servers setup");
        assert!(status.success(), "tests/mcp-servers/{script} failed");
    });
}

/// The Python of the venv holding the official MCP Python SDK (tests/mcp-servers/py).
pub async fn python_sdk() -> PathBuf {
    tokio::task::spawn_blocking(|| setup(Sdk::Python))
        .await
        .unwrap();
    dir().join("py/.venv/bin/python")
}

impl SdkServer {
    /// Start one, answering in JSON or (with `sse`) in SSE.
    pub async fn start(sdk: Sdk, sse: bool) -> SdkServer {
        tokio::task::spawn_blocking(move || setup(sdk))
            .await
            .unwrap();
        let mut command = match sdk {
            Sdk::TypeScript => {
                let mut c = Command::new("node");
                c.arg(dir().join("ts/server.mjs"));
                c
            }
            Sdk::Python => {
                let mut c = Command::new(dir().join("py/.venv/bin/python"));
                c.arg(dir().join("py/server.py"));
                c
            }
        };
        command.args(["--port", "0"]);
        if sse {
            command.arg("--sse");
        }
        // It exits when its stdin closes, so it never outlives the test.
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start a tests/mcp-servers server");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the MCP server reports ready within 30 s")
        .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("{sdk:?} server did not start: {line:?}"));
        SdkServer {
            url: ready["url"].as_str().unwrap().to_string(),
            _child: child,
        }
    }

    fn origin(&self) -> &str {
        self.url.trim_end_matches("/mcp")
    }

    /// Everything it executed: `(kind, name)`, in order.
    pub async fn executions(&self) -> Vec<(String, String)> {
        let ledger: Value = reqwest::get(format!("{}/executions", self.origin()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ledger
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

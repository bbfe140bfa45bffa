//! The audit log: one event per authentication decision (sign-in, consent, token
//! issue, refresh, revocation, denial) with user, client and provider, never a secret.
//! Events go to the log under target `audit`, and, when `logging.audit_file` is set,
//! to that file as JSON lines.

use serde::Serialize;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

tokio::task_local! {
    /// The client address of the request being handled (see [`crate::forwarded`]).
    pub static CLIENT_ADDR: Option<IpAddr>;
}

/// One audit event. Fields that do not apply stay empty.
#[derive(Debug, Default, Serialize)]
pub struct Event<'a> {
    /// `sign_in`, `sign_in_failed`, `consent`, `consent_denied`, `token_issued`,
    /// `token_refreshed`, `refresh_reuse`, `code_replay`, `revoked`, `access_denied`,
    /// `upstream_token_refreshed`, `upstream_token_expired`, `authentication_failed`.
    pub event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'a str>,
    /// The MCP server (resource) concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<&'a str>,
    /// What happened, in words (a tool name, a reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct Audit {
    file: Option<Mutex<std::fs::File>>,
}

impl Audit {
    pub fn open(path: Option<&Path>) -> anyhow::Result<Audit> {
        let file = match path {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        anyhow::anyhow!("logging.audit_file: cannot open {}: {e}", path.display())
                    })?;
                Some(Mutex::new(file))
            }
            None => None,
        };
        Ok(Audit { file })
    }

    pub fn record(&self, event: Event<'_>) {
        let ip = CLIENT_ADDR.try_with(|a| *a).ok().flatten();
        tracing::info!(
            target: "audit",
            event = event.event,
            user = event.user,
            client_id = event.client_id,
            provider = event.provider,
            resource = event.resource,
            detail = event.detail.as_deref(),
            ip = ip.map(|a| a.to_string()).as_deref(),
        );
        if let Some(file) = &self.file {
            #[derive(Serialize)]
            struct Line<'a> {
                time: i64,
                #[serde(flatten)]
                event: &'a Event<'a>,
                #[serde(skip_serializing_if = "Option::is_none")]
                ip: Option<IpAddr>,
            }
            let line = Line {
                time: crate::clock::now(),
                event: &event,
                ip,
            };
            if let Ok(mut text) = serde_json::to_string(&line) {
                text.push('\n');
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = file.write_all(text.as_bytes()) {
                    tracing::error!("writing the audit file: {e}");
                }
            }
        }
    }
}

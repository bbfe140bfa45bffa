//! A protected MCP server as the gateway uses it: its `[mcp_servers.<name>]` block,
//! checked and compiled (policy, header names, static token) once, at start.

use super::forward::IdentityHeaders;
use super::policy::Policy;
use crate::config::{AuthMode, Config, McpServerConfig};
use crate::registry::Registry;
use crate::secret::Secret;
use std::sync::Arc;
use url::Url;

/// A protected MCP server.
#[derive(Debug)]
pub struct Resource {
    pub name: String,
    pub display_name: String,
    /// The path at authhost, e.g. `/mcp`.
    pub path: String,
    /// The resource identifier: `<issuer><path>` (RFC 8707, the token audience).
    pub url: String,
    pub upstream: Url,
    /// The provider instance users sign in with.
    pub provider: String,
    pub scopes: Vec<String>,
    /// The `[mcp_servers.<name>]` block as configured.
    pub settings: McpServerConfig,
    pub policy: Policy,
    pub identity_headers: IdentityHeaders,
    /// `static_token` mode: the token callers present.
    pub static_token: Option<Secret>,
}

impl Resource {
    /// Whether clients may ask for `scope` for this server: its own scopes, and those
    /// its tool rules require (for step-up).
    pub fn offers_scope(&self, scope: &str) -> bool {
        self.scopes
            .iter()
            .chain(self.policy.tool_scopes())
            .any(|s| s == scope)
    }
}

/// The protected MCP servers, checked: every problem is listed under its key.
pub fn build(
    config: &Config,
    issuer: &str,
    registry: &Registry,
) -> Result<Vec<Arc<Resource>>, Vec<String>> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (name, server) in &config.mcp_servers {
        let key = |k: &str| format!("mcp_servers.{name}.{k}");
        if !server.path.starts_with('/')
            || server.path.starts_with("/.well-known")
            || server.path.len() < 2
        {
            problems.push(format!(
                "{}: `{}` must be a path such as /mcp",
                key("path"),
                server.path
            ));
        }
        let upstream = match url::Url::parse(&server.upstream) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                problems.push(format!(
                    "{}: `{}` is not an http(s) URL",
                    key("upstream"),
                    server.upstream
                ));
                None
            }
        };
        let provider = match &server.provider {
            Some(p) => Some(p.clone()),
            None if registry.instances.len() == 1 => registry.instances.keys().next().cloned(),
            None => None,
        };
        let needs_provider = server.auth != AuthMode::StaticToken;
        let provider = match provider {
            Some(p) if registry.instances.contains_key(&p) => Some(p),
            // Configured but broken: its own problems are reported under `providers`.
            Some(p) if config.providers.contains_key(&p) => None,
            Some(p) => {
                problems.push(format!("{}: no provider instance `{p}`", key("provider")));
                None
            }
            None if !needs_provider => Some(String::new()),
            None => {
                problems.push(format!(
                    "{}: required when there is not exactly one provider",
                    key("provider")
                ));
                None
            }
        };
        let static_token = match static_token(server) {
            Ok(token) => token,
            Err(why) => {
                problems.push(format!("mcp_servers.{name}: {why}"));
                None
            }
        };
        let policy = Policy::compile(&server.policy, &key("policy"))
            .map_err(|list| problems.extend(list))
            .ok();
        let identity_headers = IdentityHeaders::new(
            &server.identity,
            &server.upstream_token_header,
            &format!("mcp_servers.{name}"),
        )
        .map_err(|list| problems.extend(list))
        .ok();
        if server.forward_upstream_token && server.auth == AuthMode::StaticToken {
            problems.push(format!(
                "{}: a static_token server has no user upstream token to forward",
                key("forward_upstream_token")
            ));
        }
        if let (Some(upstream), Some(provider), Some(policy), Some(identity_headers)) =
            (upstream, provider, policy, identity_headers)
        {
            let path = server.path.trim_end_matches('/').to_string();
            out.push(Arc::new(Resource {
                name: name.clone(),
                display_name: server.display_name.clone().unwrap_or_else(|| name.clone()),
                url: format!("{issuer}{path}"),
                path,
                upstream,
                provider,
                scopes: server.scopes.clone().unwrap_or_else(|| vec!["mcp".into()]),
                settings: server.clone(),
                policy,
                identity_headers,
                static_token,
            }));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The shared token of a `static_token` server, from its variable or file.
fn static_token(server: &McpServerConfig) -> Result<Option<Secret>, String> {
    let from_env = server.static_token_env.as_ref().map(|var| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("static_token_env: environment variable `{var}` is not set"))
    });
    let from_file = server.static_token_file.as_ref().map(|path| {
        std::fs::read_to_string(path)
            .map(|v| v.trim().to_string())
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                format!(
                    "static_token_file: cannot read a token from {}",
                    path.display()
                )
            })
    });
    let token = match (from_env, from_file) {
        (Some(_), Some(_)) => {
            return Err("set static_token_env or static_token_file, not both".into());
        }
        (Some(t), None) | (None, Some(t)) => Some(t?),
        (None, None) => None,
    };
    match (server.auth, token) {
        (AuthMode::StaticToken, None) => {
            Err("auth = \"static_token\" needs static_token_env or static_token_file".into())
        }
        (AuthMode::StaticToken, Some(token)) if token.len() < 16 => {
            Err("the static token is shorter than 16 characters; use a long random value".into())
        }
        (AuthMode::StaticToken, Some(token)) => Ok(Some(Secret::new(token))),
        (_, Some(_)) => {
            Err("static_token_env / static_token_file only apply to auth = \"static_token\"".into())
        }
        (_, None) => Ok(None),
    }
}

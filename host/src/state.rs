//! What every request handler shares.

use crate::audit::Audit;
use crate::config::{AuthMode, Config, McpServerConfig};
use crate::crypto::Sealer;
use crate::gateway::cache::ExpiringCache;
use crate::gateway::caller::User;
use crate::gateway::forward::IdentityHeaders;
use crate::gateway::policy::Policy;
use crate::gateway::upstream_token::RefreshLocks;
use crate::metrics::Metrics;
use crate::oauth::clients::Clients;
use crate::oauth::jwt::{AccessClaims, Signer};
use crate::registry::Registry;
use crate::secret::Secret;
use crate::store::{Grant, Store};
use std::sync::Arc;
use url::Url;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// authhost's issuer identifier: its public base URL.
    pub issuer: String,
    pub store: Store,
    pub sealer: Arc<Sealer>,
    pub signer: Arc<Signer>,
    pub registry: Arc<Registry>,
    pub clients: Arc<Clients>,
    pub resources: Arc<Vec<Arc<Resource>>>,
    /// For proxying to MCP servers.
    pub http: reqwest::Client,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<Audit>,
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Upstream tokens checked in `client_token` mode, by provider and token hash.
    pub client_tokens: Arc<ExpiringCache<User>>,
    /// Access tokens whose signature checked out, until they expire.
    pub access_tokens: Arc<ExpiringCache<AccessClaims>>,
    /// Grants found active, with the store's revocation count at the time.
    pub grants: Arc<ExpiringCache<(Grant, u64)>>,
    pub refresh_locks: Arc<RefreshLocks>,
}

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

impl AppState {
    /// The MCP servers clients get authhost's tokens for (auth mode `oauth_proxy`).
    pub fn oauth_resources(&self) -> impl Iterator<Item = &Arc<Resource>> {
        self.resources
            .iter()
            .filter(|r| r.settings.auth == AuthMode::OauthProxy)
    }

    /// The resource a `resource` parameter names; the only one when none is given.
    pub fn resource(&self, requested: Option<&str>) -> Option<&Resource> {
        match requested {
            Some(url) => {
                let url = url.trim_end_matches('/');
                self.oauth_resources().find(|r| r.url == url).map(|r| &**r)
            }
            None => {
                let mut all = self.oauth_resources();
                match (all.next(), all.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }

    /// Where the protected resource metadata of `resource` lives (RFC 9728 3.1).
    pub fn resource_metadata_url(&self, resource: &Resource) -> String {
        format!(
            "{}/.well-known/oauth-protected-resource{}",
            self.issuer, resource.path
        )
    }

    /// Whether pages are served over https (cookie attributes depend on it).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

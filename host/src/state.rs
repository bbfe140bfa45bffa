//! What every request handler shares.

use crate::config::Config;
use crate::crypto::Sealer;
use crate::oauth::clients::Clients;
use crate::oauth::jwt::Signer;
use crate::registry::Registry;
use crate::store::Store;
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
    pub resources: Arc<Vec<Resource>>,
    /// For proxying to MCP servers.
    pub http: reqwest::Client,
}

/// A protected MCP server.
#[derive(Debug, Clone)]
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
}

impl AppState {
    /// The resource a `resource` parameter names; the only one when none is given.
    pub fn resource(&self, requested: Option<&str>) -> Option<&Resource> {
        match requested {
            Some(url) => {
                let url = url.trim_end_matches('/');
                self.resources.iter().find(|r| r.url == url)
            }
            None if self.resources.len() == 1 => self.resources.first(),
            None => None,
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

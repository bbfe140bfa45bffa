//! What every request handler shares.

use crate::audit::Audit;
use crate::config::{AuthMode, Config};
use crate::crypto::Sealer;
use crate::gateway::cache::ExpiringCache;
use crate::gateway::caller::{ActiveGrant, User, VerifiedToken};
pub use crate::gateway::resource::Resource;
use crate::gateway::upstream_token::RefreshLocks;
use crate::metrics::Metrics;
use crate::oauth::clients::Clients;
use crate::oauth::jwt::Signer;
use crate::rate_limit::RateLimits;
use crate::registry::Registry;
use crate::store::Store;
use std::sync::Arc;

/// The state every handler gets: one `Arc`, so handing it to a request is one atomic
/// increment rather than one per field.
pub type AppState = Arc<Shared>;

pub struct Shared {
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
    pub http: crate::gateway::forward::UpstreamClient,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<Audit>,
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Upstream tokens checked in `client_token` mode, by provider and token hash:
    /// the user, or `None` when the provider refused the token.
    pub client_tokens: Arc<ExpiringCache<Option<User>>>,
    /// Access tokens whose signature checked out, until they expire.
    pub access_tokens: Arc<ExpiringCache<Arc<VerifiedToken>>>,
    /// Grants found active, with the store's revocation count at the time.
    pub grants: Arc<ExpiringCache<(Arc<ActiveGrant>, u64)>>,
    pub refresh_locks: Arc<RefreshLocks>,
    pub rate_limits: Arc<RateLimits>,
}

impl Shared {
    /// The MCP servers clients get authhost's tokens for (auth mode `oauth_proxy`).
    pub fn oauth_resources(&self) -> impl Iterator<Item = &Arc<Resource>> {
        self.resources
            .iter()
            .filter(|r| r.settings.auth == AuthMode::OauthProxy)
    }

    /// The resource a `resource` parameter names (compared in canonical form); the
    /// only one when none is given.
    pub fn resource(&self, requested: Option<&str>) -> Option<&Resource> {
        match requested {
            Some(url) => {
                let url = crate::config::canonical_url(url)?;
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

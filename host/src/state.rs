//! What every request handler shares: configuration, the store, and the domain's
//! services. The gateway keeps its own caches beside it (`gateway::Gateway`).

use crate::audit::Audit;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::Sealer;
use crate::domain::clients::Clients;
use crate::domain::grants::Grants;
use crate::domain::id_jag::TrustedIssuers;
use crate::domain::keys::Signer;
use crate::domain::resources::Resources;
use crate::domain::sign_in::SignIns;
use crate::metrics::Metrics;
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
    pub clock: Arc<dyn Clock>,
    pub store: Store,
    pub sealer: Arc<Sealer>,
    pub signer: Arc<Signer>,
    pub registry: Arc<Registry>,
    pub clients: Arc<Clients>,
    pub grants: Grants,
    pub sign_ins: SignIns,
    /// Enterprise identity providers whose ID-JAGs `/token` redeems.
    pub trusted_issuers: TrustedIssuers,
    pub resources: Resources,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<Audit>,
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    pub rate_limits: Arc<RateLimits>,
}

impl Shared {
    /// Whether pages are served over https (cookie attributes depend on it).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

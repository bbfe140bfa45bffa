//! Host-side bindings of `wit/provider.wit`.

wasmtime::component::bindgen!({
    world: "provider",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::authhost::provider::http_client::{ClientAuth, HttpError, Request, Response};
pub use self::authhost::provider::types::{
    AuthorizeRequest, Claims, CodeExchange, ProviderConfig, ProviderError, ProviderInfo,
    SettingKind, SettingSpec, TokenKind, TokenSet,
};
use self::exports::authhost::provider::{oauth_provider, token_audience};
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{AsContextMut, Result};

/// The interface name every provider exports, without its version.
pub const CONTRACT_EXPORT: &str = "authhost:provider/oauth-provider";

/// The contract version this host was built against; every `0.1.x` component loads.
pub const CONTRACT_VERSION: &str = "0.1.1";

/// Where a component's exports are. `oauth-provider` is required; interfaces added in
/// later `0.1.x` versions are optional, so components built earlier keep loading.
pub struct ExportIndices {
    core: oauth_provider::GuestIndices,
    audience: Option<token_audience::GuestIndices>,
}

/// The exports of one instantiated component.
pub struct Exports {
    pub core: oauth_provider::Guest,
    /// `token-audience` (0.1.1), when the component has it.
    pub audience: Option<token_audience::Guest>,
}

impl ExportIndices {
    pub fn new<T: 'static>(pre: &InstancePre<T>) -> Result<ExportIndices> {
        Ok(ExportIndices {
            core: oauth_provider::GuestIndices::new(pre)?,
            audience: token_audience::GuestIndices::new(pre).ok(),
        })
    }

    pub fn has_audience_check(&self) -> bool {
        self.audience.is_some()
    }

    pub fn load(&self, mut store: impl AsContextMut, instance: &Instance) -> Result<Exports> {
        let core = self.core.load(&mut store, instance)?;
        let audience = match &self.audience {
            Some(indices) => Some(indices.load(&mut store, instance)?),
            None => None,
        };
        Ok(Exports { core, audience })
    }
}

impl TokenSet {
    /// An access token alone, as a client presents it (`client_token` mode).
    pub fn bearer(access_token: &str) -> TokenSet {
        TokenSet {
            access_token: access_token.to_string(),
            token_type: "Bearer".into(),
            expires_in: None,
            refresh_token: None,
            id_token: None,
            scope: None,
            extra: Vec::new(),
        }
    }
}

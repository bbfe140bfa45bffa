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
use super::call::CallState;
use super::legacy;
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{AsContextMut, Result, Store};

/// The interface name every provider exports, without its version.
pub const CONTRACT_EXPORT: &str = "authhost:provider/oauth-provider";

/// The contract version this host was built against; `0.2.x` components load directly,
/// `0.1.x` ones through the adapter in `legacy.rs`.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Where a component's exports are, by the contract it was built against.
pub enum ExportIndices {
    Current {
        core: oauth_provider::GuestIndices,
        audience: Option<token_audience::GuestIndices>,
    },
    Legacy(legacy::ExportIndices),
}

/// The exports of one instantiated component, called in the current contract's terms.
pub enum Exports {
    Current {
        core: oauth_provider::Guest,
        audience: Option<token_audience::Guest>,
    },
    Legacy(legacy::Exports),
}

impl ExportIndices {
    /// Locate the exports of a component built against `contract`.
    pub fn new<T: 'static>(pre: &InstancePre<T>, contract: &semver::Version) -> Result<Self> {
        if contract.major == 0 && contract.minor == 1 {
            return Ok(ExportIndices::Legacy(legacy::ExportIndices::new(pre)?));
        }
        Ok(ExportIndices::Current {
            core: oauth_provider::GuestIndices::new(pre)?,
            audience: token_audience::GuestIndices::new(pre).ok(),
        })
    }

    pub fn has_audience_check(&self) -> bool {
        match self {
            ExportIndices::Current { audience, .. } => audience.is_some(),
            ExportIndices::Legacy(legacy) => legacy.has_audience_check(),
        }
    }

    pub fn load(&self, mut store: impl AsContextMut, instance: &Instance) -> Result<Exports> {
        Ok(match self {
            ExportIndices::Current { core, audience } => Exports::Current {
                core: core.load(&mut store, instance)?,
                audience: match audience {
                    Some(indices) => Some(indices.load(&mut store, instance)?),
                    None => None,
                },
            },
            ExportIndices::Legacy(legacy) => Exports::Legacy(legacy.load(store, instance)?),
        })
    }
}

/// A call's result: the outer error is a trap, the inner one the provider's answer.
type Outcome<T> = Result<Result<T, ProviderError>>;

impl Exports {
    pub async fn info(&self, store: &mut Store<CallState>) -> Result<ProviderInfo> {
        match self {
            Exports::Current { core, .. } => core.call_info(store).await,
            Exports::Legacy(legacy) => legacy.info(store).await,
        }
    }

    pub async fn authorize_url(
        &self,
        store: &mut Store<CallState>,
        config: &ProviderConfig,
        request: &AuthorizeRequest,
    ) -> Outcome<String> {
        match self {
            Exports::Current { core, .. } => core.call_authorize_url(store, config, request).await,
            Exports::Legacy(legacy) => legacy.authorize_url(store, config, request).await,
        }
    }

    pub async fn exchange_code(
        &self,
        store: &mut Store<CallState>,
        config: &ProviderConfig,
        exchange: &CodeExchange,
    ) -> Outcome<TokenSet> {
        match self {
            Exports::Current { core, .. } => core.call_exchange_code(store, config, exchange).await,
            Exports::Legacy(legacy) => legacy.exchange_code(store, config, exchange).await,
        }
    }

    pub async fn refresh(
        &self,
        store: &mut Store<CallState>,
        config: &ProviderConfig,
        refresh_token: &str,
    ) -> Outcome<TokenSet> {
        match self {
            Exports::Current { core, .. } => core.call_refresh(store, config, refresh_token).await,
            Exports::Legacy(legacy) => legacy.refresh(store, config, refresh_token).await,
        }
    }

    pub async fn user_claims(
        &self,
        store: &mut Store<CallState>,
        config: &ProviderConfig,
        tokens: &TokenSet,
    ) -> Outcome<Claims> {
        match self {
            Exports::Current { core, .. } => core.call_user_claims(store, config, tokens).await,
            Exports::Legacy(legacy) => legacy.user_claims(store, config, tokens).await,
        }
    }

    pub async fn revoke(
        &self,
        store: &mut Store<CallState>,
        config: &ProviderConfig,
        token: &str,
        kind: TokenKind,
    ) -> Outcome<()> {
        match self {
            Exports::Current { core, .. } => core.call_revoke(store, config, token, kind).await,
            Exports::Legacy(legacy) => legacy.revoke(store, config, token, kind).await,
        }
    }

    /// `None` when the component has no `token-audience` (built against 0.1.0).
    pub async fn can_check(
        &self,
        store: &mut Store<CallState>,
        config: &ProviderConfig,
    ) -> Result<Option<bool>> {
        match self {
            Exports::Current { audience: None, .. } => Ok(None),
            Exports::Current {
                audience: Some(audience),
                ..
            } => Ok(Some(audience.call_can_check(store, config).await?)),
            Exports::Legacy(legacy) => legacy.can_check(store, config).await,
        }
    }

    pub async fn issued_to_client(
        &self,
        store: &mut Store<CallState>,
        config: &ProviderConfig,
        access_token: &str,
    ) -> Outcome<bool> {
        match self {
            Exports::Current { audience: None, .. } => Ok(Err(ProviderError::Unsupported)),
            Exports::Current {
                audience: Some(audience),
                ..
            } => {
                audience
                    .call_issued_to_client(store, config, access_token)
                    .await
            }
            Exports::Legacy(legacy) => legacy.issued_to_client(store, config, access_token).await,
        }
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

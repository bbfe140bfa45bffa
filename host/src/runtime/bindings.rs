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

/// The interface name every provider exports, without its version.
pub const CONTRACT_EXPORT: &str = "authhost:provider/oauth-provider";

/// The contract version this host was built against; every `0.1.x` component loads.
pub const CONTRACT_VERSION: &str = "0.1.0";

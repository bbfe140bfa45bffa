//! The bridge from [`Provider`] to the generated WIT exports, and the `export!` macro
//! that registers a provider (on wasm only: a native build exports nothing).

use crate::bindings::authhost::provider::types;
use crate::bindings::exports::authhost::provider::{oauth_provider, token_audience};
use crate::{
    AuthorizeRequest, CodeExchange, Provider, ProviderConfig, ProviderError, TokenKind, TokenSet,
};
use std::marker::PhantomData;

/// `P` as the WIT exports see it; used by [`export!`](crate::export).
pub struct Exported<P>(PhantomData<P>);

impl<P: Provider> oauth_provider::Guest for Exported<P> {
    fn info() -> types::ProviderInfo {
        P::info()
    }

    fn authorize_url(
        config: ProviderConfig,
        request: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        P::authorize_url(config, request)
    }

    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        P::exchange_code(config, exchange)
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        P::refresh(config, refresh_token)
    }

    fn user_claims(
        config: ProviderConfig,
        tokens: TokenSet,
    ) -> Result<types::Claims, ProviderError> {
        P::user_claims(config, tokens).map(Into::into)
    }

    fn revoke(config: ProviderConfig, token: String, kind: TokenKind) -> Result<(), ProviderError> {
        P::revoke(config, token, kind)
    }
}

impl<P: Provider> token_audience::Guest for Exported<P> {
    fn can_check(config: ProviderConfig) -> bool {
        P::can_check_audience(config)
    }

    fn issued_to_client(
        config: ProviderConfig,
        access_token: String,
    ) -> Result<bool, ProviderError> {
        P::issued_to_client(config, access_token)
    }
}

/// Register a [`Provider`] as the component's exports. On other targets (native unit
/// tests) there is nothing to export; the type is only named, so it counts as used.
#[macro_export]
macro_rules! export {
    ($provider:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type ExportedProvider = $crate::Exported<$provider>;
    $crate::bindings::export!(ExportedProvider with_types_in $crate::bindings);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $crate::ProviderInfo = <$provider as $crate::Provider>::info;
    };
}

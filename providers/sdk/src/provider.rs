//! What a provider implements. Only `info` and `user_claims` are always its own; the
//! rest defaults to the generic OAuth behaviour of the [`CodeFlow`] it describes, or
//! to `unsupported` where nothing generic fits.

use crate::{
    AuthorizeRequest, Claims, CodeExchange, CodeFlow, ProviderConfig, ProviderError, ProviderInfo,
    TokenKind, TokenSet,
};

pub trait Provider {
    /// Describe the provider. Called once at load, without configuration.
    fn info() -> ProviderInfo;

    /// The upstream's authorization code flow, which the defaults below run. Providers
    /// that override all of them (OIDC ones) need not describe one.
    fn code_flow(_config: &ProviderConfig) -> Result<CodeFlow<'_>, ProviderError> {
        Err(ProviderError::Unsupported)
    }

    /// The upstream URL the user's browser is sent to.
    fn authorize_url(
        config: ProviderConfig,
        request: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        Self::code_flow(&config)?.authorize_url(&request)
    }

    /// Redeem the upstream's code for tokens (RFC 6749 4.1.3).
    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        Self::code_flow(&config)?.exchange_code(&exchange)
    }

    /// Use a refresh token (RFC 6749 6); the answer may carry a new one (rotation).
    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        Self::code_flow(&config)?.refresh(&refresh_token)
    }

    /// Who the tokens belong to.
    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError>;

    /// Revoke a token (RFC 7009) when the code flow names a revocation endpoint.
    fn revoke(config: ProviderConfig, token: String, kind: TokenKind) -> Result<(), ProviderError> {
        Self::code_flow(&config)?.revoke(&token, kind)
    }

    /// Whether `issued_to_client` can answer with this configuration (`client_token`
    /// mode). Called when the host starts, without network.
    fn can_check_audience(_config: ProviderConfig) -> bool {
        false
    }

    /// Whether `access_token` was issued to `config.client_id`.
    fn issued_to_client(
        _config: ProviderConfig,
        _access_token: String,
    ) -> Result<bool, ProviderError> {
        Err(ProviderError::Unsupported)
    }
}

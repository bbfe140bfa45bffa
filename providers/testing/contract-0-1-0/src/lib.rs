//! A provider built against contract 0.1.0: it exports `oauth-provider@0.1.0` and
//! nothing added later. Its "upstream" knows every token; the token is the subject.

wit_bindgen::generate!({ world: "provider", path: "wit" });

use authhost::provider::types::{
    AuthorizeRequest, Claims, CodeExchange, ProviderConfig, ProviderError, ProviderInfo, TokenKind,
    TokenSet,
};

// Exported on wasm only: a native build (`cargo build --workspace`) links no exports.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Legacy;

impl exports::authhost::provider::oauth_provider::Guest for Legacy {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "legacy".into(),
            display_name: "Built against 0.1.0".into(),
            version: "0.1.0".into(),
            default_scopes: Vec::new(),
            settings: Vec::new(),
            supports_pkce: false,
            supports_refresh: false,
            supports_revoke: false,
        }
    }

    fn authorize_url(
        _: ProviderConfig,
        request: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        Ok(format!(
            "https://upstream.test/authorize?state={}",
            request.state
        ))
    }

    fn exchange_code(_: ProviderConfig, _: CodeExchange) -> Result<TokenSet, ProviderError> {
        Err(ProviderError::Unsupported)
    }

    fn refresh(_: ProviderConfig, _: String) -> Result<TokenSet, ProviderError> {
        Err(ProviderError::Unsupported)
    }

    fn user_claims(_: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        Ok(Claims {
            subject: tokens.access_token,
            username: None,
            email: None,
            email_verified: false,
            name: None,
            groups: Vec::new(),
            roles: Vec::new(),
            extra_json: "{}".into(),
        })
    }

    fn revoke(_: ProviderConfig, _: String, _: TokenKind) -> Result<(), ProviderError> {
        Err(ProviderError::Unsupported)
    }
}

#[cfg(target_arch = "wasm32")]
export!(Legacy);

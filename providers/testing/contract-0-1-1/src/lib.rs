//! A provider built against contract 0.1.1 (`wit/legacy/0.1.1`, the last contract
//! before 0.2.0): it exports `oauth-provider@0.1.1` and `token-audience@0.1.1`, and its
//! `provider-info` has no `default-allowed-hosts`. Every value crosses the host's
//! adapter: a setting, tokens with extras, claims with extras, the audience check.

wit_bindgen::generate!({ world: "provider", path: "../../../wit/legacy/0.1.1" });

use authhost::provider::types::{
    AuthorizeRequest, Claims, CodeExchange, ProviderConfig, ProviderError, ProviderInfo,
    SettingKind, SettingSpec, TokenKind, TokenSet,
};

// Exported on wasm only: a native build (`cargo build --workspace`) links no exports.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Legacy;

impl exports::authhost::provider::oauth_provider::Guest for Legacy {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "legacy-0-1-1".into(),
            display_name: "Built against 0.1.1".into(),
            version: "0.1.1".into(),
            default_scopes: vec!["profile".into()],
            settings: vec![SettingSpec {
                name: "base_url".into(),
                kind: SettingKind::Url,
                required: false,
                default_value: Some("https://upstream.test".into()),
                description: "The upstream.".into(),
            }],
            supports_pkce: true,
            supports_refresh: false,
            supports_revoke: false,
        }
    }

    fn authorize_url(
        config: ProviderConfig,
        request: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        let base = config
            .settings
            .iter()
            .find(|(k, _)| k == "base_url")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| ProviderError::InvalidConfig("no base_url".into()))?;
        Ok(format!("{base}/authorize?state={}", request.state))
    }

    fn exchange_code(_: ProviderConfig, exchange: CodeExchange) -> Result<TokenSet, ProviderError> {
        Ok(TokenSet {
            access_token: format!("ours-{}", exchange.code),
            token_type: "Bearer".into(),
            expires_in: Some(60),
            refresh_token: None,
            id_token: None,
            scope: None,
            extra: vec![("contract".into(), "0.1.1".into())],
        })
    }

    fn refresh(_: ProviderConfig, _: String) -> Result<TokenSet, ProviderError> {
        Err(ProviderError::Unsupported)
    }

    fn user_claims(_: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        Ok(Claims {
            subject: tokens.access_token,
            username: Some("legacy".into()),
            email: None,
            email_verified: false,
            name: None,
            groups: vec!["old".into()],
            roles: Vec::new(),
            extra_json: r#"{"contract":"0.1.1"}"#.into(),
        })
    }

    fn revoke(_: ProviderConfig, _: String, _: TokenKind) -> Result<(), ProviderError> {
        Err(ProviderError::Unsupported)
    }
}

/// Tokens this "upstream" issued to the client start with `ours-`.
impl exports::authhost::provider::token_audience::Guest for Legacy {
    fn can_check(_: ProviderConfig) -> bool {
        true
    }

    fn issued_to_client(_: ProviderConfig, access_token: String) -> Result<bool, ProviderError> {
        Ok(access_token.starts_with("ours-"))
    }
}

#[cfg(target_arch = "wasm32")]
export!(Legacy);

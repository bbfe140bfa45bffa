//! GitLab (gitlab.com or self-managed) as an authhost provider, written against the
//! provider SDK only. Build: `cargo build --release --target wasm32-wasip2`; check:
//! `authhost providers test target/wasm32-wasip2/release/gitlab_provider.wasm`.

use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, SettingKind, SettingSpec, TokenAudience, TokenKind, TokenSet, code_authorize_url,
    http, settings, token,
};
use serde_json::json;

struct GitLab;

authhost_provider_sdk::export!(GitLab);

fn base(config: &ProviderConfig) -> Result<&str, ProviderError> {
    settings::base_url(config, "base_url")
}

fn token_request(
    config: &ProviderConfig,
    params: &[(&str, &str)],
) -> Result<TokenSet, ProviderError> {
    let url = format!("{}/oauth/token", base(config)?);
    // The host adds client_id and client_secret to the form; the secret never gets here.
    token::parse_response(&url, &http::post_form(&url, params, ClientAuth::FormPost)?)
}

impl Provider for GitLab {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "gitlab".into(),
            display_name: "GitLab".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            default_scopes: vec!["read_user".into()],
            settings: vec![SettingSpec {
                name: "base_url".into(),
                kind: SettingKind::Url,
                required: false,
                default_value: Some("https://gitlab.com".into()),
                description: "gitlab.com or your self-managed GitLab.".into(),
            }],
            supports_pkce: true,
            supports_refresh: true,
            supports_revoke: true,
        }
    }

    fn authorize_url(
        config: ProviderConfig,
        req: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        let endpoint = format!("{}/oauth/authorize", base(&config)?);
        code_authorize_url(&endpoint, &config, &req, &[])
    }

    fn exchange_code(config: ProviderConfig, ex: CodeExchange) -> Result<TokenSet, ProviderError> {
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", ex.code.as_str()),
            ("redirect_uri", config.redirect_uri.as_str()),
        ];
        if let Some(verifier) = &ex.code_verifier {
            params.push(("code_verifier", verifier));
        }
        token_request(&config, &params)
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        token_request(
            &config,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ],
        )
    }

    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        let user = http::get_json(
            &format!("{}/api/v4/user", base(&config)?),
            Some(&tokens.access_token),
        )?;
        let subject = user["id"]
            .as_u64()
            .map(|id| id.to_string())
            .ok_or_else(|| ProviderError::UpstreamError("/api/v4/user has no numeric id".into()))?;
        Ok(Claims {
            subject,
            username: user["username"].as_str().map(String::from),
            email: user["email"].as_str().map(String::from),
            // GitLab only shows the primary email once it is confirmed.
            email_verified: user["confirmed_at"].is_string(),
            name: user["name"].as_str().map(String::from),
            groups: vec![],
            roles: vec![],
            extra_json: json!({ "web_url": user["web_url"] }).to_string(),
        })
    }

    fn revoke(
        config: ProviderConfig,
        token: String,
        _kind: TokenKind,
    ) -> Result<(), ProviderError> {
        let url = format!("{}/oauth/revoke", base(&config)?);
        match http::post_form(&url, &[("token", &token)], ClientAuth::FormPost)?.status {
            200..=299 => Ok(()),
            status => Err(ProviderError::UpstreamError(format!(
                "{url} answered HTTP {status}"
            ))),
        }
    }
}

/// GitLab's token info endpoint names the OAuth application a token belongs to.
impl TokenAudience for GitLab {
    fn can_check(_config: ProviderConfig) -> bool {
        true
    }

    fn issued_to_client(
        config: ProviderConfig,
        access_token: String,
    ) -> Result<bool, ProviderError> {
        let url = format!("{}/oauth/token/info", base(&config)?);
        let response = http::get(&url, Some(&access_token))?;
        if response.status == 401 {
            return Ok(false); // dead, or not an OAuth token at all
        }
        let info = http::json_body(&url, &response)?;
        Ok(info["application"]["uid"].as_str() == Some(config.client_id.as_str()))
    }
}

//! GitLab (gitlab.com or self-managed) as an authhost provider, written against the
//! provider SDK only: the plain code flow comes from the SDK's `CodeFlow`, so this file
//! says only where GitLab is and how its user maps to claims. Build:
//! `cargo build --release --target wasm32-wasip2`; check: `authhost providers test
//! target/wasm32-wasip2/release/gitlab_provider.wasm`; unit tests: `cargo test`.

use authhost_provider_sdk::settings::specs;
use authhost_provider_sdk::{
    Claims, CodeFlow, Provider, ProviderConfig, ProviderError, ProviderInfo, Setting, TokenSet,
    http,
};
use serde_json::json;

struct GitLab;

authhost_provider_sdk::export!(GitLab);

const BASE_URL: Setting = Setting::url("base_url", "gitlab.com or your self-managed GitLab.")
    .default("https://gitlab.com");

impl Provider for GitLab {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "gitlab".into(),
            display_name: "GitLab".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            default_scopes: vec!["read_user".into()],
            settings: specs(&[BASE_URL]),
            supports_pkce: true,
            supports_refresh: true,
            supports_revoke: true,
            default_allowed_hosts: vec![],
        }
    }

    /// Authorization, code and refresh grants, and revocation are plain OAuth at GitLab;
    /// the host adds the client secret (form-post), which never enters the component.
    fn code_flow(config: &ProviderConfig) -> Result<CodeFlow<'_>, ProviderError> {
        let base = BASE_URL.base_url(config)?;
        Ok(CodeFlow::new(
            config,
            format!("{base}/oauth/authorize"),
            format!("{base}/oauth/token"),
        )
        .revocation_endpoint(format!("{base}/oauth/revoke")))
    }

    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        let url = format!("{}/api/v4/user", BASE_URL.base_url(&config)?);
        let user = http::get_json(&url, Some(&tokens.access_token))?;
        let id = user["id"].as_u64();
        let text = |key: &str| user[key].as_str().map(String::from);
        Ok(Claims {
            subject: id
                .ok_or(ProviderError::UpstreamError(format!(
                    "{url} has no numeric id"
                )))?
                .to_string(),
            username: text("username"),
            email: text("email"),
            // GitLab only shows the primary email once it is confirmed.
            email_verified: user["confirmed_at"].is_string(),
            name: text("name"),
            extra: json!({ "web_url": user["web_url"] }),
            ..Claims::default()
        })
    }

    /// GitLab's token info endpoint names the OAuth application a token belongs to.
    fn can_check_audience(_config: ProviderConfig) -> bool {
        true
    }

    fn issued_to_client(
        config: ProviderConfig,
        access_token: String,
    ) -> Result<bool, ProviderError> {
        let url = format!("{}/oauth/token/info", BASE_URL.base_url(&config)?);
        let response = http::get(&url, Some(&access_token))?;
        if response.status == 401 {
            return Ok(false); // dead, or not an OAuth token at all
        }
        let info = http::json_body(&url, &response)?;
        Ok(info["application"]["uid"].as_str() == Some(config.client_id.as_str()))
    }
}

#[cfg(test)]
mod tests;

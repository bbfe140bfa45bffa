//! Atlassian Cloud (Jira, Confluence) through OAuth 2.0 (3LO) apps: authorization at
//! `auth.atlassian.com` with `audience=api.atlassian.com`, the user from the User
//! Identity API (`/me`), and the sites the token reaches (`accessible-resources`) as
//! `cloud_ids` and `sites` extras. Quirks handled: with `offline_access` each refresh
//! returns a new refresh token and kills the one sent (rotation, returned as is); 3LO
//! apps are confidential and PKCE is not documented for them, so none is sent; `/me`
//! answers 403 when `read:me` or the User Identity API is missing.

use authhost_provider_sdk::settings::specs;
use authhost_provider_sdk::{
    Claims, CodeExchange, CodeFlow, Provider, ProviderConfig, ProviderError, ProviderInfo, Setting,
    TokenSet, http,
};
use serde_json::{Value, json};

struct Atlassian;

authhost_provider_sdk::export!(Atlassian);

/// The API the tokens are for; Atlassian refuses the authorization without it.
const AUDIENCE: &str = "api.atlassian.com";

const AUTH_URL: Setting = Setting::url(
    "auth_url",
    "The authorization server (/authorize, /oauth/token).",
)
.default("https://auth.atlassian.com");
const API_URL: Setting = Setting::url(
    "api_url",
    "The platform API (/me, /oauth/token/accessible-resources).",
)
.default("https://api.atlassian.com");

/// 3LO apps are confidential: token requests without the secret cannot work.
fn require_secret(config: &ProviderConfig) -> Result<(), ProviderError> {
    if config.has_client_secret {
        return Ok(());
    }
    Err(ProviderError::InvalidConfig(
        "Atlassian 3LO apps are confidential: set the app's secret (client_secret_env)".into(),
    ))
}

/// GET an API resource, explaining a 403 (a missing scope or API permission).
fn api_json(url: &str, token: &str, needs: &str) -> Result<Value, ProviderError> {
    let response = http::get(url, Some(token))?;
    if response.status == 403 {
        return Err(ProviderError::InvalidConfig(format!(
            "{url} answered HTTP 403: the app needs {needs}"
        )));
    }
    http::json_body(url, &response)
}

impl Provider for Atlassian {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "atlassian".into(),
            display_name: "Atlassian".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            default_scopes: vec![
                "read:me".into(),
                "read:jira-work".into(),
                "offline_access".into(),
            ],
            settings: specs(&[AUTH_URL, API_URL]),
            supports_pkce: false,
            supports_refresh: true,
            // No revocation endpoint for 3LO (the default says unsupported); users
            // remove the app under their account's "Connected apps".
            supports_revoke: false,
            default_allowed_hosts: vec![],
        }
    }

    /// `audience` and `prompt=consent` are both documented as required; the consent
    /// screen is where the user picks sites. 3LO has no PKCE: a challenge is never
    /// sent. Errors are RFC 6749 objects (a dead refresh token: 403 invalid_grant).
    fn code_flow(config: &ProviderConfig) -> Result<CodeFlow<'_>, ProviderError> {
        let auth = AUTH_URL.base_url(config)?;
        Ok(CodeFlow::new(
            config,
            format!("{auth}/authorize"),
            format!("{auth}/oauth/token"),
        )
        .without_pkce()
        .authorize_param("audience", AUDIENCE)
        .authorize_param("prompt", "consent"))
    }

    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        require_secret(&config)?;
        Self::code_flow(&config)?.exchange_code(&exchange)
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        // Rotating refresh tokens: the response carries the next one, the sent one is
        // dead from now on. The host stores what comes back.
        require_secret(&config)?;
        Self::code_flow(&config)?.refresh(&refresh_token)
    }

    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        let api = API_URL.base_url(&config)?;
        let me = api_json(
            &format!("{api}/me"),
            &tokens.access_token,
            "the read:me scope and the User Identity API",
        )?;
        let subject = me["account_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ProviderError::UpstreamError(format!("{api}/me has no account_id")))?
            .to_string();
        let text = |key: &str| me[key].as_str().filter(|s| !s.is_empty()).map(String::from);

        let url = format!("{api}/oauth/token/accessible-resources");
        let resources = http::get_json(&url, Some(&tokens.access_token))?;
        // An array of sites; anything else is treated as none rather than a failed login.
        let sites: Vec<&Value> = resources.as_array().into_iter().flatten().collect();
        let cloud_ids: Vec<&Value> = sites.iter().map(|s| &s["id"]).collect();
        let sites: Vec<Value> = sites
            .iter()
            .map(|s| json!({"id": s["id"], "name": s["name"], "url": s["url"]}))
            .collect();

        Ok(Claims {
            subject,
            username: text("nickname"),
            email: text("email"),
            email_verified: me["email_verified"] == true,
            name: text("name"),
            groups: vec![],
            roles: vec![],
            extra: json!({"cloud_ids": cloud_ids, "sites": sites}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authhost_provider_sdk::testing::{Upstream, config, tokens};

    #[test]
    fn sites_the_token_reaches_become_extras() {
        let api = "https://api.atlassian.com";
        let upstream = Upstream::new()
            .json(
                "GET",
                &format!("{api}/me"),
                200,
                json!({"account_id": "a-1", "email": "a@x", "email_verified": true, "nickname": "al"}),
            )
            .json(
                "GET",
                &format!("{api}/oauth/token/accessible-resources"),
                200,
                json!([{"id": "cloud-1", "name": "acme", "url": "https://acme.atlassian.net", "scopes": []}]),
            );
        let _on = upstream.install();
        let claims = Atlassian::user_claims(config(&[("api_url", api)]), tokens("at")).unwrap();
        assert_eq!(claims.subject, "a-1");
        assert_eq!(claims.username.as_deref(), Some("al"));
        assert_eq!(claims.extra["cloud_ids"], json!(["cloud-1"]));
        assert_eq!(claims.extra["sites"][0]["name"], "acme");
    }

    #[test]
    fn no_pkce_and_the_audience_in_the_authorize_url() {
        let config = config(&[("auth_url", "https://auth.atlassian.com")]);
        let request = authhost_provider_sdk::AuthorizeRequest {
            state: "s".into(),
            code_challenge: Some("ch".into()),
            nonce: "n".into(),
            extra: vec![],
        };
        let url = Atlassian::authorize_url(config, request).unwrap();
        assert!(url.contains("audience=api.atlassian.com"), "{url}");
        assert!(!url.contains("code_challenge"), "{url}");
    }
}

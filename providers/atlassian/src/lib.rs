//! Atlassian Cloud (Jira, Confluence) through OAuth 2.0 (3LO) apps: authorization at
//! `auth.atlassian.com` with `audience=api.atlassian.com`, the user from the User
//! Identity API (`/me`), and the sites the token reaches (`accessible-resources`) as
//! `cloud_ids` and `sites` extras. Quirks handled: with `offline_access` each refresh
//! returns a new refresh token and kills the one sent (rotation, returned as is); 3LO
//! apps are confidential and PKCE is not documented for them, so none is sent; `/me`
//! answers 403 when `read:me` or the User Identity API is missing.

use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, SettingKind, TokenAudience, TokenKind, TokenSet, code_authorize_url, http,
    settings, token,
};
use serde_json::{Value, json};

struct Atlassian;

authhost_provider_sdk::export!(Atlassian);

/// The API the tokens are for; Atlassian refuses the authorization without it.
const AUDIENCE: &str = "api.atlassian.com";

fn auth_base(config: &ProviderConfig) -> Result<&str, ProviderError> {
    settings::base_url(config, "auth_url")
}

fn api_base(config: &ProviderConfig) -> Result<&str, ProviderError> {
    settings::base_url(config, "api_url")
}

/// POST to `/oauth/token`: a form with `client_id`; the host appends `client_secret`.
fn token_request(
    config: &ProviderConfig,
    params: &[(&str, &str)],
) -> Result<TokenSet, ProviderError> {
    if !config.has_client_secret {
        return Err(ProviderError::InvalidConfig(
            "Atlassian 3LO apps are confidential: set the app's secret (client_secret_env)".into(),
        ));
    }
    let url = format!("{}/oauth/token", auth_base(config)?);
    let mut params = params.to_vec();
    params.push(("client_id", &config.client_id));
    let response = http::post_form(&url, &params, ClientAuth::FormPost)?;
    // Errors are RFC 6749 objects (a dead refresh token: 403 invalid_grant).
    token::parse_response(&url, &response)
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
            settings: vec![
                settings::spec(
                    "auth_url",
                    SettingKind::Url,
                    Some("https://auth.atlassian.com"),
                    "The authorization server (/authorize, /oauth/token).",
                ),
                settings::spec(
                    "api_url",
                    SettingKind::Url,
                    Some("https://api.atlassian.com"),
                    "The platform API (/me, /oauth/token/accessible-resources).",
                ),
            ],
            supports_pkce: false,
            supports_refresh: true,
            supports_revoke: false,
        }
    }

    fn authorize_url(
        config: ProviderConfig,
        request: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        // Both documented as required; the consent screen is where the user picks sites.
        let extra = [("audience", AUDIENCE), ("prompt", "consent")];
        // 3LO has no PKCE: a challenge is never sent, even if one is given.
        let request = AuthorizeRequest {
            code_challenge: None,
            ..request
        };
        let endpoint = format!("{}/authorize", auth_base(&config)?);
        code_authorize_url(&endpoint, &config, &request, &extra)
    }

    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        token_request(
            &config,
            &[
                ("grant_type", "authorization_code"),
                ("code", &exchange.code),
                ("redirect_uri", &config.redirect_uri),
            ],
        )
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        // Rotating refresh tokens: the response carries the next one, the sent one is
        // dead from now on. The host stores what comes back.
        token_request(&config, &token::refresh_grant(&refresh_token))
    }

    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        let api = api_base(&config)?;
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
            extra_json: json!({"cloud_ids": cloud_ids, "sites": sites}).to_string(),
        })
    }

    fn revoke(
        _config: ProviderConfig,
        _token: String,
        _kind: TokenKind,
    ) -> Result<(), ProviderError> {
        // No revocation endpoint for 3LO; users remove the app under their account's
        // "Connected apps".
        Err(ProviderError::Unsupported)
    }
}

/// Atlassian has no endpoint that says which app a token was issued to.
impl TokenAudience for Atlassian {
    fn can_check(_config: ProviderConfig) -> bool {
        false
    }

    fn issued_to_client(_config: ProviderConfig, _token: String) -> Result<bool, ProviderError> {
        Err(ProviderError::Unsupported)
    }
}

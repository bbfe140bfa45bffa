//! The generic OpenID Connect provider: any IdP with discovery at
//! `<issuer>/.well-known/openid-configuration` (Keycloak, Okta, Auth0, Entra ID, Dex,
//! Authentik, ...). Authorization code with PKCE, refresh, ID token and userinfo claims.

use authhost_provider_sdk::oidc::{self, ClaimNames, Discovery, OidcClient};
use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, SettingKind, SettingSpec, TokenAudience, TokenKind, TokenSet, settings,
};

pub struct OidcProvider;

#[cfg(target_arch = "wasm32")]
authhost_provider_sdk::export!(OidcProvider);

/// The OIDC client this instance's settings describe.
fn client(config: &ProviderConfig) -> Result<OidcClient<'_>, ProviderError> {
    let mut client = OidcClient::new(config, settings::required(config, "issuer")?);
    if let Some(url) = settings::get(config, "discovery_url") {
        client.discovery_url = url.to_string();
    }
    if settings::get(config, "token_auth_method") == Some("client_secret_post") {
        client.secret_auth = ClientAuth::FormPost;
    }
    client.use_userinfo = settings::flag(config, "use_userinfo", true);
    Ok(client)
}

/// Extra authorization parameters from the `authorize_params` setting.
fn extra_params(config: &ProviderConfig) -> Vec<(String, String)> {
    authhost_provider_sdk::url_form_pairs(settings::get(config, "authorize_params").unwrap_or(""))
}

/// The authorization URL for `request`, given the discovered endpoints (also called
/// natively by the host's benchmark).
pub fn build_authorize_url(
    discovery: &Discovery,
    config: &ProviderConfig,
    request: &AuthorizeRequest,
) -> Result<String, ProviderError> {
    let extra = extra_params(config);
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    oidc::authorize_url(discovery, config, request, &extra)
}

impl Provider for OidcProvider {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "oidc".into(),
            display_name: "OpenID Connect".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            default_scopes: vec!["openid".into(), "profile".into(), "email".into()],
            settings: vec![
                SettingSpec {
                    required: true,
                    ..settings::spec(
                        "issuer",
                        SettingKind::Url,
                        None,
                        "The issuer URL; discovery is read from <issuer>/.well-known/openid-configuration.",
                    )
                },
                settings::spec(
                    "discovery_url",
                    SettingKind::Url,
                    None,
                    "Overrides the discovery URL when it is not under the issuer.",
                ),
                settings::spec(
                    "token_auth_method",
                    SettingKind::Text,
                    Some("client_secret_basic"),
                    "client_secret_basic or client_secret_post.",
                ),
                settings::spec(
                    "authorize_params",
                    SettingKind::Text,
                    None,
                    "Extra authorization parameters, form-encoded (e.g. prompt=consent&access_type=offline).",
                ),
                settings::spec(
                    "use_userinfo",
                    SettingKind::Boolean,
                    Some("true"),
                    "Merge the userinfo endpoint's claims into the ID token's.",
                ),
                settings::spec(
                    "groups_claim",
                    SettingKind::Text,
                    Some("groups"),
                    "Claim (dotted path) holding the user's groups.",
                ),
                settings::spec(
                    "roles_claim",
                    SettingKind::Text,
                    Some("roles"),
                    "Claim (dotted path) holding the user's roles.",
                ),
            ],
            supports_pkce: true,
            supports_refresh: true,
            supports_revoke: true,
        }
    }

    fn authorize_url(
        config: ProviderConfig,
        request: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        build_authorize_url(&client(&config)?.discovery()?, &config, &request)
    }

    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        client(&config)?.exchange_code(&exchange)
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        client(&config)?.refresh(&refresh_token)
    }

    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        let claims = client(&config)?.claims(&tokens)?;
        let names = ClaimNames {
            groups: settings::get(&config, "groups_claim").unwrap_or("groups"),
            roles: settings::get(&config, "roles_claim").unwrap_or("roles"),
        };
        oidc::map_claims(&claims, &names)
    }

    fn revoke(config: ProviderConfig, token: String, kind: TokenKind) -> Result<(), ProviderError> {
        client(&config)?.revoke(&token, kind)
    }
}

/// Introspection at the issuer, as this client.
impl TokenAudience for OidcProvider {
    fn can_check(config: ProviderConfig) -> bool {
        client(&config).is_ok_and(|c| c.can_check_audience())
    }

    fn issued_to_client(
        config: ProviderConfig,
        access_token: String,
    ) -> Result<bool, ProviderError> {
        client(&config)?.issued_to_client(&access_token)
    }
}

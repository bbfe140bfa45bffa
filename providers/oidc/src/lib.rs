//! The generic OpenID Connect provider: any IdP with discovery at
//! `<issuer>/.well-known/openid-configuration` (Keycloak, Okta, Auth0, Entra ID, Dex,
//! Authentik, ...). Authorization code with PKCE, refresh, ID token and userinfo claims.

use authhost_provider_sdk::oidc::{self, ClaimNames, Discovery, OidcClient};
use authhost_provider_sdk::settings::specs;
use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, Setting, TokenKind, TokenSet,
};

pub struct OidcProvider;

authhost_provider_sdk::export!(OidcProvider);

const ISSUER: Setting = Setting::url(
    "issuer",
    "The issuer URL; discovery is read from <issuer>/.well-known/openid-configuration.",
)
.required();
const DISCOVERY_URL: Setting = Setting::url(
    "discovery_url",
    "Overrides the discovery URL when it is not under the issuer.",
);
const TOKEN_AUTH_METHOD: Setting = Setting::text(
    "token_auth_method",
    "client_secret_basic or client_secret_post.",
)
.default("client_secret_basic");
const AUTHORIZE_PARAMS: Setting = Setting::text(
    "authorize_params",
    "Extra authorization parameters, form-encoded (e.g. prompt=consent&access_type=offline).",
);
const USE_USERINFO: Setting = Setting::flag(
    "use_userinfo",
    "Merge the userinfo endpoint's claims into the ID token's.",
)
.default("true");
const GROUPS_CLAIM: Setting = Setting::text(
    "groups_claim",
    "Claim (dotted path) holding the user's groups.",
)
.default("groups");
const ROLES_CLAIM: Setting = Setting::text(
    "roles_claim",
    "Claim (dotted path) holding the user's roles.",
)
.default("roles");

/// The OIDC client this instance's settings describe.
fn client(config: &ProviderConfig) -> Result<OidcClient<'_>, ProviderError> {
    let mut client = OidcClient::new(config, ISSUER.value(config)?);
    if let Some(url) = DISCOVERY_URL.get(config) {
        client.discovery_url = url.to_string();
    }
    if TOKEN_AUTH_METHOD.get(config) == Some("client_secret_post") {
        client.secret_auth = ClientAuth::FormPost;
    }
    client.use_userinfo = USE_USERINFO.is_on(config);
    Ok(client)
}

/// Extra authorization parameters from the `authorize_params` setting.
fn extra_params(config: &ProviderConfig) -> Vec<(String, String)> {
    authhost_provider_sdk::url_form_pairs(AUTHORIZE_PARAMS.get(config).unwrap_or(""))
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
            settings: specs(&[
                ISSUER,
                DISCOVERY_URL,
                TOKEN_AUTH_METHOD,
                AUTHORIZE_PARAMS,
                USE_USERINFO,
                GROUPS_CLAIM,
                ROLES_CLAIM,
            ]),
            supports_pkce: true,
            supports_refresh: true,
            supports_revoke: true,
            default_allowed_hosts: vec![],
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
            groups: GROUPS_CLAIM.get(&config).unwrap_or("groups"),
            roles: ROLES_CLAIM.get(&config).unwrap_or("roles"),
        };
        oidc::map_claims(&claims, &names)
    }

    fn revoke(config: ProviderConfig, token: String, kind: TokenKind) -> Result<(), ProviderError> {
        client(&config)?.revoke(&token, kind)
    }

    /// Introspection at the issuer, as this client.
    fn can_check_audience(config: ProviderConfig) -> bool {
        client(&config).is_ok_and(|c| c.can_check_audience())
    }

    fn issued_to_client(
        config: ProviderConfig,
        access_token: String,
    ) -> Result<bool, ProviderError> {
        client(&config)?.issued_to_client(&access_token)
    }
}

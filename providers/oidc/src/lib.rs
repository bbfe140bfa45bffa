//! The generic OpenID Connect provider: any IdP with discovery at
//! `<issuer>/.well-known/openid-configuration` (Keycloak, Okta, Auth0, Entra ID, Dex,
//! Authentik, ...). Authorization code with PKCE, refresh, ID token and userinfo claims.

use authhost_provider_sdk::oidc::{self, ClaimNames, Discovery};
use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, SettingKind, SettingSpec, TokenKind, TokenSet, http, settings, token,
};

pub struct OidcProvider;

#[cfg(target_arch = "wasm32")]
authhost_provider_sdk::export!(OidcProvider);

fn setting(name: &str, kind: SettingKind, default: Option<&str>, description: &str) -> SettingSpec {
    SettingSpec {
        name: name.into(),
        kind,
        required: false,
        default_value: default.map(String::from),
        description: description.into(),
    }
}

/// The upstream's endpoints, from the configured issuer (or an explicit discovery URL).
pub fn discovery(config: &ProviderConfig) -> Result<Discovery, ProviderError> {
    let issuer = settings::required(config, "issuer")?;
    let url = settings::get(config, "discovery_url")
        .map(String::from)
        .unwrap_or_else(|| Discovery::url_for(issuer));
    Discovery::fetch(&url, issuer)
}

/// The authorization URL for `request`, given the discovered endpoints.
pub fn build_authorize_url(
    discovery: &Discovery,
    config: &ProviderConfig,
    request: &AuthorizeRequest,
) -> Result<String, ProviderError> {
    let scope = config.scopes.join(" ");
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &config.client_id),
        ("redirect_uri", &config.redirect_uri),
        ("scope", &scope),
        ("state", &request.state),
        ("nonce", &request.nonce),
    ];
    if let Some(challenge) = &request.code_challenge {
        params.push(("code_challenge", challenge));
        params.push(("code_challenge_method", "S256"));
    }
    let extra = settings::get(config, "authorize_params").unwrap_or("");
    let extra: Vec<(String, String)> = authhost_provider_sdk::url_form_pairs(extra);
    params.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    params.extend(request.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    authhost_provider_sdk::url_with_query(&discovery.authorization_endpoint, &params)
}

/// Client authentication at the token endpoint: the host attaches the secret.
fn client_auth(config: &ProviderConfig) -> ClientAuth {
    if !config.has_client_secret {
        return ClientAuth::None;
    }
    match settings::get(config, "token_auth_method") {
        Some("client_secret_post") => ClientAuth::FormPost,
        _ => ClientAuth::Basic,
    }
}

fn token_request<'a>(
    config: &'a ProviderConfig,
    mut params: Vec<(&'a str, &'a str)>,
) -> Result<TokenSet, ProviderError> {
    let endpoints = discovery(config)?;
    let auth = client_auth(config);
    // With Basic the client id travels in the header; a second copy in the body is
    // refused by strict servers as "more than one authentication method".
    if auth != ClientAuth::Basic {
        params.push(("client_id", &config.client_id));
    }
    let response = http::post_form(&endpoints.token_endpoint, &params, auth)?;
    token::parse_response(&endpoints.token_endpoint, &response)
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
                    ..setting(
                        "issuer",
                        SettingKind::Url,
                        None,
                        "The issuer URL; discovery is read from <issuer>/.well-known/openid-configuration.",
                    )
                },
                setting(
                    "discovery_url",
                    SettingKind::Url,
                    None,
                    "Overrides the discovery URL when it is not under the issuer.",
                ),
                setting(
                    "token_auth_method",
                    SettingKind::Text,
                    Some("client_secret_basic"),
                    "client_secret_basic or client_secret_post.",
                ),
                setting(
                    "authorize_params",
                    SettingKind::Text,
                    None,
                    "Extra authorization parameters, form-encoded (e.g. prompt=consent&access_type=offline).",
                ),
                setting(
                    "use_userinfo",
                    SettingKind::Boolean,
                    Some("true"),
                    "Merge the userinfo endpoint's claims into the ID token's.",
                ),
                setting(
                    "groups_claim",
                    SettingKind::Text,
                    Some("groups"),
                    "Claim (dotted path) holding the user's groups.",
                ),
                setting(
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
        build_authorize_url(&discovery(&config)?, &config, &request)
    }

    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", exchange.code.as_str()),
            ("redirect_uri", config.redirect_uri.as_str()),
        ];
        if let Some(verifier) = &exchange.code_verifier {
            params.push(("code_verifier", verifier));
        }
        let tokens = token_request(&config, params)?;
        if let Some(id_token) = &tokens.id_token {
            let issuer = settings::required(&config, "issuer")?;
            oidc::check_id_token(id_token, issuer, &config.client_id, Some(&exchange.nonce))?;
        }
        Ok(tokens)
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        let params = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ];
        token_request(&config, params)
    }

    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        let issuer = settings::required(&config, "issuer")?;
        let mut claims = match &tokens.id_token {
            Some(id_token) => oidc::check_id_token(id_token, issuer, &config.client_id, None)?,
            None => Default::default(),
        };
        let endpoints = discovery(&config)?;
        if let Some(userinfo) = endpoints
            .userinfo_endpoint
            .as_deref()
            .filter(|_| settings::flag(&config, "use_userinfo", true))
        {
            let info = http::get_json(userinfo, Some(&tokens.access_token))?;
            let info = info.as_object().cloned().unwrap_or_default();
            // OIDC Core 5.3.2: userinfo `sub` must match the ID token's.
            if let (Some(a), Some(b)) = (claims.get("sub"), info.get("sub"))
                && a != b
            {
                return Err(ProviderError::UpstreamError(
                    "userinfo `sub` differs from the ID token's".into(),
                ));
            }
            claims.extend(info);
        }
        let names = ClaimNames {
            groups: settings::get(&config, "groups_claim").unwrap_or("groups"),
            roles: settings::get(&config, "roles_claim").unwrap_or("roles"),
        };
        oidc::map_claims(&claims, &names)
    }

    fn revoke(config: ProviderConfig, token: String, kind: TokenKind) -> Result<(), ProviderError> {
        let endpoints = discovery(&config)?;
        let url = endpoints
            .revocation_endpoint
            .ok_or(ProviderError::Unsupported)?;
        let hint = match kind {
            TokenKind::AccessToken => "access_token",
            TokenKind::RefreshToken => "refresh_token",
        };
        let mut params = vec![("token", token.as_str()), ("token_type_hint", hint)];
        let auth = client_auth(&config);
        if auth != ClientAuth::Basic {
            params.push(("client_id", &config.client_id));
        }
        let response = http::post_form(&url, &params, auth)?;
        // RFC 7009 2.2: 200 whether or not the token was valid.
        match response.status {
            200..=299 => Ok(()),
            _ => Err(token::parse_response(&url, &response)
                .err()
                .unwrap_or_else(|| {
                    ProviderError::UpstreamError(format!("{url} answered HTTP {}", response.status))
                })),
        }
    }
}

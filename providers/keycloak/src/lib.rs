//! Keycloak: the realm's OpenID endpoints from `server_url` and `realm` (with the
//! pre-Quarkus `/auth` prefix when asked), realm roles and this client's roles into
//! `roles`, the Group Membership mapper's claim into `groups`.

use authhost_provider_sdk::oidc::{self, ClaimNames, OidcClient};
use authhost_provider_sdk::{
    AuthorizeRequest, Claims, CodeExchange, Provider, ProviderConfig, ProviderError, ProviderInfo,
    SettingKind, TokenAudience, TokenKind, TokenSet, settings,
};
use serde_json::Value;

struct Keycloak;

authhost_provider_sdk::export!(Keycloak);

/// `https://host[/auth]/realms/<realm>`.
fn issuer(config: &ProviderConfig) -> Result<String, ProviderError> {
    let server = settings::base_url(config, "server_url")?;
    let realm = settings::required(config, "realm")?;
    let prefix = if settings::flag(config, "legacy_auth_prefix", false) {
        "/auth"
    } else {
        ""
    };
    Ok(format!("{server}{prefix}/realms/{realm}"))
}

fn client(config: &ProviderConfig) -> Result<OidcClient<'_>, ProviderError> {
    Ok(OidcClient::new(config, &issuer(config)?))
}

impl Provider for Keycloak {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "keycloak".into(),
            display_name: "Keycloak".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            default_scopes: vec!["openid".into(), "profile".into(), "email".into()],
            settings: vec![
                settings::required_spec(
                    "server_url",
                    SettingKind::Url,
                    "The Keycloak server, e.g. https://sso.example.com.",
                ),
                settings::required_spec("realm", SettingKind::Text, "The realm users sign in to."),
                settings::spec(
                    "legacy_auth_prefix",
                    SettingKind::Boolean,
                    Some("false"),
                    "Keycloak before 17 (WildFly) serves realms under /auth.",
                ),
                settings::spec(
                    "groups_claim",
                    SettingKind::Text,
                    Some("groups"),
                    "The claim of the Group Membership mapper.",
                ),
                settings::spec(
                    "client_roles",
                    SettingKind::Boolean,
                    Some("true"),
                    "Add this client's roles as `<client_id>:<role>`.",
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
        client(&config)?.authorize_url(&request, &[])
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
        let raw = client(&config)?.claims(&tokens)?;
        let names = ClaimNames {
            groups: settings::get(&config, "groups_claim").unwrap_or("groups"),
            roles: "realm_access.roles",
        };
        let mut claims = oidc::map_claims(&raw, &names)?;
        if settings::flag(&config, "client_roles", true) {
            let path = format!("resource_access.{}.roles", config.client_id);
            let client_roles = oidc::string_list(oidc::claim_path(&raw, &path));
            claims.roles.extend(
                client_roles
                    .into_iter()
                    .map(|r| format!("{}:{r}", config.client_id)),
            );
        }
        // Group Membership mappers give full paths (`/engineering/platform`) by default.
        claims.groups = claims
            .groups
            .into_iter()
            .map(|g| g.trim_start_matches('/').to_string())
            .collect();
        let mut extra: serde_json::Map<String, Value> =
            serde_json::from_str(&claims.extra_json).unwrap_or_default();
        extra.insert(
            "realm".into(),
            Value::String(settings::required(&config, "realm")?.to_string()),
        );
        claims.extra_json = Value::Object(extra).to_string();
        Ok(claims)
    }

    fn revoke(config: ProviderConfig, token: String, kind: TokenKind) -> Result<(), ProviderError> {
        client(&config)?.revoke(&token, kind)
    }
}

/// Introspection at the issuer, as this client.
impl TokenAudience for Keycloak {
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

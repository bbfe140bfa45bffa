//! Keycloak: the realm's OpenID endpoints from `server_url` and `realm` (with the
//! pre-Quarkus `/auth` prefix when asked), realm roles and this client's roles into
//! `roles`, the Group Membership mapper's claim into `groups`.

use authhost_provider_sdk::oidc::{self, ClaimNames, OidcClient};
use authhost_provider_sdk::settings::specs;
use authhost_provider_sdk::{
    AuthorizeRequest, Claims, CodeExchange, Provider, ProviderConfig, ProviderError, ProviderInfo,
    Setting, TokenKind, TokenSet,
};
use serde_json::Value;

struct Keycloak;

authhost_provider_sdk::export!(Keycloak);

const SERVER_URL: Setting = Setting::url(
    "server_url",
    "The Keycloak server, e.g. https://sso.example.com.",
)
.required();
const REALM: Setting = Setting::text("realm", "The realm users sign in to.").required();
const LEGACY_AUTH_PREFIX: Setting = Setting::flag(
    "legacy_auth_prefix",
    "Keycloak before 17 (WildFly) serves realms under /auth.",
)
.default("false");
const GROUPS_CLAIM: Setting =
    Setting::text("groups_claim", "The claim of the Group Membership mapper.").default("groups");
const CLIENT_ROLES: Setting = Setting::flag(
    "client_roles",
    "Add this client's roles as `<client_id>:<role>`.",
)
.default("true");

/// `https://host[/auth]/realms/<realm>`.
fn issuer(config: &ProviderConfig) -> Result<String, ProviderError> {
    let server = SERVER_URL.base_url(config)?;
    let realm = REALM.value(config)?;
    let prefix = if LEGACY_AUTH_PREFIX.is_on(config) {
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
            settings: specs(&[
                SERVER_URL,
                REALM,
                LEGACY_AUTH_PREFIX,
                GROUPS_CLAIM,
                CLIENT_ROLES,
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
            groups: GROUPS_CLAIM.get(&config).unwrap_or("groups"),
            roles: "realm_access.roles",
        };
        let mut claims = oidc::map_claims(&raw, &names)?;
        if CLIENT_ROLES.is_on(&config) {
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
        if let Value::Object(extra) = &mut claims.extra {
            extra.insert("realm".into(), Value::String(REALM.value(&config)?.into()));
        }
        Ok(claims)
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

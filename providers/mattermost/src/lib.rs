//! Mattermost as an OAuth 2.0 service provider (`/oauth/authorize`,
//! `/oauth/access_token`), the user from `/api/v4/users/me`. Not OpenID Connect.
//! Quirks handled: the token endpoint wants `client_id` in the form and compares
//! `client_secret` from the form (never Basic); a second sign-in while a grant is still
//! live returns the same token with the remaining lifetime, which is 0 or negative for
//! non-expiring sessions, so such expiries are replaced by `fallback_expiry_seconds`;
//! failures come as Mattermost error objects (`{"id": "api.oauth...", ...}`), not as
//! OAuth errors; public apps (v11.2+) send no secret and must use PKCE.

use authhost_provider_sdk::settings::specs;
use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, CodeFlow, Provider, ProviderConfig,
    ProviderError, ProviderInfo, Setting, TokenSet, http, log_info, token,
};
use serde_json::{Value, json};

struct Mattermost;

authhost_provider_sdk::export!(Mattermost);

const SERVER_URL: Setting = Setting::url(
    "server_url",
    "The Mattermost server (its Site URL), e.g. https://chat.example.com.",
)
.required();
const PUBLIC_URL: Setting = Setting::url(
    "public_url",
    "The URL browsers reach Mattermost at, when it differs from server_url (internal address). Default: server_url.",
);
const PUBLIC_CLIENT: Setting = Setting::flag(
    "public_client",
    "The app is marked \"Is Public Client\" (Mattermost 11.2+): no client secret, PKCE only.",
)
.default("false");
const FALLBACK_EXPIRY_SECONDS: Setting = Setting::text(
    "fallback_expiry_seconds",
    "Upstream token lifetime to assume when Mattermost gives none, or 0 or less (a reused grant of a non-expiring session).",
)
.default("3600");

fn server(config: &ProviderConfig) -> Result<&str, ProviderError> {
    SERVER_URL.base_url(config)
}

/// Seconds to assume when Mattermost gives no usable `expires_in`.
fn fallback_expiry(config: &ProviderConfig) -> Result<u64, ProviderError> {
    let value = FALLBACK_EXPIRY_SECONDS.get(config).unwrap_or("3600");
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            ProviderError::InvalidConfig(format!(
                "setting `fallback_expiry_seconds` must be a positive number of seconds, not `{value}`"
            ))
        })
}

/// A public app has no secret; a confidential one is refused without it, so say so
/// before sending anything.
fn check_credentials(config: &ProviderConfig) -> Result<(), ProviderError> {
    if PUBLIC_CLIENT.is_on(config) || config.has_client_secret {
        return Ok(());
    }
    Err(ProviderError::InvalidConfig(
        "a confidential Mattermost app needs its client secret (client_secret_env); \
         for an app marked \"Is Public Client\" set public_client = true"
            .into(),
    ))
}

/// A grant at the token endpoint. `client_id` always goes in the form (the flow puts
/// it there): Mattermost rejects the request without it, even when the secret is there.
fn token_request(
    config: &ProviderConfig,
    params: Vec<(&str, &str)>,
) -> Result<TokenSet, ProviderError> {
    check_credentials(config)?;
    let flow = Mattermost::code_flow(config)?;
    let response = flow.post_token(params)?;
    if let Some(error) = app_error(&response) {
        return Err(error);
    }
    let mut tokens = flow.parse_tokens(&response)?;
    // Reused grant: same token, `expires_in` = remaining seconds, <= 0 when the session
    // never expires (parse_response floors negatives at 0). Treat as "not given".
    if tokens.expires_in.is_none_or(|s| s == 0) {
        log_info("no usable expires_in from Mattermost (a reused grant?): using the fallback");
        tokens.expires_in = Some(fallback_expiry(config)?);
    }
    Ok(tokens)
}

/// Mattermost's own error object on a failed token request, mapped by its id.
fn app_error(response: &http::Response) -> Option<ProviderError> {
    if (200..300).contains(&response.status) {
        return None;
    }
    let body: Value = serde_json::from_slice(&response.body).ok()?;
    if body.get("error").is_some() {
        return None; // an RFC 6749 error: parse_response maps it
    }
    let id = body.get("id")?.as_str()?;
    let message = format!(
        "{id}: {} (HTTP {})",
        body["message"].as_str().unwrap_or("no message"),
        response.status
    );
    let has = |part: &str| id.contains(part);
    let error = if has("expired_code") || has("refresh_token") || has("pkce") || has("verifier") {
        ProviderError::InvalidGrant(message)
    } else if has("credentials")
        || has("bad_client")
        || has("redirect_uri")
        || has("disabled")
        || has("turn_off")
    {
        ProviderError::InvalidConfig(message)
    } else if response.status >= 500 {
        ProviderError::UpstreamUnavailable(message)
    } else {
        ProviderError::UpstreamError(message)
    };
    Some(error)
}

fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(String::from)
}

impl Provider for Mattermost {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "mattermost".into(),
            display_name: "Mattermost".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            // Mattermost grants its whole API to the app; it has no scopes to ask for.
            default_scopes: vec![],
            settings: specs(&[
                SERVER_URL,
                PUBLIC_URL,
                PUBLIC_CLIENT,
                FALLBACK_EXPIRY_SECONDS,
            ]),
            supports_pkce: true,
            supports_refresh: true,
            // No revocation endpoint (the default says unsupported); a user
            // deauthorizes the app in their Mattermost profile.
            supports_revoke: false,
            default_allowed_hosts: vec![],
        }
    }

    /// Browsers go to `public_url`, token requests to `server_url`. The challenge is
    /// honoured since 11.2 (required for public apps); older servers ignore it.
    fn code_flow(config: &ProviderConfig) -> Result<CodeFlow<'_>, ProviderError> {
        let server = server(config)?;
        let browser = match PUBLIC_URL.get(config) {
            Some(url) => url.trim_end_matches('/'),
            None => server,
        };
        Ok(CodeFlow::new(
            config,
            format!("{browser}/oauth/authorize"),
            format!("{server}/oauth/access_token"),
        )
        // The secret only ever in the form (Mattermost never reads Basic); a public
        // app sends none even when one is configured.
        .client_auth(match PUBLIC_CLIENT.is_on(config) {
            true => ClientAuth::None,
            false => ClientAuth::FormPost,
        }))
    }

    fn authorize_url(
        config: ProviderConfig,
        request: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        fallback_expiry(&config)?; // a bad value should stop the flow before the login
        Self::code_flow(&config)?.authorize_url(&request)
    }

    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        token_request(&config, token::code_grant(&config, &exchange))
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        // Each refresh starts a new session and returns a new refresh token.
        token_request(&config, token::refresh_grant(&refresh_token))
    }

    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        let url = format!("{}/api/v4/users/me", server(&config)?);
        let user = http::get_json(&url, Some(&tokens.access_token))?;
        let subject = match &user["id"] {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(ProviderError::UpstreamError(format!("{url} has no id"))),
        };
        let full_name = format!(
            "{} {}",
            user["first_name"].as_str().unwrap_or(""),
            user["last_name"].as_str().unwrap_or("")
        );
        Ok(Claims {
            subject,
            username: text(&user["username"]),
            email: text(&user["email"]),
            // Omitted from the JSON when false.
            email_verified: user["email_verified"] == true,
            name: Some(full_name.trim().to_string()).filter(|n| !n.is_empty()),
            groups: vec![],
            // "system_user system_admin"
            roles: user["roles"]
                .as_str()
                .unwrap_or("")
                .split_whitespace()
                .map(String::from)
                .collect(),
            extra: json!({
                "nickname": user["nickname"],
                "auth_service": user["auth_service"],
            }),
        })
    }

    // Whose token it is: Mattermost has no endpoint that names the OAuth app a token
    // was issued to (personal access tokens work on the same API), so the audience
    // check stays unsupported (the default).
}

#[cfg(test)]
mod tests {
    use super::*;
    use authhost_provider_sdk::testing::{Upstream, config};

    const SERVER: &str = "https://chat.example.com";

    fn exchange() -> CodeExchange {
        CodeExchange {
            code: "c".into(),
            code_verifier: Some("v".into()),
            nonce: "n".into(),
        }
    }

    #[test]
    fn a_reused_grant_without_expiry_gets_the_fallback() {
        let upstream = Upstream::new().json(
            "POST",
            &format!("{SERVER}/oauth/access_token"),
            200,
            json!({"access_token": "t", "token_type": "bearer", "expires_in": -1}),
        );
        let _on = upstream.install();
        let config = config(&[("server_url", SERVER), ("fallback_expiry_seconds", "60")]);
        let tokens = Mattermost::exchange_code(config, exchange()).unwrap();
        assert_eq!(tokens.expires_in, Some(60));
        let form = upstream.only_request().form();
        assert!(form.contains(&("client_id".into(), "test-client".into())));
    }

    #[test]
    fn mattermost_error_objects_are_mapped_by_id() {
        let upstream = Upstream::new().json(
            "POST",
            &format!("{SERVER}/oauth/access_token"),
            400,
            json!({"id": "api.oauth.get_access_token.expired_code.app_error", "message": "expired"}),
        );
        let _on = upstream.install();
        let err = Mattermost::exchange_code(config(&[("server_url", SERVER)]), exchange());
        assert!(matches!(err, Err(ProviderError::InvalidGrant(_))));
    }

    #[test]
    fn a_confidential_app_without_its_secret_is_a_config_error() {
        let mut config = config(&[("server_url", SERVER)]);
        config.has_client_secret = false;
        let err = Mattermost::exchange_code(config, exchange());
        assert!(matches!(err, Err(ProviderError::InvalidConfig(_))));
    }
}

//! Mattermost as an OAuth 2.0 service provider (`/oauth/authorize`,
//! `/oauth/access_token`), the user from `/api/v4/users/me`. Not OpenID Connect.
//! Quirks handled: the token endpoint wants `client_id` in the form and compares
//! `client_secret` from the form (never Basic); a second sign-in while a grant is still
//! live returns the same token with the remaining lifetime, which is 0 or negative for
//! non-expiring sessions, so such expiries are replaced by `fallback_expiry_seconds`;
//! failures come as Mattermost error objects (`{"id": "api.oauth...", ...}`), not as
//! OAuth errors; public apps (v11.2+) send no secret and must use PKCE.

use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, SettingKind, TokenAudience, TokenKind, TokenSet, http, log_info, settings, token,
    url_with_query,
};
use serde_json::{Value, json};

struct Mattermost;

authhost_provider_sdk::export!(Mattermost);

fn server(config: &ProviderConfig) -> Result<&str, ProviderError> {
    settings::base_url(config, "server_url")
}

/// Seconds to assume when Mattermost gives no usable `expires_in`.
fn fallback_expiry(config: &ProviderConfig) -> Result<u64, ProviderError> {
    let value = settings::get(config, "fallback_expiry_seconds").unwrap_or("3600");
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

/// A public app has no secret; a confidential one is refused without it, so say so here.
fn client_auth(config: &ProviderConfig) -> Result<ClientAuth, ProviderError> {
    if settings::flag(config, "public_client", false) {
        return Ok(ClientAuth::None);
    }
    if !config.has_client_secret {
        return Err(ProviderError::InvalidConfig(
            "a confidential Mattermost app needs its client secret (client_secret_env); \
             for an app marked \"Is Public Client\" set public_client = true"
                .into(),
        ));
    }
    Ok(ClientAuth::FormPost)
}

/// POST to the token endpoint. `client_id` always goes in the form: Mattermost rejects
/// the request without it, even when the secret is there too.
fn token_request(
    config: &ProviderConfig,
    params: &[(&str, &str)],
) -> Result<TokenSet, ProviderError> {
    let auth = client_auth(config)?;
    let url = format!("{}/oauth/access_token", server(config)?);
    let mut params = params.to_vec();
    params.push(("client_id", &config.client_id));
    let response = http::post_form(&url, &params, auth)?;
    if let Some(error) = app_error(&response) {
        return Err(error);
    }
    let mut tokens = token::parse_response(&url, &response)?;
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
            settings: vec![
                settings::required_spec(
                    "server_url",
                    SettingKind::Url,
                    "The Mattermost server (its Site URL), e.g. https://chat.example.com.",
                ),
                settings::spec(
                    "public_url",
                    SettingKind::Url,
                    None,
                    "The URL browsers reach Mattermost at, when it differs from server_url (internal address). Default: server_url.",
                ),
                settings::spec(
                    "public_client",
                    SettingKind::Boolean,
                    Some("false"),
                    "The app is marked \"Is Public Client\" (Mattermost 11.2+): no client secret, PKCE only.",
                ),
                settings::spec(
                    "fallback_expiry_seconds",
                    SettingKind::Text,
                    Some("3600"),
                    "Upstream token lifetime to assume when Mattermost gives none, or 0 or less (a reused grant of a non-expiring session).",
                ),
            ],
            supports_pkce: true,
            supports_refresh: true,
            supports_revoke: false,
        }
    }

    fn authorize_url(
        config: ProviderConfig,
        request: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        fallback_expiry(&config)?; // a bad value should stop the flow before the login
        let base = match settings::get(&config, "public_url") {
            Some(url) => url.trim_end_matches('/'),
            None => server(&config)?,
        };
        let scope = config.scopes.join(" ");
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", config.client_id.as_str()),
            ("redirect_uri", config.redirect_uri.as_str()),
            ("state", request.state.as_str()),
        ];
        if !scope.is_empty() {
            params.push(("scope", &scope));
        }
        // Honoured since 11.2 (required for public apps); older servers ignore it.
        if let Some(challenge) = &request.code_challenge {
            params.push(("code_challenge", challenge));
            params.push(("code_challenge_method", "S256"));
        }
        params.extend(request.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        url_with_query(&format!("{base}/oauth/authorize"), &params)
    }

    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        let params = token::code_grant(&config, &exchange);
        token_request(&config, &params)
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        // Each refresh starts a new session and returns a new refresh token.
        token_request(&config, &token::refresh_grant(&refresh_token))
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
            extra_json: json!({
                "nickname": user["nickname"],
                "auth_service": user["auth_service"],
            })
            .to_string(),
        })
    }

    fn revoke(
        _config: ProviderConfig,
        _token: String,
        _kind: TokenKind,
    ) -> Result<(), ProviderError> {
        // No revocation endpoint; a user deauthorizes the app in their Mattermost profile.
        Err(ProviderError::Unsupported)
    }
}

/// Mattermost has no endpoint that says which OAuth app a token was issued to
/// (personal access tokens work on the same API).
impl TokenAudience for Mattermost {
    fn can_check(_config: ProviderConfig) -> bool {
        false
    }

    fn issued_to_client(_config: ProviderConfig, _token: String) -> Result<bool, ProviderError> {
        Err(ProviderError::Unsupported)
    }
}

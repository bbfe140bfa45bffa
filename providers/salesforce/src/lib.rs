//! Salesforce (production, sandbox or My Domain): the web server flow under
//! `<login_url>/services/oauth2/`, the user from `userinfo` on the same host. Quirks
//! handled: token responses carry `instance_url`, `id` (the identity URL), `issued_at`
//! and `signature` and usually no `expires_in` (the session timeout decides), so the
//! extras are kept and the expiry left unknown; refresh responses carry no new refresh
//! token; revocation answers 400 `invalid_token` for a token that is already dead, which
//! counts as revoked. The API lives on `instance_url`, another host, which this provider
//! never calls.

use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, SettingKind, TokenAudience, TokenKind, TokenSet, code_authorize_url, http,
    log_info, settings, token,
};
use serde_json::{Value, json};

struct Salesforce;

authhost_provider_sdk::export!(Salesforce);

/// `<login_url>/services/oauth2/<endpoint>`.
fn endpoint(config: &ProviderConfig, name: &str) -> Result<String, ProviderError> {
    Ok(format!(
        "{}/services/oauth2/{name}",
        settings::base_url(config, "login_url")?
    ))
}

/// Token requests: a form with `client_id`; the host appends `client_secret` when the
/// app has one (an app that does not require the secret uses PKCE alone).
fn token_request(
    config: &ProviderConfig,
    params: &[(&str, &str)],
) -> Result<TokenSet, ProviderError> {
    let url = endpoint(config, "token")?;
    let mut params = params.to_vec();
    params.push(("client_id", &config.client_id));
    let auth = if config.has_client_secret {
        ClientAuth::FormPost
    } else {
        ClientAuth::None
    };
    let response = http::post_form(&url, &params, auth)?;
    // `instance_url`, `id`, `issued_at`, `signature` end up in `extra`; no `expires_in`
    // stays `None` (Salesforce does not say; the org's session timeout applies).
    token::parse_response(&url, &response)
}

/// Whether `org` (18 characters, from userinfo) is one of the configured ids, which
/// may be written in the 15-character form Setup shows.
fn org_allowed(allowed: &[String], org: &str) -> bool {
    allowed
        .iter()
        .any(|id| id == org || (id.len() == 15 && org.len() == 18 && org.starts_with(id.as_str())))
}

impl Provider for Salesforce {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "salesforce".into(),
            display_name: "Salesforce".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            default_scopes: vec!["openid".into(), "api".into(), "refresh_token".into()],
            settings: vec![
                settings::spec(
                    "login_url",
                    SettingKind::Url,
                    Some("https://login.salesforce.com"),
                    "Where users log in: https://login.salesforce.com, https://test.salesforce.com (sandboxes) or your My Domain (https://<domain>.my.salesforce.com). The org's instance_url is another host, which this provider never calls; add it to allowed_hosts only if that changes.",
                ),
                settings::spec(
                    "organization_ids",
                    SettingKind::List,
                    None,
                    "Only users of these orgs may sign in (org ids, 15 or 18 characters). Default: any org whose users can use the app.",
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
        code_authorize_url(&endpoint(&config, "authorize")?, &config, &request, &[])
    }

    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        let params = token::code_grant(&config, &exchange);
        token_request(&config, &params)
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        // The answer has no refresh_token unless the app rotates them; the host keeps
        // the one it has.
        token_request(&config, &token::refresh_grant(&refresh_token))
    }

    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        let url = endpoint(&config, "userinfo")?;
        let response = http::get(&url, Some(&tokens.access_token))?;
        if response.status == 403 {
            return Err(ProviderError::InvalidConfig(format!(
                "{url} answered HTTP 403: the token needs the openid (or id / profile) scope"
            )));
        }
        let info = http::json_body(&url, &response)?;
        let text = |key: &str| {
            info[key]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let subject = text("user_id")
            .ok_or_else(|| ProviderError::UpstreamError(format!("{url} has no user_id")))?;
        let org = text("organization_id");
        let allowed = settings::list(&config, "organization_ids");
        if !allowed.is_empty() && !org.as_deref().is_some_and(|o| org_allowed(&allowed, o)) {
            return Err(ProviderError::AccessDenied(format!(
                "the user's org `{}` is not in organization_ids",
                org.as_deref().unwrap_or("unknown")
            )));
        }
        let instance_url = tokens
            .extra
            .iter()
            .find(|(k, _)| k == "instance_url")
            .map(|(_, v)| v.as_str());
        Ok(Claims {
            subject,
            username: text("preferred_username"),
            email: text("email"),
            email_verified: info["email_verified"] == true,
            name: text("name"),
            groups: vec![],
            roles: vec![],
            extra_json: json!({
                "organization_id": org,
                "instance_url": instance_url,
            })
            .to_string(),
        })
    }

    fn revoke(
        config: ProviderConfig,
        token: String,
        _kind: TokenKind,
    ) -> Result<(), ProviderError> {
        // One endpoint for both kinds: a refresh token takes its access tokens with it.
        let url = endpoint(&config, "revoke")?;
        let response = http::post_form(&url, &[("token", &token)], ClientAuth::None)?;
        if (200..300).contains(&response.status) {
            return Ok(());
        }
        // The error comes as JSON or, from some endpoints, form-encoded.
        let body = match serde_json::from_slice::<Value>(&response.body) {
            Ok(json) => json,
            Err(_) => Value::Object(
                authhost_provider_sdk::url_form_pairs(&String::from_utf8_lossy(&response.body))
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ),
        };
        match body["error"].as_str() {
            // Unlike RFC 7009, Salesforce answers 400 for a token it does not know.
            Some("invalid_token") if response.status == 400 => {
                log_info("Salesforce did not know the token (already revoked or expired)");
                Ok(())
            }
            Some(error) => Err(token::oauth_error(error, body.get("error_description"))),
            None if response.status >= 500 => Err(ProviderError::UpstreamUnavailable(format!(
                "{url} answered HTTP {}",
                response.status
            ))),
            None => Err(ProviderError::UpstreamError(format!(
                "{url} answered HTTP {}",
                response.status
            ))),
        }
    }
}

/// Not implemented yet: Salesforce's introspection endpoint could answer.
impl TokenAudience for Salesforce {
    fn can_check(_config: ProviderConfig) -> bool {
        false
    }

    fn issued_to_client(_config: ProviderConfig, _token: String) -> Result<bool, ProviderError> {
        Err(ProviderError::Unsupported)
    }
}

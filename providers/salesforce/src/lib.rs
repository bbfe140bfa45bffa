//! Salesforce (production, sandbox or My Domain): the web server flow under
//! `<login_url>/services/oauth2/`, the user from `userinfo` on the same host. Quirks
//! handled: token responses carry `instance_url`, `id` (the identity URL), `issued_at`
//! and `signature` and usually no `expires_in` (the session timeout decides), so the
//! extras are kept and the expiry left unknown; refresh responses carry no new refresh
//! token; revocation answers 400 `invalid_token` for a token that is already dead, which
//! counts as revoked. The API lives on `instance_url`, another host, which this provider
//! never calls.

use authhost_provider_sdk::settings::specs;
use authhost_provider_sdk::{
    Claims, ClientAuth, CodeFlow, Provider, ProviderConfig, ProviderError, ProviderInfo, Setting,
    TokenKind, TokenSet, http, log_info, token,
};
use serde_json::{Value, json};

struct Salesforce;

authhost_provider_sdk::export!(Salesforce);

const LOGIN_URL: Setting = Setting::url(
    "login_url",
    "Where users log in: https://login.salesforce.com, https://test.salesforce.com (sandboxes) or your My Domain (https://<domain>.my.salesforce.com). The org's instance_url is another host, which this provider never calls; add it to allowed_hosts only if that changes.",
)
.default("https://login.salesforce.com");
const ORGANIZATION_IDS: Setting = Setting::list(
    "organization_ids",
    "Only users of these orgs may sign in (org ids, 15 or 18 characters). Default: any org whose users can use the app.",
);

/// `<login_url>/services/oauth2/<endpoint>`.
fn endpoint(config: &ProviderConfig, name: &str) -> Result<String, ProviderError> {
    Ok(format!(
        "{}/services/oauth2/{name}",
        LOGIN_URL.base_url(config)?
    ))
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
            settings: specs(&[LOGIN_URL, ORGANIZATION_IDS]),
            supports_pkce: true,
            supports_refresh: true,
            supports_revoke: true,
            default_allowed_hosts: vec![],
        }
    }

    /// Token requests carry `client_id`; the host appends `client_secret` when the app
    /// has one (an app that does not require the secret uses PKCE alone). Answers keep
    /// `instance_url`, `id`, `issued_at`, `signature` in `extra`; no `expires_in` stays
    /// unknown (the org's session timeout applies); refresh answers carry no new
    /// refresh token, and the host keeps the one it has.
    fn code_flow(config: &ProviderConfig) -> Result<CodeFlow<'_>, ProviderError> {
        Ok(CodeFlow::new(
            config,
            endpoint(config, "authorize")?,
            endpoint(config, "token")?,
        ))
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
        let allowed = ORGANIZATION_IDS.items(&config);
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
            extra: json!({
                "organization_id": org,
                "instance_url": instance_url,
            }),
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

    // Whose token it is: Salesforce's introspection endpoint could answer; not used
    // yet, so `issued_to_client` stays unsupported (the default).
}

#[cfg(test)]
mod tests {
    use super::*;
    use authhost_provider_sdk::CodeExchange;
    use authhost_provider_sdk::testing::{Upstream, config, tokens};

    const LOGIN: &str = "https://login.salesforce.com";

    #[test]
    fn token_extras_are_kept_and_the_expiry_left_unknown() {
        let upstream = Upstream::new().json(
            "POST",
            &format!("{LOGIN}/services/oauth2/token"),
            200,
            json!({"access_token": "00D!x", "instance_url": "https://acme.my.salesforce.com",
                "id": "https://login.salesforce.com/id/00D/005", "issued_at": "1700000000000",
                "signature": "sig", "token_type": "Bearer"}),
        );
        let _on = upstream.install();
        let exchange = CodeExchange {
            code: "c".into(),
            code_verifier: Some("v".into()),
            nonce: "n".into(),
        };
        let tokens = Salesforce::exchange_code(config(&[("login_url", LOGIN)]), exchange).unwrap();
        assert_eq!(tokens.expires_in, None);
        assert!(tokens.extra.contains(&(
            "instance_url".into(),
            "https://acme.my.salesforce.com".into()
        )));
    }

    #[test]
    fn users_of_other_orgs_are_denied() {
        let upstream = Upstream::new().json(
            "GET",
            &format!("{LOGIN}/services/oauth2/userinfo"),
            200,
            json!({"user_id": "005x", "organization_id": "00D000000000001AAA"}),
        );
        let _on = upstream.install();
        let allowed = config(&[
            ("login_url", LOGIN),
            ("organization_ids", "00D000000000001"),
        ]);
        let claims = Salesforce::user_claims(allowed, tokens("at")).unwrap();
        assert_eq!(claims.extra["organization_id"], "00D000000000001AAA");
        let other = config(&[
            ("login_url", LOGIN),
            ("organization_ids", "00D000000000002"),
        ]);
        let err = Salesforce::user_claims(other, tokens("at")).unwrap_err();
        assert!(matches!(err, ProviderError::AccessDenied(_)));
    }
}

//! Google accounts and Google Workspace through OpenID Connect (discovery at
//! `https://accounts.google.com`). Quirks handled: a refresh token only comes with
//! `access_type=offline`, and reliably only with `prompt=consent`; `hd` in the
//! authorization request is only a hint, so `hosted_domain` is enforced on the ID
//! token's `hd` claim; ID tokens name the issuer as `https://accounts.google.com` or,
//! in the legacy form, `accounts.google.com`; the token, userinfo and revocation
//! endpoints live on other hosts than the issuer (declared as default allowed hosts, the
//! token info endpoint found beside the token endpoint); revoking a token Google no longer
//! knows answers 400 `invalid_token`, which counts as revoked. Whose access token it
//! is comes from the token info endpoint (`aud`/`azp`); it answers 400 for dead ones.

use authhost_provider_sdk::oidc::{self, ClaimNames, OidcClient};
use authhost_provider_sdk::settings::specs;
use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, Setting, TokenKind, TokenSet, http, log_info,
};
use serde_json::{Map, Value};

struct Google;

authhost_provider_sdk::export!(Google);

const GOOGLE_ISSUER: &str = "https://accounts.google.com";

const ISSUER: Setting = Setting::url(
    "issuer",
    "Google's issuer; discovery is read under it. Change only to point at a test upstream.",
)
.default(GOOGLE_ISSUER);
/// Where discovery puts Google's token, revocation, token info and userinfo
/// endpoints: other hosts than the issuer's, allowed unless the operator lists hosts.
const API_HOSTS: &[&str] = &["oauth2.googleapis.com", "openidconnect.googleapis.com"];

const HOSTED_DOMAIN: Setting = Setting::text(
    "hosted_domain",
    "A Google Workspace domain (example.com): sent as the hd hint and enforced on the ID token's hd claim. `*` admits any Workspace account, no personal ones.",
);
const PROMPT: Setting = Setting::text(
    "prompt",
    "The prompt parameter. consent makes Google return a refresh token on every sign-in; empty leaves it to Google.",
)
.default("consent");

fn client(config: &ProviderConfig) -> OidcClient<'_> {
    let mut client = OidcClient::new(config, ISSUER.get(config).unwrap_or(GOOGLE_ISSUER));
    // Google documents the secret in the form body (it takes Basic as well).
    client.secret_auth = ClientAuth::FormPost;
    client
}

/// The ID token's claims after the SDK's checks (audience, nonce, expiry, issuer).
///
/// Google's ID tokens carry `iss` as `https://accounts.google.com` or as the bare
/// `accounts.google.com` (OpenID Connect reference, "iss"); both mean Google. The SDK
/// compares one issuer string, so when the token uses the configured issuer without
/// its scheme, check it against that form. Any other issuer still fails the check.
fn id_token_claims(
    client: &OidcClient,
    id_token: &str,
    nonce: Option<&str>,
) -> Result<Map<String, Value>, ProviderError> {
    let iss = oidc::jwt_payload(id_token)?
        .get("iss")
        .and_then(Value::as_str)
        .map(String::from);
    let expected = match iss {
        Some(iss) if client.issuer.split_once("://").map(|(_, bare)| bare) == Some(&iss) => iss,
        _ => client.issuer.clone(),
    };
    oidc::check_id_token(id_token, &expected, &client.config.client_id, nonce)
}

/// With `hosted_domain` set, only accounts of that Workspace domain (`*`: of any
/// Workspace domain) get in. Personal accounts have no `hd` claim.
fn check_hosted_domain(
    config: &ProviderConfig,
    claims: &Map<String, Value>,
) -> Result<(), ProviderError> {
    let Some(wanted) = HOSTED_DOMAIN.get(config) else {
        return Ok(());
    };
    match claims.get("hd").and_then(Value::as_str) {
        Some(hd) if hd == wanted || (wanted == "*" && !hd.is_empty()) => Ok(()),
        hd => Err(ProviderError::AccessDenied(format!(
            "the Google account is not in the Workspace domain `{wanted}` (its hd: {})",
            hd.unwrap_or("none, a personal account")
        ))),
    }
}

impl Provider for Google {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "google".into(),
            display_name: "Google".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            default_scopes: vec!["openid".into(), "email".into(), "profile".into()],
            settings: specs(&[ISSUER, HOSTED_DOMAIN, PROMPT]),
            supports_pkce: true,
            supports_refresh: true,
            supports_revoke: true,
            default_allowed_hosts: API_HOSTS.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn authorize_url(
        config: ProviderConfig,
        request: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        // Without access_type=offline Google issues no refresh token at all.
        let mut extra = vec![("access_type", "offline")];
        if let Some(prompt) = PROMPT.get(&config) {
            extra.push(("prompt", prompt));
        }
        if let Some(domain) = HOSTED_DOMAIN.get(&config) {
            extra.push(("hd", domain));
        }
        client(&config).authorize_url(&request, &extra)
    }

    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        // OidcClient::exchange_code would refuse the bare issuer form, so redeem with
        // the plain code flow and check the ID token here.
        let client = client(&config);
        let tokens = client.code_flow()?.exchange_code(&exchange)?;
        if let Some(id_token) = &tokens.id_token {
            id_token_claims(&client, id_token, Some(&exchange.nonce))?;
        }
        Ok(tokens)
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        // Google keeps the refresh token: the answer normally has none.
        client(&config).refresh(&refresh_token)
    }

    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        let client = client(&config);
        // The ID token has everything, `hd` included; userinfo only stands in for a
        // token set without one (scopes without openid).
        let raw = match &tokens.id_token {
            Some(id_token) => id_token_claims(&client, id_token, None)?,
            None => {
                let url = client.discovery()?.userinfo_endpoint.ok_or_else(|| {
                    ProviderError::UpstreamError(
                        "no ID token and no userinfo endpoint in discovery".into(),
                    )
                })?;
                match http::get_json(&url, Some(&tokens.access_token))? {
                    Value::Object(info) => info,
                    _ => {
                        return Err(ProviderError::UpstreamError(format!(
                            "{url} did not answer a JSON object"
                        )));
                    }
                }
            }
        };
        check_hosted_domain(&config, &raw)?;
        let mut claims = oidc::map_claims(&raw, &ClaimNames::default())?;
        // Google accounts have no username; the address is what users know them by.
        if claims.username.is_none() {
            claims.username = claims.email.clone();
        }
        Ok(claims)
    }

    fn revoke(config: ProviderConfig, token: String, kind: TokenKind) -> Result<(), ProviderError> {
        // Revoking either kind ends the whole grant at Google.
        match client(&config).revoke(&token, kind) {
            Err(ProviderError::InvalidGrant(why)) => {
                log_info(&format!("Google no longer knew the token ({why})"));
                Ok(())
            }
            other => other,
        }
    }

    /// Google's token info endpoint, beside the token endpoint on the token API host.
    /// The token goes in a form body, never in the URL.
    fn can_check_audience(_config: ProviderConfig) -> bool {
        true
    }

    fn issued_to_client(
        config: ProviderConfig,
        access_token: String,
    ) -> Result<bool, ProviderError> {
        let token_endpoint = client(&config).discovery()?.token_endpoint;
        let url = url::Url::parse(&token_endpoint)?
            .join("/tokeninfo")?
            .to_string();
        let response = http::post_form(&url, &[("access_token", &access_token)], ClientAuth::None)?;
        if response.status == 400 {
            return Ok(false); // expired, revoked or not a Google token
        }
        let info = http::json_body(&url, &response)?;
        let ours = config.client_id.as_str();
        Ok(info["aud"].as_str() == Some(ours) && info["azp"].as_str().is_none_or(|a| a == ours))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authhost_provider_sdk::testing::{Upstream, config};
    use serde_json::json;

    const ISSUER_URL: &str = "https://accounts.example.test";

    /// Discovery naming a token endpoint on another host, as Google's does.
    fn upstream() -> Upstream {
        Upstream::new().json(
            "GET",
            &format!("{ISSUER_URL}/.well-known/openid-configuration"),
            200,
            json!({"issuer": ISSUER_URL, "authorization_endpoint": format!("{ISSUER_URL}/auth"),
                "token_endpoint": "https://tokens.example.test/token"}),
        )
    }

    #[test]
    fn token_info_is_asked_beside_the_discovered_token_endpoint() {
        let upstream = upstream().json(
            "POST",
            "https://tokens.example.test/tokeninfo",
            200,
            json!({"aud": "test-client", "azp": "test-client"}),
        );
        let _on = upstream.install();
        let config = config(&[("issuer", ISSUER_URL)]);
        assert!(Google::issued_to_client(config, "ya29.x".into()).unwrap());
        let sent = upstream.requests();
        assert_eq!(
            sent[1].form(),
            [("access_token".to_string(), "ya29.x".to_string())]
        );
    }

    #[test]
    fn its_api_hosts_are_default_allowed_hosts() {
        let info = Google::info();
        assert!(
            info.default_allowed_hosts
                .contains(&"oauth2.googleapis.com".to_string())
        );
        assert!(info.settings.iter().all(|s| s.name != "token_api_url"));
    }
}

//! GitHub (and GitHub Enterprise Server). Not OpenID Connect: the user comes from the
//! REST API. Quirks handled: the token endpoint answers form-encoded unless asked for
//! JSON, and reports errors with status 200; OAuth-App tokens never expire and have no
//! refresh token, GitHub-App user tokens expire (8 h) and rotate their refresh token;
//! `/user` may hide the email, `/user/emails` has the verified primary one.

use authhost_provider_sdk::http::Request;
use authhost_provider_sdk::settings::specs;
use authhost_provider_sdk::{
    Claims, ClientAuth, CodeFlow, Provider, ProviderConfig, ProviderError, ProviderInfo, Setting,
    TokenKind, TokenSet, http,
};
use serde_json::{Value, json};

struct GitHub;

authhost_provider_sdk::export!(GitHub);

const BASE_URL: Setting = Setting::url(
    "base_url",
    "GitHub, or your GitHub Enterprise Server (https://HOST).",
)
.default("https://github.com");
const API_URL: Setting = Setting::url(
    "api_url",
    "The REST API: https://api.github.com, or https://HOST/api/v3 for Enterprise Server.",
)
.default("https://api.github.com");
const ORGS: Setting = Setting::list(
    "orgs",
    "Organizations whose active membership becomes a group (and `org:role` a role).",
);
const TEAMS: Setting = Setting::flag(
    "teams",
    "Also add `org/team` groups for teams in those organizations (scope read:org).",
)
.default("false");

fn api(config: &ProviderConfig) -> Result<&str, ProviderError> {
    API_URL.base_url(config)
}

/// A REST API call with the headers GitHub asks for.
fn api_request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
    auth: ClientAuth,
) -> Result<http::Response, ProviderError> {
    let mut headers = vec![
        (
            "accept".to_string(),
            "application/vnd.github+json".to_string(),
        ),
        ("x-github-api-version".to_string(), "2022-11-28".to_string()),
    ];
    if let Some(token) = token {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    }
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    http::send(Request {
        method: method.into(),
        url: url.into(),
        headers,
        body: body.map(|b| b.to_string().into_bytes()),
        client_auth: auth,
    })
}

fn api_json(url: &str, token: &str) -> Result<Value, ProviderError> {
    http::json_body(
        url,
        &api_request("GET", url, Some(token), None, ClientAuth::None)?,
    )
}

/// The verified primary address from `/user/emails`, when the token may read it.
fn primary_email(
    config: &ProviderConfig,
    access_token: &str,
) -> Result<Option<String>, ProviderError> {
    let url = format!("{}/user/emails", api(config)?);
    let response = api_request("GET", &url, Some(access_token), None, ClientAuth::None)?;
    if matches!(response.status, 403 | 404) {
        return Ok(None); // no `user:email` scope
    }
    let emails = http::json_body(&url, &response)?;
    Ok(emails
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["primary"] == true && e["verified"] == true)
        .and_then(|e| e["email"].as_str().map(String::from)))
}

/// `org` for each configured org the user is an active member of, and `org/team` for
/// their teams there (teams need `read:org`).
fn memberships(
    config: &ProviderConfig,
    access_token: &str,
) -> Result<(Vec<String>, Vec<String>), ProviderError> {
    let orgs = ORGS.items(config);
    let (mut groups, mut roles) = (Vec::new(), Vec::new());
    if orgs.is_empty() {
        return Ok((groups, roles));
    }
    let api = api(config)?;
    for org in &orgs {
        let url = format!("{api}/user/memberships/orgs/{org}");
        let response = api_request("GET", &url, Some(access_token), None, ClientAuth::None)?;
        if response.status != 200 {
            continue; // 404: not a member (or membership hidden without read:org)
        }
        let membership = http::json_body(&url, &response)?;
        if membership["state"] == "active" {
            groups.push(org.clone());
            if let Some(role) = membership["role"].as_str() {
                roles.push(format!("{org}:{role}"));
            }
        }
    }
    if TEAMS.is_on(config) {
        let url = format!("{api}/user/teams?per_page=100");
        let response = api_request("GET", &url, Some(access_token), None, ClientAuth::None)?;
        if response.status == 200 {
            for team in http::json_body(&url, &response)?
                .as_array()
                .into_iter()
                .flatten()
            {
                let org = team["organization"]["login"].as_str().unwrap_or("");
                if let (true, Some(slug)) = (
                    orgs.iter().any(|o| o.eq_ignore_ascii_case(org)),
                    team["slug"].as_str(),
                ) {
                    groups.push(format!("{org}/{slug}"));
                }
            }
        }
    }
    Ok((groups, roles))
}

impl Provider for GitHub {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "github".into(),
            display_name: "GitHub".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            default_scopes: vec!["read:user".into(), "user:email".into()],
            settings: specs(&[BASE_URL, API_URL, ORGS, TEAMS]),
            supports_pkce: true,
            supports_refresh: true,
            supports_revoke: true,
            default_allowed_hosts: vec![],
        }
    }

    /// The token endpoint answers form-encoded unless asked for JSON (the flow asks;
    /// both parse) and reports errors with status 200 (parsed as errors). Only
    /// GitHub-App user tokens have refresh tokens; each use returns a new one.
    fn code_flow(config: &ProviderConfig) -> Result<CodeFlow<'_>, ProviderError> {
        let base = BASE_URL.base_url(config)?;
        Ok(CodeFlow::new(
            config,
            format!("{base}/login/oauth/authorize"),
            format!("{base}/login/oauth/access_token"),
        ))
    }

    fn user_claims(config: ProviderConfig, tokens: TokenSet) -> Result<Claims, ProviderError> {
        let user = api_json(&format!("{}/user", api(&config)?), &tokens.access_token)?;
        let subject = match &user["id"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return Err(ProviderError::UpstreamError("/user has no id".into())),
        };
        let verified = primary_email(&config, &tokens.access_token)?;
        let email_verified = verified.is_some();
        let email = verified.or_else(|| user["email"].as_str().map(String::from));
        let (groups, roles) = memberships(&config, &tokens.access_token)?;
        Ok(Claims {
            subject,
            username: user["login"].as_str().map(String::from),
            email,
            email_verified,
            name: user["name"].as_str().map(String::from),
            groups,
            roles,
            extra: json!({
                "avatar_url": user["avatar_url"],
                "html_url": user["html_url"],
                "type": user["type"],
            }),
        })
    }

    fn revoke(config: ProviderConfig, token: String, kind: TokenKind) -> Result<(), ProviderError> {
        // GitHub revokes by access token; deleting the grant ends its refresh token too.
        if kind == TokenKind::RefreshToken {
            return Err(ProviderError::Unsupported);
        }
        // The app authenticates with Basic (the host adds it); the token goes in the body.
        let url = format!("{}/applications/{}/grant", api(&config)?, config.client_id);
        let response = api_request(
            "DELETE",
            &url,
            None,
            Some(json!({ "access_token": token })),
            ClientAuth::Basic,
        )?;
        match response.status {
            204 | 404 => Ok(()), // 404: already gone
            status => Err(ProviderError::UpstreamError(format!(
                "{url} answered HTTP {status}"
            ))),
        }
    }

    /// GitHub's check-token endpoint for OAuth and GitHub Apps: as the app (Basic,
    /// added by the host), `POST /applications/{client_id}/token`; 404 for tokens of
    /// other apps, personal access tokens and dead tokens.
    fn can_check_audience(config: ProviderConfig) -> bool {
        config.has_client_secret
    }

    fn issued_to_client(
        config: ProviderConfig,
        access_token: String,
    ) -> Result<bool, ProviderError> {
        if !config.has_client_secret {
            return Err(ProviderError::Unsupported);
        }
        let url = format!("{}/applications/{}/token", api(&config)?, config.client_id);
        let body = json!({ "access_token": access_token });
        let response = api_request("POST", &url, None, Some(body), ClientAuth::Basic)?;
        if response.status == 404 || response.status == 422 {
            return Ok(false);
        }
        let answer = http::json_body(&url, &response)?;
        Ok(answer["app"]["client_id"].as_str() == Some(config.client_id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authhost_provider_sdk::CodeExchange;
    use authhost_provider_sdk::testing::{Upstream, config, tokens};

    fn exchange() -> CodeExchange {
        CodeExchange {
            code: "c".into(),
            code_verifier: None,
            nonce: "n".into(),
        }
    }

    #[test]
    fn an_error_with_status_200_is_an_error() {
        let upstream = Upstream::new().json(
            "POST",
            "https://github.com/login/oauth/access_token",
            200,
            json!({"error": "bad_verification_code", "error_description": "expired"}),
        );
        let _on = upstream.install();
        let config = config(&[("base_url", "https://github.com")]);
        let err = GitHub::exchange_code(config, exchange()).unwrap_err();
        assert!(matches!(err, ProviderError::InvalidGrant(m) if m.contains("expired")));
        let sent = upstream.only_request();
        assert_eq!(sent.header("accept"), Some("application/json"));
        assert!(
            sent.form()
                .contains(&("client_id".into(), "test-client".into()))
        );
    }

    #[test]
    fn a_form_encoded_answer_parses() {
        let upstream = Upstream::new().form(
            "POST",
            "https://github.com/login/oauth/access_token",
            200,
            "access_token=gho_x&scope=read%3Auser&token_type=bearer",
        );
        let _on = upstream.install();
        let config = config(&[("base_url", "https://github.com")]);
        let tokens = GitHub::exchange_code(config, exchange()).unwrap();
        assert_eq!(tokens.access_token, "gho_x");
        assert_eq!(tokens.expires_in, None, "OAuth-App tokens never expire");
    }

    #[test]
    fn the_verified_primary_email_wins_and_orgs_become_groups() {
        let api = "https://api.github.com";
        let upstream = Upstream::new()
            .json("GET", &format!("{api}/user"), 200,
                json!({"id": 42, "login": "octo", "email": "public@x", "name": "Octo", "type": "User"}))
            .json("GET", &format!("{api}/user/emails"), 200, json!([
                {"email": "old@x", "primary": false, "verified": true},
                {"email": "me@x", "primary": true, "verified": true},
            ]))
            .json("GET", &format!("{api}/user/memberships/orgs/acme"), 200,
                json!({"state": "active", "role": "admin"}));
        let _on = upstream.install();
        let config = config(&[("api_url", api), ("orgs", "acme, other")]);
        let claims = GitHub::user_claims(config, tokens("gho_x")).unwrap();
        assert_eq!(claims.subject, "42");
        assert_eq!(claims.email.as_deref(), Some("me@x"));
        assert!(claims.email_verified);
        assert_eq!(claims.groups, ["acme"]);
        assert_eq!(claims.roles, ["acme:admin"]);
        assert_eq!(claims.extra["type"], "User");
    }
}

//! GitHub (and GitHub Enterprise Server). Not OpenID Connect: the user comes from the
//! REST API. Quirks handled: the token endpoint answers form-encoded unless asked for
//! JSON, and reports errors with status 200; OAuth-App tokens never expire and have no
//! refresh token, GitHub-App user tokens expire (8 h) and rotate their refresh token;
//! `/user` may hide the email, `/user/emails` has the verified primary one.

use authhost_provider_sdk::bindings::authhost::provider::http_client::Request;
use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, SettingKind, TokenAudience, TokenKind, TokenSet, http, settings, token,
    url_with_query,
};
use serde_json::{Value, json};

struct GitHub;

authhost_provider_sdk::export!(GitHub);

fn base(config: &ProviderConfig) -> Result<&str, ProviderError> {
    settings::base_url(config, "base_url")
}

fn api(config: &ProviderConfig) -> Result<&str, ProviderError> {
    settings::base_url(config, "api_url")
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

fn token_request(
    config: &ProviderConfig,
    params: &[(&str, &str)],
) -> Result<TokenSet, ProviderError> {
    let url = format!("{}/login/oauth/access_token", base(config)?);
    let mut params = params.to_vec();
    params.push(("client_id", &config.client_id));
    // post_form asks for JSON; without it GitHub answers form-encoded (both parse).
    let response = http::post_form(&url, &params, ClientAuth::FormPost)?;
    token::parse_response(&url, &response)
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
    let orgs = settings::list(config, "orgs");
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
    if settings::flag(config, "teams", false) {
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
            settings: vec![
                settings::spec(
                    "base_url",
                    SettingKind::Url,
                    Some("https://github.com"),
                    "GitHub, or your GitHub Enterprise Server (https://HOST).",
                ),
                settings::spec(
                    "api_url",
                    SettingKind::Url,
                    Some("https://api.github.com"),
                    "The REST API: https://api.github.com, or https://HOST/api/v3 for Enterprise Server.",
                ),
                settings::spec(
                    "orgs",
                    SettingKind::List,
                    None,
                    "Organizations whose active membership becomes a group (and `org:role` a role).",
                ),
                settings::spec(
                    "teams",
                    SettingKind::Boolean,
                    Some("false"),
                    "Also add `org/team` groups for teams in those organizations (scope read:org).",
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
        let scope = config.scopes.join(" ");
        let mut params = vec![
            ("client_id", config.client_id.as_str()),
            ("redirect_uri", config.redirect_uri.as_str()),
            ("scope", scope.as_str()),
            ("state", request.state.as_str()),
        ];
        if let Some(challenge) = &request.code_challenge {
            params.push(("code_challenge", challenge));
            params.push(("code_challenge_method", "S256"));
        }
        params.extend(request.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        url_with_query(
            &format!("{}/login/oauth/authorize", base(&config)?),
            &params,
        )
    }

    fn exchange_code(
        config: ProviderConfig,
        exchange: CodeExchange,
    ) -> Result<TokenSet, ProviderError> {
        let mut params = vec![
            ("code", exchange.code.as_str()),
            ("redirect_uri", config.redirect_uri.as_str()),
        ];
        if let Some(verifier) = &exchange.code_verifier {
            params.push(("code_verifier", verifier));
        }
        token_request(&config, &params)
    }

    fn refresh(config: ProviderConfig, refresh_token: String) -> Result<TokenSet, ProviderError> {
        // Only GitHub-App user tokens have refresh tokens; each use returns a new one.
        token_request(&config, &token::refresh_grant(&refresh_token))
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
            extra_json: json!({
                "avatar_url": user["avatar_url"],
                "html_url": user["html_url"],
                "type": user["type"],
            })
            .to_string(),
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
}

/// GitHub's check-token endpoint for OAuth and GitHub Apps: as the app (Basic, added by
/// the host), `POST /applications/{client_id}/token`; 404 for tokens of other apps,
/// personal access tokens and dead tokens.
impl TokenAudience for GitHub {
    fn can_check(config: ProviderConfig) -> bool {
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

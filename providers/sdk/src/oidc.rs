//! OpenID Connect for OIDC-based providers: discovery, the code flow ([`OidcClient`]),
//! ID token checks, and mapping standard claims to [`Claims`].

use crate::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, CodeFlow, ProviderConfig, ProviderError,
    TokenKind, TokenSet, cache, http,
};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

/// How long a discovery document is reused before it is fetched again.
const DISCOVERY_TTL_SECONDS: u32 = 3600;

/// The parts of an OpenID Provider's metadata providers use.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

impl Discovery {
    /// The well-known discovery URL for an issuer.
    pub fn url_for(issuer: &str) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        )
    }

    /// Fetch (or reuse from the instance cache) the discovery document at `url`.
    /// `expected_issuer` must match the document's `issuer` (OIDC Discovery 4.3).
    pub fn fetch(url: &str, expected_issuer: &str) -> Result<Discovery, ProviderError> {
        let key = format!("discovery:{url}");
        if let Some(doc) = cache::get(&key).and_then(|s| serde_json::from_str(s.as_str()).ok()) {
            return Ok(doc);
        }
        let value = http::get_json(url, None)?;
        let doc: Discovery = serde_json::from_value(value.clone()).map_err(|e| {
            ProviderError::UpstreamError(format!("{url} is not an OpenID discovery document: {e}"))
        })?;
        if doc.issuer.trim_end_matches('/') != expected_issuer.trim_end_matches('/') {
            return Err(ProviderError::InvalidConfig(format!(
                "issuer mismatch: configured `{expected_issuer}`, discovery says `{}`",
                doc.issuer
            )));
        }
        cache::set(&key, &value.to_string(), DISCOVERY_TTL_SECONDS);
        Ok(doc)
    }
}

/// The payload of a JWT, without checking its signature.
///
/// Only for ID tokens received directly from the token endpoint over TLS, where OIDC
/// Core 3.1.3.7 lets the client rely on TLS instead of the signature.
pub fn jwt_payload(token: &str) -> Result<Map<String, Value>, ProviderError> {
    let bad = |why: &str| ProviderError::UpstreamError(format!("malformed ID token: {why}"));
    let payload = token.split('.').nth(1).ok_or_else(|| bad("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("payload is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(bad("payload is not a JSON object")),
    }
}

/// Check an ID token's issuer, audience, nonce and expiry; return its claims.
pub fn check_id_token(
    token: &str,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
) -> Result<Map<String, Value>, ProviderError> {
    let claims = jwt_payload(token)?;
    let reject = |why: String| ProviderError::InvalidGrant(format!("ID token rejected: {why}"));
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(reject(format!("issuer `{iss}` is not `{issuer}`")));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(reject(format!("audience does not include `{client_id}`")));
    }
    if let Some(expected) = nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(expected)
    {
        return Err(reject("nonce does not match".into()));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Allow some clock skew between the upstream and this machine.
    if let Some(exp) = claims.get("exp").and_then(Value::as_u64)
        && exp + 300 < now
    {
        return Err(reject("expired".into()));
    }
    Ok(claims)
}

/// The authorization code flow against an OpenID provider, for providers built on OIDC
/// (the generic one, Keycloak, Google, ...): each maps its settings to one of these.
pub struct OidcClient<'a> {
    pub config: &'a ProviderConfig,
    pub issuer: String,
    pub discovery_url: String,
    /// How the host authenticates token requests when there is a client secret.
    pub secret_auth: ClientAuth,
    /// Merge the userinfo endpoint's claims into the ID token's.
    pub use_userinfo: bool,
}

impl<'a> OidcClient<'a> {
    /// A client for `issuer`, with discovery under it and Basic client authentication.
    pub fn new(config: &'a ProviderConfig, issuer: &str) -> Self {
        let issuer = issuer.trim_end_matches('/').to_string();
        OidcClient {
            config,
            discovery_url: Discovery::url_for(&issuer),
            issuer,
            secret_auth: ClientAuth::Basic,
            use_userinfo: true,
        }
    }

    pub fn discovery(&self) -> Result<Discovery, ProviderError> {
        Discovery::fetch(&self.discovery_url, &self.issuer)
    }

    /// The authorization URL, with `extra` parameters (e.g. `access_type=offline`).
    pub fn authorize_url(
        &self,
        request: &AuthorizeRequest,
        extra: &[(&str, &str)],
    ) -> Result<String, ProviderError> {
        authorize_url(&self.discovery()?, self.config, request, extra)
    }

    /// The plain code flow at the discovered endpoints, which does the posting.
    pub fn code_flow(&self) -> Result<CodeFlow<'a>, ProviderError> {
        let discovery = self.discovery()?;
        let mut flow = CodeFlow::new(
            self.config,
            discovery.authorization_endpoint,
            discovery.token_endpoint,
        )
        .client_auth(self.secret_auth);
        flow.revocation_endpoint = discovery.revocation_endpoint;
        Ok(flow)
    }

    /// Redeem the code; the ID token, when there is one, is checked (issuer, audience,
    /// nonce, expiry).
    pub fn exchange_code(&self, exchange: &CodeExchange) -> Result<TokenSet, ProviderError> {
        let tokens = self.code_flow()?.exchange_code(exchange)?;
        if let Some(id_token) = &tokens.id_token {
            check_id_token(
                id_token,
                &self.issuer,
                &self.config.client_id,
                Some(&exchange.nonce),
            )?;
        }
        Ok(tokens)
    }

    pub fn refresh(&self, refresh_token: &str) -> Result<TokenSet, ProviderError> {
        self.code_flow()?.refresh(refresh_token)
    }

    /// The user's claims: the ID token's, merged with userinfo's (OIDC Core 5.3.2: the
    /// `sub` must agree).
    pub fn claims(&self, tokens: &TokenSet) -> Result<Map<String, Value>, ProviderError> {
        let mut claims = match &tokens.id_token {
            Some(id_token) => check_id_token(id_token, &self.issuer, &self.config.client_id, None)?,
            None => Map::new(),
        };
        let discovery = self.discovery()?;
        if let Some(userinfo) = discovery
            .userinfo_endpoint
            .as_deref()
            .filter(|_| self.use_userinfo)
        {
            let info = http::get_json(userinfo, Some(&tokens.access_token))?;
            let info = info.as_object().cloned().unwrap_or_default();
            if let (Some(a), Some(b)) = (claims.get("sub"), info.get("sub"))
                && a != b
            {
                return Err(ProviderError::UpstreamError(
                    "userinfo `sub` differs from the ID token's".into(),
                ));
            }
            claims.extend(info);
        }
        Ok(claims)
    }

    /// Introspection (RFC 7662) needs client authentication, so a client secret.
    pub fn can_check_audience(&self) -> bool {
        self.config.has_client_secret
    }

    /// Whether `token` is live and was issued to this client, by RFC 7662
    /// introspection: the answer's `client_id` (or Keycloak's `azp`) must be ours, or,
    /// when it names none, its `aud` must include us.
    pub fn issued_to_client(&self, token: &str) -> Result<bool, ProviderError> {
        if !self.can_check_audience() {
            return Err(ProviderError::Unsupported);
        }
        let url = self.discovery()?.introspection_endpoint.ok_or_else(|| {
            ProviderError::UpstreamError(
                "the discovery document names no introspection_endpoint".into(),
            )
        })?;
        let response = self.code_flow()?.post_as_client(
            &url,
            vec![("token", token), ("token_type_hint", "access_token")],
        )?;
        let answer = http::json_body(&url, &response)?;
        if answer["active"] != Value::Bool(true) {
            return Ok(false);
        }
        let ours = self.config.client_id.as_str();
        if let Some(client) = answer["client_id"].as_str().or(answer["azp"].as_str()) {
            return Ok(client == ours);
        }
        match &answer["aud"] {
            Value::String(aud) => Ok(aud == ours),
            Value::Array(auds) => Ok(auds.iter().any(|a| a.as_str() == Some(ours))),
            _ => Err(ProviderError::UpstreamError(format!(
                "{url} names neither the token's client nor its audience"
            ))),
        }
    }

    /// RFC 7009 revocation, where the provider advertises an endpoint.
    pub fn revoke(&self, token: &str, kind: TokenKind) -> Result<(), ProviderError> {
        self.code_flow()?.revoke(token, kind)
    }
}

/// The authorization URL for `request` at the discovered endpoint: code flow, the
/// configured scopes, state, nonce, PKCE S256, then `extra` parameters.
pub fn authorize_url(
    discovery: &Discovery,
    config: &ProviderConfig,
    request: &AuthorizeRequest,
    extra: &[(&str, &str)],
) -> Result<String, ProviderError> {
    let mut params = vec![("nonce", request.nonce.as_str())];
    params.extend_from_slice(extra);
    crate::code_authorize_url(&discovery.authorization_endpoint, config, request, &params)
}

/// Names of the claims that carry groups and roles, which differ per upstream.
pub struct ClaimNames<'a> {
    pub groups: &'a str,
    pub roles: &'a str,
}

impl Default for ClaimNames<'_> {
    fn default() -> Self {
        ClaimNames {
            groups: "groups",
            roles: "roles",
        }
    }
}

/// Map standard OIDC claims (`sub`, `preferred_username`, `email`, ...) to [`Claims`].
/// Everything not mapped goes into `extra`.
pub fn map_claims(
    claims: &Map<String, Value>,
    names: &ClaimNames,
) -> Result<Claims, ProviderError> {
    let text = |key: &str| claims.get(key).and_then(Value::as_str).map(String::from);
    let subject = text("sub")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::UpstreamError("the user has no `sub` claim".into()))?;
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    const MAPPED: &[&str] = &[
        "sub",
        "preferred_username",
        "email",
        "email_verified",
        "name",
    ];
    let extra: Map<String, Value> = claims
        .iter()
        .filter(|(k, _)| !MAPPED.contains(&k.as_str()) && *k != names.groups && *k != names.roles)
        .filter(|(k, _)| !JWT_HOUSEKEEPING.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Claims {
        subject,
        username: text("preferred_username"),
        email: text("email"),
        email_verified,
        name: text("name"),
        groups: string_list(claim_path(claims, names.groups)),
        roles: string_list(claim_path(claims, names.roles)),
        extra: Value::Object(extra),
    })
}

/// Token bookkeeping claims that say nothing about the user.
const JWT_HOUSEKEEPING: &[&str] = &[
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "at_hash",
    "c_hash",
    "auth_time",
    "azp",
    "sid",
    "jti",
    "typ",
    "acr",
    "amr",
    "s_hash",
];

/// A claim by dotted path, e.g. `realm_access.roles`.
pub fn claim_path<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

/// A list of strings from an array, or from a single string (space or comma separated).
pub fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(Value::String(s)) => s
            .split([',', ' '])
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(payload: Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b64.encode(r#"{"alg":"RS256"}"#),
            b64.encode(payload.to_string())
        )
    }

    #[test]
    fn id_token_checks() {
        let token = jwt(json!({"iss":"https://idp","aud":["app"],"nonce":"n1","sub":"u"}));
        assert!(check_id_token(&token, "https://idp/", "app", Some("n1")).is_ok());
        assert!(check_id_token(&token, "https://other", "app", Some("n1")).is_err());
        assert!(check_id_token(&token, "https://idp", "other-app", Some("n1")).is_err());
        assert!(check_id_token(&token, "https://idp", "app", Some("n2")).is_err());
        let expired = jwt(json!({"iss":"https://idp","aud":"app","exp":1000}));
        assert!(check_id_token(&expired, "https://idp", "app", None).is_err());
    }

    #[test]
    fn claims_map_with_nested_roles() {
        let claims = json!({"sub":"u1","email":"a@x","email_verified":"true","groups":"a,b",
            "realm_access":{"roles":["admin"]},"exp":1,"tenant":"t"});
        let mapped = map_claims(
            claims.as_object().unwrap(),
            &ClaimNames {
                groups: "groups",
                roles: "realm_access.roles",
            },
        )
        .unwrap();
        assert_eq!(mapped.subject, "u1");
        assert!(mapped.email_verified);
        assert_eq!(mapped.groups, vec!["a", "b"]);
        assert_eq!(mapped.roles, vec!["admin"]);
        assert_eq!(
            mapped.extra,
            json!({"realm_access":{"roles":["admin"]},"tenant":"t"})
        );
    }
}

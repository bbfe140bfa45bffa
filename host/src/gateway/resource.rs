//! A protected MCP server as the gateway uses it: its `[mcp_servers.<name>]` block,
//! checked and compiled (policy, header names, static token) once, at start.

use super::forward::IdentityHeaders;
use super::policy::Policy;
use crate::config::{AuthMode, Config, McpServerConfig};
use crate::domain::external_tokens::ExternalIssuer;
use crate::domain::resources::ProtectedResource;
use crate::registry::Registry;
use crate::secret::{Secret, SecretKeys};
use axum::http::HeaderName;
use std::ops::Deref;
use std::sync::Arc;
use url::Url;

/// A protected MCP server, as the gateway reaches and polices it; what tokens know
/// of it (name, URL, scopes, provider) is its [`ProtectedResource`].
#[derive(Debug)]
pub struct Resource {
    pub protected: Arc<ProtectedResource>,
    pub upstream: Url,
    /// The same, parsed once for the HTTP client.
    pub upstream_uri: axum::http::Uri,
    /// The `[mcp_servers.<name>]` block as configured.
    pub settings: McpServerConfig,
    pub policy: Policy,
    pub identity_headers: IdentityHeaders,
    /// `static_token` mode: the token callers present.
    pub static_token: Option<Secret>,
    /// Where API keys and the static token may arrive (`api_key_headers`).
    pub api_key_headers: Vec<HeaderName>,
    /// `external` mode: the authorization server whose tokens are accepted.
    pub external: Option<ExternalIssuer>,
}

/// A gateway resource is read as its protected resource where that is all it takes.
impl Deref for Resource {
    type Target = ProtectedResource;
    fn deref(&self) -> &ProtectedResource {
        &self.protected
    }
}

impl Resource {
    /// The MCP server's URL with the request's query, as the gateway's client takes it.
    pub fn upstream_uri(&self, query: Option<&str>) -> axum::http::Uri {
        match query {
            None => self.upstream_uri.clone(),
            Some(query) => {
                let mut url = self.upstream.clone();
                url.set_query(Some(query));
                url.as_str()
                    .parse()
                    .unwrap_or_else(|_| self.upstream_uri.clone())
            }
        }
    }
}

fn offered_scopes(config: &Config, scopes: &[String], policy: &Policy) -> Vec<String> {
    let mut offered: Vec<String> = scopes.iter().chain(policy.rule_scopes()).cloned().collect();
    for broader in config.scopes.keys() {
        let implied = config.implied_scopes(std::slice::from_ref(broader));
        if implied.iter().any(|s| offered.contains(s)) && !offered.contains(broader) {
            offered.push(broader.clone());
        }
    }
    offered.dedup();
    offered
}

/// `client_token` servers accept only tokens issued to their provider's upstream
/// client: a provider that cannot check that is a config error, unless the operator
/// chose `client_token_any_audience`. Asks the components, so not part of `build`.
pub async fn check_client_token_audiences(
    resources: &[Arc<Resource>],
    registry: &Registry,
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for resource in resources {
        let settings = &resource.settings;
        if settings.auth != AuthMode::ClientToken || settings.client_token_any_audience {
            continue;
        }
        let Some(instance) = registry.instances.get(&resource.provider) else {
            continue;
        };
        let problem = match instance.can_check_audience().await {
            Ok(true) => continue,
            Ok(false) => "cannot tell whether a token was issued to its upstream client",
            Err(_) => "failed when asked whether it can check tokens' audience",
        };
        problems.push(format!(
            "mcp_servers.{}.auth: provider `{}` (component `{}`) {problem} (it may need a \
             client secret), so `client_token` would accept any token the upstream accepts, \
             other applications' and personal access tokens included; set \
             client_token_any_audience = true to accept that",
            resource.name, resource.provider, instance.component.info.id
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The protected MCP servers, checked: every problem is listed under its key.
pub fn build(
    config: &Config,
    issuer: &str,
    registry: &Registry,
) -> Result<Vec<Arc<Resource>>, Vec<String>> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (name, server) in &config.mcp_servers {
        let key = |k: &str| format!("mcp_servers.{name}.{k}");
        if !server.path.starts_with('/')
            || server.path.starts_with("/.well-known")
            || server.path.len() < 2
        {
            problems.push(format!(
                "{}: `{}` must be a path such as /mcp",
                key("path"),
                server.path
            ));
        }
        let upstream = match url::Url::parse(&server.upstream) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                problems.push(format!(
                    "{}: `{}` is not an http(s) URL",
                    key("upstream"),
                    server.upstream
                ));
                None
            }
        };
        let provider = match &server.provider {
            Some(p) => Some(p.clone()),
            None if registry.instances.len() == 1 => registry.instances.keys().next().cloned(),
            None => None,
        };
        let needs_provider = !matches!(server.auth, AuthMode::StaticToken | AuthMode::External);
        let provider = match provider {
            Some(p) if registry.instances.contains_key(&p) => Some(p),
            // Configured but broken: its own problems are reported under `providers`.
            Some(p) if config.providers.contains_key(&p) => None,
            Some(p) => {
                problems.push(format!("{}: no provider instance `{p}`", key("provider")));
                None
            }
            None if !needs_provider => Some(String::new()),
            None => {
                problems.push(format!(
                    "{}: required when there is not exactly one provider",
                    key("provider")
                ));
                None
            }
        };
        let static_token = match static_token(server) {
            Ok(token) => token,
            Err(why) => {
                problems.push(format!("mcp_servers.{name}: {why}"));
                None
            }
        };
        let policy = Policy::compile(&server.policy, &key("policy"))
            .map_err(|list| problems.extend(list))
            .ok();
        let identity_headers = IdentityHeaders::new(
            &server.identity,
            &server.upstream_token_header,
            &format!("mcp_servers.{name}"),
        )
        .map_err(|list| problems.extend(list))
        .ok();
        let mut api_key_headers = Vec::new();
        for name in &server.api_key_headers {
            match HeaderName::try_from(name.as_str()) {
                Ok(header) => api_key_headers.push(header),
                Err(_) => problems.push(format!(
                    "{}: `{name}` is not a valid header name",
                    key("api_key_headers")
                )),
            }
        }
        if let Some(delegation) = &server.delegation {
            if server.auth != AuthMode::OauthProxy {
                problems.push(format!(
                    "{}: only oauth_proxy servers receive authhost's tokens to exchange",
                    key("delegation")
                ));
            }
            if delegation.client_id.trim().is_empty() {
                problems.push(format!(
                    "{}: must name a client",
                    key("delegation.client_id")
                ));
            }
            if delegation.audiences.is_empty() {
                problems.push(format!(
                    "{}: name at least one",
                    key("delegation.audiences")
                ));
            }
            if !(1..=3600).contains(&delegation.token_ttl) {
                problems.push(format!(
                    "{}: between 1 and 3600 seconds",
                    key("delegation.token_ttl")
                ));
            }
        }
        if server.forward_upstream_token
            && matches!(server.auth, AuthMode::StaticToken | AuthMode::External)
        {
            problems.push(format!(
                "{}: static_token and external servers have no user upstream token to forward",
                key("forward_upstream_token")
            ));
        }
        if let (Some(upstream), Some(provider), Some(policy), Some(identity_headers)) =
            (upstream, provider, policy, identity_headers)
        {
            let path = server.path.trim_end_matches('/').to_string();
            let url = format!("{issuer}{path}");
            let scopes = server.scopes.clone().unwrap_or_else(|| vec!["mcp".into()]);
            let Ok(upstream_uri) = upstream.as_str().parse::<axum::http::Uri>() else {
                problems.push(format!(
                    "{}: `{upstream}` is not a usable URI",
                    key("upstream")
                ));
                continue;
            };
            let external = match (server.auth, &server.external) {
                (AuthMode::External, Some(external)) => {
                    let url = crate::config::canonical_url(&url).unwrap_or(url.clone());
                    match ExternalIssuer::new(external, &url, &|k| key(&format!("external.{k}"))) {
                        Ok(issuer) => Some(issuer),
                        Err(list) => {
                            problems.extend(list);
                            continue;
                        }
                    }
                }
                (AuthMode::External, None) => {
                    problems.push(format!(
                        "{}: auth = \"external\" needs [mcp_servers.{name}.external]",
                        key("external")
                    ));
                    continue;
                }
                (_, Some(_)) => {
                    problems.push(format!(
                        "{}: only applies to auth = \"external\"",
                        key("external")
                    ));
                    continue;
                }
                (_, None) => None,
            };
            let protected = ProtectedResource {
                name: name.clone(),
                display_name: server.display_name.clone().unwrap_or_else(|| name.clone()),
                url: crate::config::canonical_url(&url).unwrap_or(url),
                path,
                provider,
                offered_scopes: offered_scopes(config, &scopes, &policy),
                scopes,
                auth: server.auth,
                identity_token_ttl: server.identity.token_ttl,
                delegation: server.delegation.clone(),
                authorization_server: external
                    .as_ref()
                    .map_or_else(|| issuer.to_string(), |e| e.issuer.clone()),
            };
            out.push(Arc::new(Resource {
                protected: Arc::new(protected),
                upstream_uri,
                upstream,
                settings: server.clone(),
                policy,
                identity_headers,
                static_token,
                api_key_headers: api_key_headers.clone(),
                external,
            }));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The shared token of a `static_token` server, from its variable or file.
fn static_token(server: &McpServerConfig) -> Result<Option<Secret>, String> {
    let token = SecretKeys {
        key: "static_token",
        env: server.static_token_env.as_deref(),
        file: server.static_token_file.as_deref(),
        ..SecretKeys::default()
    }
    .load()?;
    match (server.auth, token) {
        (AuthMode::StaticToken, None) => {
            Err("auth = \"static_token\" needs static_token_env or static_token_file".into())
        }
        (AuthMode::StaticToken, Some(token)) if token.expose().len() < 16 => {
            Err("the static token is shorter than 16 characters; use a long random value".into())
        }
        (AuthMode::StaticToken, Some(token)) => Ok(Some(token)),
        (_, Some(_)) => {
            Err("static_token_env / static_token_file only apply to auth = \"static_token\"".into())
        }
        (_, None) => Ok(None),
    }
}

//! The protected MCP servers as the authorization server knows them: what tokens are
//! for (RFC 8707 resource indicators), which scopes they offer, and who signs users in.
//! The gateway adds what it needs to reach and police each one (`gateway/resource.rs`).

use crate::config::{AuthMode, DelegationConfig};
use std::sync::Arc;

#[derive(Debug)]
pub struct ProtectedResource {
    /// The `[mcp_servers.<name>]` key.
    pub name: String,
    pub display_name: String,
    /// The path at authhost, e.g. `/mcp`.
    pub path: String,
    /// The resource identifier: `<issuer><path>` (RFC 8707, the token audience).
    pub url: String,
    /// The provider instance users sign in with.
    pub provider: String,
    /// Scopes every token for it needs.
    pub scopes: Vec<String>,
    /// Scopes clients may ask for: its own, those its policy rules require (for
    /// step-up), and broader ones that imply any of them (`[scopes]`).
    pub offered_scopes: Vec<String>,
    pub auth: AuthMode,
    /// The lifetime of identity tokens sent to it (seconds).
    pub identity_token_ttl: u64,
    /// Token exchange for it, when the operator allows it.
    pub delegation: Option<DelegationConfig>,
    /// The authorization server its tokens come from, as its metadata names it:
    /// authhost, or the external one (`auth = "external"`).
    pub authorization_server: String,
}

impl ProtectedResource {
    pub fn offers_scope(&self, scope: &str) -> bool {
        self.offered_scopes.iter().any(|s| s == scope)
    }
}

/// Every protected MCP server.
pub struct Resources {
    issuer: String,
    all: Vec<Arc<ProtectedResource>>,
}

impl Resources {
    pub fn new(issuer: &str, all: Vec<Arc<ProtectedResource>>) -> Resources {
        Resources {
            issuer: issuer.to_string(),
            all,
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ProtectedResource>> {
        self.all.iter()
    }

    /// The MCP servers clients get authhost's tokens for (auth mode `oauth_proxy`).
    pub fn oauth(&self) -> impl Iterator<Item = &Arc<ProtectedResource>> {
        self.all.iter().filter(|r| r.auth == AuthMode::OauthProxy)
    }

    /// The MCP servers with protected resource metadata: those whose clients get
    /// tokens by OAuth, from authhost or an external authorization server.
    pub fn with_metadata(&self) -> impl Iterator<Item = &Arc<ProtectedResource>> {
        self.all
            .iter()
            .filter(|r| matches!(r.auth, AuthMode::OauthProxy | AuthMode::External))
    }

    /// The resource a `resource` parameter names (compared in canonical form); the
    /// only one when none is given.
    pub fn requested(&self, requested: Option<&str>) -> Option<&ProtectedResource> {
        match requested {
            Some(url) => {
                let url = crate::config::canonical_url(url)?;
                self.oauth().find(|r| r.url == url).map(|r| &**r)
            }
            None => {
                let mut all = self.oauth();
                match (all.next(), all.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }

    /// Where the protected resource metadata of `resource` lives (RFC 9728 3.1).
    pub fn metadata_url(&self, resource: &ProtectedResource) -> String {
        format!(
            "{}/.well-known/oauth-protected-resource{}",
            self.issuer, resource.path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(name: &str, auth: AuthMode) -> Arc<ProtectedResource> {
        Arc::new(ProtectedResource {
            name: name.into(),
            display_name: name.into(),
            path: format!("/{name}"),
            url: format!("https://auth.example/{name}"),
            provider: "up".into(),
            scopes: vec!["mcp".into()],
            offered_scopes: vec!["mcp".into()],
            auth,
            identity_token_ttl: 60,
            delegation: None,
            authorization_server: "https://auth.example".into(),
        })
    }

    #[test]
    fn a_resource_parameter_is_matched_in_canonical_form_among_oauth_servers() {
        let resources = Resources::new(
            "https://auth.example",
            vec![
                resource("a", AuthMode::OauthProxy),
                resource("b", AuthMode::StaticToken),
            ],
        );
        let found = resources.requested(Some("HTTPS://Auth.Example/a"));
        assert_eq!(found.map(|r| r.name.as_str()), Some("a"));
        // Not an OAuth server: no tokens for it.
        assert!(
            resources
                .requested(Some("https://auth.example/b"))
                .is_none()
        );
        // Without a parameter, the only OAuth server.
        assert_eq!(
            resources.requested(None).map(|r| r.name.as_str()),
            Some("a")
        );
        assert_eq!(
            resources.metadata_url(&resource("a", AuthMode::OauthProxy)),
            "https://auth.example/.well-known/oauth-protected-resource/a"
        );
    }

    #[test]
    fn without_a_parameter_two_oauth_servers_are_ambiguous() {
        let resources = Resources::new(
            "https://auth.example",
            vec![
                resource("a", AuthMode::OauthProxy),
                resource("c", AuthMode::OauthProxy),
            ],
        );
        assert!(resources.requested(None).is_none());
    }
}

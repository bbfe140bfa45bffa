//! `[enterprise]`: identity providers whose Identity Assertion Authorization Grants
//! (ID-JAG, the MCP Enterprise-Managed Authorization extension) authhost redeems.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnterpriseConfig {
    /// `[[enterprise.issuers]]`: the identity providers trusted to vouch for users.
    pub issuers: Vec<TrustedIssuerConfig>,
    /// Fetch issuers' keys from private, loopback or link-local addresses (tests, labs).
    pub allow_private_hosts: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerConfig {
    /// The issuer identifier, exactly as its ID-JAGs' `iss` says.
    pub issuer: String,
    /// Where its public keys are (a JWK Set, https).
    pub jwks_url: String,
    /// Signing algorithms accepted from it (public-key ones only).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Which of its claims make authhost's user.
    #[serde(default)]
    pub claims: ClaimNames,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

/// The names of the issuer's claims that become the user's subject, email, name,
/// username and groups (Okta and Entra ID name some of them differently).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimNames {
    pub subject: String,
    pub email: String,
    pub name: String,
    pub username: String,
    pub groups: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            subject: "sub".into(),
            email: "email".into(),
            name: "name".into(),
            username: "preferred_username".into(),
            groups: "groups".into(),
        }
    }
}

//! `[mcp_servers.<name>]`: an MCP server behind authhost, how callers authenticate to
//! it, what authhost tells it about them, and who may call which tool.

use serde::Deserialize;

/// An MCP server behind authhost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The path clients use at authhost, e.g. `/mcp`; the resource is `<base_url><path>`.
    pub path: String,
    /// The MCP server's own streamable-HTTP URL.
    pub upstream: String,
    /// The provider instance users sign in with; the only one when omitted.
    pub provider: Option<String>,
    /// Scopes a token needs for this server (default `["mcp"]`).
    pub scopes: Option<Vec<String>>,
    /// A name for pages; defaults to the table name.
    pub display_name: Option<String>,
    /// How callers authenticate.
    #[serde(default)]
    pub auth: AuthMode,
    /// Also accept authhost API keys (`authhost api-keys create`), in any mode.
    #[serde(default)]
    pub api_keys: bool,
    /// Where an API key or the static token may arrive: `Authorization` (as
    /// `Bearer <key>`) and/or headers that carry the bare key (`X-API-Key`). They are
    /// never forwarded; a request with credentials in two of them is refused.
    #[serde(default = "default_api_key_headers")]
    pub api_key_headers: Vec<String>,
    /// Pass the MCP server's `Set-Cookie` headers on to clients (on authhost's origin).
    #[serde(default)]
    pub relay_cookies: bool,
    /// `static_token` mode: the shared token, from an environment variable or a file.
    pub static_token_env: Option<String>,
    pub static_token_file: Option<std::path::PathBuf>,
    /// `static_token` mode: the identity every caller gets.
    pub static_subject: Option<String>,
    #[serde(default)]
    pub static_groups: Vec<String>,
    /// `client_token` mode: how long a validated upstream token is trusted (seconds).
    #[serde(default = "default_client_token_cache")]
    pub client_token_cache_seconds: u64,
    /// `client_token` mode with a provider that cannot tell whose token it is: accept
    /// any token the upstream accepts, other applications' and personal ones included.
    #[serde(default)]
    pub client_token_any_audience: bool,
    /// Send the user's upstream token to the MCP server (refreshed when it expires).
    #[serde(default)]
    pub forward_upstream_token: bool,
    /// The header it goes in; `Authorization` gets `Bearer <token>`.
    #[serde(default = "default_upstream_token_header")]
    pub upstream_token_header: String,
    /// How long the MCP server may take to start answering (milliseconds).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest request body accepted (bytes).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `auth = "external"`: the authorization server whose tokens are accepted.
    pub external: Option<ExternalAuthConfig>,
    /// Let the MCP server exchange its callers' tokens for tokens to other APIs
    /// (RFC 8693), instead of receiving their upstream tokens.
    pub delegation: Option<DelegationConfig>,
}

/// `[mcp_servers.<name>.external]`: an authorization server other than authhost (an
/// IdP acting as the MCP authorization server). Its access tokens are JWTs checked
/// against its published keys: signature, `iss`, `aud`, expiry, `typ`, scopes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalAuthConfig {
    /// Its issuer identifier, as its tokens' `iss` and its metadata say.
    pub issuer: String,
    /// Where its signing keys are (a JWK Set).
    pub jwks_url: String,
    /// Audiences accepted besides the resource itself (RFC 8707), for IdPs that
    /// cannot set it (e.g. `api://mcp-docs`).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Signing algorithms accepted (public-key ones only).
    #[serde(default = "default_external_algorithms")]
    pub algorithms: Vec<String>,
    /// Fetch its keys from private, loopback or link-local addresses (tests, labs).
    #[serde(default)]
    pub allow_private_hosts: bool,
    /// For opaque (non-JWT) tokens: its introspection endpoint (RFC 7662), and the
    /// client authhost authenticates there as (HTTP Basic).
    pub introspection_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<std::path::PathBuf>,
}

fn default_external_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

/// `[mcp_servers.<name>.delegation]`: the MCP server, authenticated as a confidential
/// client, trades a user's access token it received for a short-lived token to one of
/// `audiences`, naming it as the actor (`act`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationConfig {
    /// The confidential client (`[[clients]]` or `authhost clients add`) the MCP
    /// server authenticates as at `/token`.
    pub client_id: String,
    /// The APIs it may get tokens for (their audience identifiers).
    pub audiences: Vec<String>,
    /// Scopes those tokens may carry (each also held by the user's token); empty: any
    /// of the user's.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Their lifetime (seconds); never beyond the user's token.
    #[serde(default = "default_delegation_ttl")]
    pub token_ttl: u64,
}

fn default_delegation_ttl() -> u64 {
    300
}

impl Default for McpServerConfig {
    fn default() -> Self {
        McpServerConfig {
            path: String::new(),
            upstream: String::new(),
            provider: None,
            scopes: None,
            display_name: None,
            auth: AuthMode::default(),
            api_keys: false,
            api_key_headers: default_api_key_headers(),
            relay_cookies: false,
            static_token_env: None,
            static_token_file: None,
            static_subject: None,
            static_groups: Vec::new(),
            client_token_cache_seconds: default_client_token_cache(),
            client_token_any_audience: false,
            forward_upstream_token: false,
            upstream_token_header: default_upstream_token_header(),
            timeout_ms: default_timeout_ms(),
            max_request_bytes: default_max_request_bytes(),
            identity: IdentityConfig::default(),
            policy: PolicyConfig::default(),
            external: None,
            delegation: None,
        }
    }
}

/// How callers of an MCP server authenticate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// The full OAuth flow: authhost's own access tokens, the user signs in upstream.
    #[default]
    OauthProxy,
    /// The client presents a token of the upstream provider, validated through the
    /// provider's claims call (cached briefly). No fallback to a shared token.
    ClientToken,
    /// One shared token from config; every caller is the same configured identity.
    StaticToken,
    /// Another authorization server (the company's IdP) issues the tokens; authhost
    /// names it in the protected resource metadata and validates its JWTs.
    External,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::OauthProxy => "oauth_proxy",
            AuthMode::ClientToken => "client_token",
            AuthMode::StaticToken => "static_token",
            AuthMode::External => "external",
        }
    }
}

/// What the MCP server is told about the caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Send identity headers.
    pub headers: bool,
    pub user_id_header: String,
    pub username_header: String,
    pub email_header: String,
    pub name_header: String,
    /// Comma-separated.
    pub groups_header: String,
    pub roles_header: String,
    pub client_id_header: String,
    /// Send a short-lived JWT of the identity, signed with authhost's keys (JWKS).
    pub token: bool,
    pub token_header: String,
    /// Its lifetime (seconds).
    pub token_ttl: u64,
    /// Its `aud`; defaults to the MCP server's upstream URL.
    pub token_audience: Option<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            headers: true,
            user_id_header: "X-Authhost-Subject".into(),
            username_header: "X-Authhost-Username".into(),
            email_header: "X-Authhost-Email".into(),
            name_header: "X-Authhost-Name".into(),
            groups_header: "X-Authhost-Groups".into(),
            roles_header: "X-Authhost-Roles".into(),
            client_id_header: "X-Authhost-Client-Id".into(),
            token: false,
            token_header: "X-Authhost-Identity".into(),
            token_ttl: 60,
            token_audience: None,
        }
    }
}

/// Who may use the server and which of its tools, resources and prompts. Decided on
/// every request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// A CEL expression over the caller that must be true to use the server at all,
    /// e.g. `user.email.endsWith("@example.com")`.
    pub allow: Option<String>,
    /// Only these tools (glob patterns); empty means every tool.
    pub allow_tools: Vec<String>,
    /// Never these tools (glob patterns).
    pub deny_tools: Vec<String>,
    /// Rules for some tools: `[[mcp_servers.<name>.policy.tools]]`.
    pub tools: Vec<ToolRule>,
    /// Only these resources (URI glob patterns); empty means every resource.
    pub allow_resources: Vec<String>,
    /// Never these resources (URI glob patterns).
    pub deny_resources: Vec<String>,
    /// Rules for some resources: `[[mcp_servers.<name>.policy.resources]]`.
    pub resources: Vec<ResourceRule>,
    /// Only these prompts (glob patterns); empty means every prompt.
    pub allow_prompts: Vec<String>,
    /// Never these prompts (glob patterns).
    pub deny_prompts: Vec<String>,
    /// Rules for some prompts: `[[mcp_servers.<name>.policy.prompts]]`.
    pub prompts: Vec<PromptRule>,
}

/// A condition on calling the tools it names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRule {
    /// Tool names (glob patterns) the rule covers.
    pub tools: Vec<String>,
    /// A CEL expression that must be true.
    pub allow: Option<String>,
    /// Scopes the caller must hold.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A condition on reading the resources it names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRule {
    /// Resource URIs (glob patterns) the rule covers.
    pub uris: Vec<String>,
    pub allow: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A condition on getting the prompts it names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptRule {
    /// Prompt names (glob patterns) the rule covers.
    pub prompts: Vec<String>,
    pub allow: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn default_api_key_headers() -> Vec<String> {
    vec!["Authorization".into()]
}

fn default_client_token_cache() -> u64 {
    60
}

fn default_upstream_token_header() -> String {
    "Authorization".into()
}

fn default_timeout_ms() -> u64 {
    300_000
}

fn default_max_request_bytes() -> usize {
    4 << 20
}

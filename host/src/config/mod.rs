//! The configuration file (TOML). Every section and key is optional; the defaults run
//! on one machine. Provider blocks take common keys plus the component's own settings.
//! `examples/config.toml` documents every key with its default.

mod enterprise;
mod load;
mod mcp;

pub use enterprise::{ClaimNames, EnterpriseConfig, TrustedIssuerConfig};
pub use load::ConfigErrors;
pub use mcp::{
    AuthMode, DelegationConfig, ExternalAuthConfig, IdentityConfig, McpServerConfig, PolicyConfig,
    PromptRule, ResourceRule, ToolRule,
};

use crate::runtime::Limits;
use crate::secret::{Secret, SecretKeys};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Provider instances by id: `[providers.github]`, `[providers.corp-keycloak]`.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Protected MCP servers by name: `[mcp_servers.docs]`.
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, McpServerConfig>,
    #[serde(default)]
    pub tokens: TokenConfig,
    #[serde(default)]
    pub consent: ConsentConfig,
    #[serde(default)]
    pub registration: RegistrationConfig,
    #[serde(default)]
    pub client_metadata: ClientMetadataConfig,
    /// Pre-registered clients: `[[clients]]`.
    #[serde(default)]
    pub clients: Vec<StaticClientConfig>,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub rate_limits: RateLimitConfig,
    /// Scope hierarchy: a scope and the narrower ones it implies,
    /// `[scopes] "mcp:admin" = ["mcp:write", "mcp:read"]`. Every scope check honours it.
    #[serde(default)]
    pub scopes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub enterprise: EnterpriseConfig,
}

/// Requests per minute per client address (burst: as many at once); 0 turns one off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub register_per_minute: u32,
    pub authorize_per_minute: u32,
    pub token_per_minute: u32,
    pub revoke_per_minute: u32,
    pub introspect_per_minute: u32,
    /// Failed authentications at MCP servers (bad tokens or keys); past this the
    /// address gets 429 without its credentials being looked at.
    pub gateway_auth_failures_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            register_per_minute: 20,
            authorize_per_minute: 60,
            token_per_minute: 600,
            revoke_per_minute: 120,
            // Resource servers may introspect every request they serve.
            introspect_per_minute: 3000,
            gateway_auth_failures_per_minute: 60,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `text` for people, `json` for log collectors (one object per line).
    pub format: LogFormat,
    /// Also append audit events (sign-in, consent, tokens, revocation, denials) to this
    /// file, one JSON object per line. They always go to the log with target `audit`.
    pub audit_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Lifetime of authhost's access tokens (seconds), independent of the upstream's.
    pub access_token_ttl: u64,
    /// Lifetime of a refresh token (seconds); every use rotates it.
    pub refresh_token_ttl: u64,
    /// Lifetime of an authorization code (seconds).
    pub authorization_code_ttl: u64,
    /// How long a started authorization may take, consent and upstream login included.
    pub authorization_request_ttl: u64,
    /// How old the user's claims may be (seconds) before a refresh asks the upstream
    /// again: it refreshes the upstream tokens where the provider can and runs the
    /// provider's claims call; an upstream that refuses ends the grant.
    pub claims_max_age: u64,
    /// How long a grant lives at most without a new sign-in (seconds), however often
    /// it is refreshed.
    pub max_session_age: u64,
    /// How often every instance looks for rotated or retired signing keys (seconds).
    pub key_refresh_seconds: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            access_token_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
            authorization_code_ttl: 60,
            authorization_request_ttl: 600,
            claims_max_age: 3600,
            max_session_age: 30 * 24 * 3600,
            key_refresh_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentConfig {
    /// Skip the consent page for a client this browser approved before. Off by default:
    /// every authorization asks.
    pub remember: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Dynamic client registration (RFC 7591) at `/register`.
    pub enabled: bool,
    /// Redirect URIs registration accepts, as patterns: `*` matches within one host
    /// label, port or path segment, `**` (in the path only) across segments; see
    /// `oauth/redirect_patterns.rs`.
    pub allowed_redirect_uris: Vec<String>,
    /// Self-registered clients that complete no sign-in within this time (seconds)
    /// are deleted.
    pub unused_client_ttl: u64,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            enabled: true,
            allowed_redirect_uris: [
                "http://localhost/**",
                "http://localhost:*/**",
                "http://127.0.0.1/**",
                "http://127.0.0.1:*/**",
                "http://[::1]/**",
                "http://[::1]:*/**",
                "cursor://*/**",
                "vscode://*/**",
                "vscode-insiders://*/**",
            ]
            .map(String::from)
            .to_vec(),
            unused_client_ttl: 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientMetadataConfig {
    /// Accept URL client ids (client ID metadata documents).
    pub enabled: bool,
    /// Allow documents on private, loopback or link-local addresses (tests, labs).
    pub allow_private_hosts: bool,
    /// Largest document accepted (bytes).
    pub max_bytes: usize,
    /// Time limit of one fetch, the DNS lookup included (milliseconds).
    pub timeout_ms: u64,
    /// How long a failed fetch is remembered before the document is tried again
    /// (seconds).
    pub failure_cache_seconds: u64,
}

impl Default for ClientMetadataConfig {
    fn default() -> Self {
        ClientMetadataConfig {
            enabled: true,
            allow_private_hosts: false,
            max_bytes: 5 * 1024,
            timeout_ms: 5000,
            failure_cache_seconds: 10,
        }
    }
}

/// A client known in advance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticClientConfig {
    pub client_id: String,
    pub name: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The public URL clients and upstreams reach authhost at (behind a proxy, the
    /// proxy's). Defaults to `http://<listen>`.
    pub base_url: Option<String>,
    /// Folder for the database, keys and the compiled-component cache.
    pub data_dir: PathBuf,
    /// `sqlite://path` or `postgres://...`; defaults to `<data_dir>/authhost.db`.
    pub database_url: Option<String>,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`,
    /// `X-Forwarded-Proto` and `X-Forwarded-Host` are believed: the client address in
    /// logs, and a warning when `base_url` disagrees with what the proxy says.
    pub trusted_proxies: Vec<String>,
    /// Origins of web pages whose scripts may call the discovery, registration, token
    /// and MCP endpoints (CORS), e.g. `https://app.example.com`; `*` for any. None by
    /// default (`serve --dev`: any).
    pub cors_origins: Vec<String>,
    /// Origins whose pages may send requests to the MCP endpoints (a request with
    /// another `Origin` gets 403, against DNS rebinding): `base_url`'s origin and
    /// `cors_origins`, plus these.
    pub allowed_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_url: None,
            data_dir: PathBuf::from("authhost-data"),
            database_url: None,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The public URL in its canonical form (lower-case scheme and host, no default
    /// port, no trailing slash): it is the issuer, compared byte for byte by clients.
    pub fn base_url(&self) -> String {
        match &self.base_url {
            Some(url) => {
                canonical_url(url).unwrap_or_else(|| url.trim_end_matches('/').to_string())
            }
            None => format!("http://{}", self.listen),
        }
    }

    /// Why `base_url` cannot be used, if it cannot. It must be an origin: RFC 8414 and
    /// RFC 9728 put metadata at `/.well-known/...` of the origin with the issuer's path
    /// inserted, and clients find it only where authhost answers at the root.
    pub fn base_url_problem(&self) -> Option<String> {
        let url = self.base_url.as_ref()?;
        match url::Url::parse(url) {
            Err(e) => Some(format!("server.base_url: `{url}` is not a URL: {e}")),
            Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
                Some(format!("server.base_url: `{url}` must be an http(s) URL"))
            }
            Ok(parsed)
                if parsed.path() != "/"
                    || parsed.query().is_some()
                    || parsed.fragment().is_some() =>
            {
                Some(format!(
                    "server.base_url: `{url}` has a path; authhost must be served at the root of its own origin (a host name of its own), because MCP clients look for its metadata at {}/.well-known/oauth-authorization-server",
                    parsed.origin().ascii_serialization()
                ))
            }
            Ok(_) => None,
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("authhost.db").display()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Every `*.wasm` here is loaded at start, beside the bundled providers.
    pub providers_dir: Option<PathBuf>,
    /// Cache compiled components, so restarts do not recompile.
    pub compile_cache: bool,
    /// Where; defaults to `<data_dir>/component-cache`.
    pub compile_cache_dir: Option<PathBuf>,
    /// Provider calls that may run at once.
    pub max_concurrent_calls: u32,
    /// The most memory any provider instance may be given (MiB).
    pub max_memory_mib: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            providers_dir: None,
            compile_cache: true,
            compile_cache_dir: None,
            max_concurrent_calls: 256,
            max_memory_mib: 256,
        }
    }
}

/// One `[providers.<id>]` block.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProviderConfig {
    /// The component's id (`oidc`, `github`, ...); defaults to the block's name.
    pub component: Option<String>,
    #[serde(default)]
    pub client_id: String,
    /// The upstream client secret, inline. Prefer `client_secret_env` or `_file`.
    pub client_secret: Option<String>,
    /// Name of an environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// A file holding the client secret (trailing newline ignored).
    pub client_secret_file: Option<PathBuf>,
    /// Upstream scopes; the component's defaults when absent.
    pub scopes: Option<Vec<String>>,
    /// Hosts the component may call; by default the hosts of its URL settings.
    pub allowed_hosts: Option<Vec<String>>,
    /// Refuse to start unless the component's sha256 is this.
    pub sha256: Option<String>,
    pub max_memory_mib: Option<usize>,
    pub cpu_time_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub http_timeout_ms: Option<u64>,
    pub max_response_kib: Option<usize>,
    pub max_http_requests: Option<u32>,
    /// Everything else: the component's own settings (`issuer`, `base_url`, ...).
    #[serde(flatten)]
    pub settings: BTreeMap<String, toml::Value>,
}

impl Config {
    /// Parse TOML text alone: no interpolation, no environment.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }
}

/// A URL as resource indicators are compared (RFC 8707, RFC 3986 6.2.2): lower-case
/// scheme and host, no default port, dot segments resolved, percent-encoding of
/// unreserved characters undone and hex digits in upper case, no trailing slash.
/// `None` for what is not an absolute URL or has a fragment.
pub fn canonical_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if parsed.fragment().is_some() || parsed.cannot_be_a_base() {
        return None;
    }
    let text = parsed.as_str();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let hex = rest.get(at + 1..at + 3).unwrap_or("");
        match u8::from_str_radix(hex, 16) {
            Ok(b) if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => out.push(b as char),
            Ok(_) => {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            Err(_) => out.push_str(&rest[at..at + 1 + hex.len()]),
        }
        rest = &rest[at + 1 + hex.len()..];
    }
    out.push_str(rest);
    match out.find('?') {
        Some(q) => {
            let (path, query) = out.split_at(q);
            Some(format!("{}{query}", path.trim_end_matches('/')))
        }
        None => Some(out.trim_end_matches('/').to_string()),
    }
}

impl Config {
    /// `granted` and every scope they imply, transitively (`[scopes]`).
    pub fn implied_scopes(&self, granted: &[String]) -> Vec<String> {
        let mut all: Vec<String> = granted.to_vec();
        let mut i = 0;
        while i < all.len() {
            for implied in self.scopes.get(&all[i]).into_iter().flatten() {
                if !all.contains(implied) {
                    all.push(implied.clone());
                }
            }
            i += 1;
        }
        all
    }
}

impl ProviderConfig {
    /// The client secret from whichever key holds it. Errors name the key, never the value.
    pub fn client_secret(&self) -> Result<Option<Secret>, String> {
        SecretKeys {
            key: "client_secret",
            inline: self.client_secret.as_deref(),
            env: self.client_secret_env.as_deref(),
            file: self.client_secret_file.as_deref(),
        }
        .load()
    }

    /// Settings as strings: lists become comma-separated, other values their text.
    pub fn settings(&self) -> Result<BTreeMap<String, String>, String> {
        self.settings
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                        value.to_string()
                    }
                    toml::Value::Array(items) => items
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => {
                        return Err(format!(
                            "key `{key}` must be a string, number, boolean or list"
                        ));
                    }
                };
                Ok((key.clone(), text))
            })
            .collect()
    }

    /// The limits with this block's overrides.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(mib) = self.max_memory_mib {
            limits.memory_bytes = mib << 20;
        }
        if let Some(ms) = self.cpu_time_ms {
            limits.cpu_time = Duration::from_millis(ms);
        }
        if let Some(ms) = self.timeout_ms {
            limits.call_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.http_timeout_ms {
            limits.http_timeout = Duration::from_millis(ms);
        }
        if let Some(kib) = self.max_response_kib {
            limits.max_response_bytes = kib << 10;
        }
        if let Some(n) = self.max_http_requests {
            limits.max_http_requests = n;
        }
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_block_splits_common_keys_from_settings() {
        let config = Config::from_toml(
            r#"
            [providers.corp]
            component = "oidc"
            client_id = "authhost"
            client_secret_env = "AUTHHOST_TEST_UNSET_VAR"
            issuer = "https://id.example.com/realms/corp"
            use_userinfo = false
            cpu_time_ms = 50
            "#,
        )
        .unwrap();
        let corp = &config.providers["corp"];
        assert_eq!(corp.component.as_deref(), Some("oidc"));
        let settings = corp.settings().unwrap();
        assert_eq!(settings["issuer"], "https://id.example.com/realms/corp");
        assert_eq!(settings["use_userinfo"], "false");
        assert_eq!(corp.limits().cpu_time, Duration::from_millis(50));
        let err = corp.client_secret().unwrap_err();
        assert!(err.contains("client_secret_env") && err.contains("AUTHHOST_TEST_UNSET_VAR"));
    }

    #[test]
    fn the_sample_config_parses_with_the_defaults_it_documents() {
        let sample = Config::from_toml(include_str!("../../../examples/config.toml"))
            .expect("examples/config.toml parses");
        let docs = &sample.mcp_servers["docs"];
        let defaults = McpServerConfig::default();
        assert_eq!(docs.timeout_ms, defaults.timeout_ms);
        assert_eq!(docs.max_request_bytes, defaults.max_request_bytes);
        assert_eq!(
            docs.client_token_cache_seconds,
            defaults.client_token_cache_seconds
        );
        assert_eq!(docs.identity.token_ttl, defaults.identity.token_ttl);
        assert_eq!(docs.identity.groups_header, defaults.identity.groups_header);
        assert_eq!(
            sample.tokens.refresh_token_ttl,
            TokenConfig::default().refresh_token_ttl
        );
    }

    #[test]
    fn scopes_imply_narrower_ones_transitively() {
        let config = Config::from_toml(
            r#"
            [scopes]
            "mcp:admin" = ["mcp:write"]
            "mcp:write" = ["mcp:read"]
            "#,
        )
        .unwrap();
        let all = config.implied_scopes(&["mcp:admin".into()]);
        assert_eq!(all, ["mcp:admin", "mcp:write", "mcp:read"]);
        assert_eq!(config.implied_scopes(&["mcp:read".into()]), ["mcp:read"]);
    }

    #[test]
    fn resources_compare_in_canonical_form() {
        let canonical = "http://mcp.example.com/mcp";
        for spelling in [
            "http://mcp.example.com/mcp",
            "HTTP://MCP.Example.COM/mcp",
            "http://mcp.example.com:80/mcp",
            "http://mcp.example.com/mcp/",
            "http://mcp.example.com/%6Dcp",
            "http://mcp.example.com/x/../mcp",
        ] {
            assert_eq!(
                canonical_url(spelling).as_deref(),
                Some(canonical),
                "{spelling}"
            );
        }
        assert_eq!(
            canonical_url("https://a.example:443/p%2fq").as_deref(),
            Some("https://a.example/p%2Fq")
        );
        assert!(canonical_url("https://a.example/mcp#frag").is_none());
        assert!(canonical_url("/mcp").is_none());
        let with_path = ServerConfig {
            base_url: Some("https://auth.example.com/tenant".into()),
            ..ServerConfig::default()
        };
        assert!(with_path.base_url_problem().unwrap().contains("has a path"));
        let root = ServerConfig {
            base_url: Some("HTTPS://Auth.Example.com:443/".into()),
            ..ServerConfig::default()
        };
        assert_eq!(root.base_url_problem(), None);
        assert_eq!(root.base_url(), "https://auth.example.com");
    }

    #[test]
    fn unknown_top_level_keys_are_named() {
        let err = Config::from_toml("[server]\nlisten_addr = \"x\"").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }
}

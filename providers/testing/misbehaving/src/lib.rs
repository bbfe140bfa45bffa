//! Misbehaves on purpose, by the `mode` setting; see ../README.md.

use authhost_provider_sdk::settings::specs;
use authhost_provider_sdk::transport::{self, Request};
use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, Setting, TokenSet,
};
use serde_json::json;

struct Misbehaving;

authhost_provider_sdk::export!(Misbehaving);

const MODE: Setting = Setting::text("mode", "");
const URL: Setting = Setting::url("url", "");
const CLIENT_AUTH: Setting = Setting::text("client_auth", "");

/// A value handed back through `authorize-url`, whose output the host only accepts as
/// a URL on an allowed host: `https://upstream.test/result?value=<value>`.
fn result(value: &str) -> Result<String, ProviderError> {
    authhost_provider_sdk::url_with_query("https://upstream.test/result", &[("value", value)])
}

fn send(method: &str, url: &str, auth: ClientAuth) -> Result<String, ProviderError> {
    let body = (method == "POST").then(|| b"grant_type=test".to_vec());
    let response = transport::send(&Request {
        method: method.into(),
        url: url.into(),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body,
        client_auth: auth,
    })
    .map_err(|e| ProviderError::UpstreamError(format!("{e:?}")))?;
    result(&format!(
        "{} {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    ))
}

fn mode(config: &ProviderConfig) -> &str {
    MODE.get(config).unwrap_or("ok")
}

impl Provider for Misbehaving {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "misbehaving".into(),
            display_name: "Misbehaving (tests only)".into(),
            version: "0.0.1".into(),
            default_scopes: vec![],
            settings: specs(&[MODE, URL, CLIENT_AUTH]),
            supports_pkce: false,
            supports_refresh: false,
            supports_revoke: false,
            default_allowed_hosts: vec![],
        }
    }

    fn authorize_url(
        config: ProviderConfig,
        req: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        let url = URL.get(&config).unwrap_or("");
        match mode(&config) {
            "ok" => Ok(format!(
                "https://upstream.test/authorize?state={}",
                req.state
            )),
            // Outputs the host must refuse.
            "javascript" => Ok("javascript:alert(document.cookie)".into()),
            "offsite" => Ok(format!("https://evil.test/authorize?state={}", req.state)),
            "crlf" => Ok("https://upstream.test/authorize\r\nSet-Cookie: x=1".into()),
            "log-flood" => {
                for i in 0..10_000 {
                    authhost_provider_sdk::log_info(&format!("line {i}"));
                }
                Ok(format!(
                    "https://upstream.test/authorize?state={}",
                    req.state
                ))
            }
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            "panic" => panic!("misbehaving provider panics on purpose"),
            "http" => send("GET", url, ClientAuth::None),
            "post" => {
                let auth = match CLIENT_AUTH.get(&config) {
                    Some("basic") => ClientAuth::Basic,
                    Some("form-post") => ClientAuth::FormPost,
                    _ => ClientAuth::None,
                };
                send("POST", url, auth)
            }
            "many-calls" => loop {
                let _ = send("GET", url, ClientAuth::None);
            },
            other => Err(ProviderError::InvalidConfig(format!(
                "unknown mode {other}"
            ))),
        }
    }

    fn exchange_code(config: ProviderConfig, _: CodeExchange) -> Result<TokenSet, ProviderError> {
        let access_token = match mode(&config) {
            "token-space" => "two words",
            "token-huge" => &"t".repeat(64 * 1024),
            _ => "access-token",
        };
        Ok(TokenSet {
            access_token: access_token.into(),
            token_type: "Bearer".into(),
            expires_in: Some(3600),
            refresh_token: None,
            id_token: None,
            scope: None,
            extra: vec![],
        })
    }

    fn user_claims(config: ProviderConfig, _: TokenSet) -> Result<Claims, ProviderError> {
        let mut claims = Claims {
            subject: "user-1".into(),
            username: Some("zoë".into()),
            email: None,
            email_verified: false,
            name: Some("Zoë Ærø".into()),
            groups: vec!["エンジニア".into()],
            roles: vec![],
            extra: json!({}),
        };
        match mode(&config) {
            "claims-control" => claims.subject = "user-1\r\nX-Authhost-Groups: admins".into(),
            "claims-huge" => claims.groups = (0..10_000).map(|i| format!("group-{i}")).collect(),
            "claims-extra" => claims.extra = json!(["not an object"]),
            _ => {}
        }
        Ok(claims)
    }

    // refresh, revoke and the audience check: the defaults (unsupported, no code flow).
}

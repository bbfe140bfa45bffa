//! Misbehaves on purpose, by the `mode` setting; see ../README.md.

use authhost_provider_sdk::bindings::authhost::provider::http_client::{self, Request};
use authhost_provider_sdk::{
    AuthorizeRequest, Claims, ClientAuth, CodeExchange, Provider, ProviderConfig, ProviderError,
    ProviderInfo, SettingKind, SettingSpec, TokenKind, TokenSet, settings,
};

struct Misbehaving;

authhost_provider_sdk::export!(Misbehaving);

fn text(name: &str, kind: SettingKind) -> SettingSpec {
    SettingSpec {
        name: name.into(),
        kind,
        required: false,
        default_value: None,
        description: String::new(),
    }
}

fn send(method: &str, url: &str, auth: ClientAuth) -> Result<String, ProviderError> {
    let body = (method == "POST").then(|| b"grant_type=test".to_vec());
    let response = http_client::send(&Request {
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
    Ok(format!(
        "{} {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    ))
}

impl Provider for Misbehaving {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "misbehaving".into(),
            display_name: "Misbehaving (tests only)".into(),
            version: "0.0.1".into(),
            default_scopes: vec![],
            settings: vec![
                text("mode", SettingKind::Text),
                text("url", SettingKind::Url),
                text("client_auth", SettingKind::Text),
            ],
            supports_pkce: false,
            supports_refresh: false,
            supports_revoke: false,
        }
    }

    fn authorize_url(
        config: ProviderConfig,
        req: AuthorizeRequest,
    ) -> Result<String, ProviderError> {
        let url = settings::get(&config, "url").unwrap_or("");
        match settings::get(&config, "mode").unwrap_or("ok") {
            "ok" => Ok(format!(
                "https://upstream.test/authorize?state={}",
                req.state
            )),
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
                let auth = match settings::get(&config, "client_auth") {
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

    fn exchange_code(_: ProviderConfig, _: CodeExchange) -> Result<TokenSet, ProviderError> {
        Err(ProviderError::Unsupported)
    }

    fn refresh(_: ProviderConfig, _: String) -> Result<TokenSet, ProviderError> {
        Err(ProviderError::Unsupported)
    }

    fn user_claims(_: ProviderConfig, _: TokenSet) -> Result<Claims, ProviderError> {
        Err(ProviderError::Unsupported)
    }

    fn revoke(_: ProviderConfig, _: String, _: TokenKind) -> Result<(), ProviderError> {
        Err(ProviderError::Unsupported)
    }
}

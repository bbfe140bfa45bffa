//! An authhost server in-process on a free port, the OIDC upstream behind it, the demo
//! MCP server in front of which it stands, and a scripted browser and client.

use super::upstream::Upstream;
use authhost::config::{Config, McpServerConfig, ProviderConfig, StaticClientConfig};
use authhost::state::AppState;
use base64::Engine as _;
use regex::Regex;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use url::Url;

pub const CALLBACK: &str = "http://127.0.0.1:9/client/callback";

/// A change to the configuration a test makes.
pub type ConfigTweak = std::sync::Arc<dyn Fn(&mut Config) + Send + Sync>;

/// Knobs the tests turn.
#[derive(Default, Clone)]
pub struct Options {
    pub database_url: Option<String>,
    /// Share a data folder (encryption key) between instances.
    pub data_dir: Option<PathBuf>,
    pub access_token_ttl: Option<u64>,
    pub authorization_request_ttl: Option<u64>,
    pub remember_consent: bool,
    pub static_clients: Vec<StaticClientConfig>,
    /// The public URL, when several instances stand behind one.
    pub base_url: Option<String>,
    /// Fetch client metadata documents from loopback (test servers).
    pub allow_private_metadata: bool,
    /// Another MCP server, protected at `/stream`.
    pub stream_upstream: Option<String>,
    /// More MCP servers, by name.
    pub mcp_servers: Vec<(&'static str, McpServerConfig)>,
    pub audit_file: Option<PathBuf>,
    /// A clock the test moves by hand, instead of the system's.
    pub clock: Option<std::sync::Arc<authhost::clock::ManualClock>>,
    /// Any other change to the configuration, made last.
    pub config: Option<ConfigTweak>,
}

impl Options {
    /// Options whose only change is `tweak` to the configuration.
    pub fn with(tweak: impl Fn(&mut Config) + Send + Sync + 'static) -> Options {
        Options {
            config: Some(std::sync::Arc::new(tweak)),
            ..Options::default()
        }
    }
}

pub struct TestAuthhost {
    /// The public URL (the issuer).
    pub base: String,
    /// Where this instance itself listens.
    pub own: String,
    pub state: AppState,
}

/// The upstream with the client authhost is registered as.
pub fn start_upstream() -> Upstream {
    start_upstream_with(json!({}))
}

/// The same, with more upstream settings (`access_token_ttl`, ...).
pub fn start_upstream_with(settings: Value) -> Upstream {
    let mut config = json!({
        "clients": [{
            "client_id": "test-client", "client_secret": "test-secret",
            "redirect_uris": ["http://127.0.0.1/oauth/callback/up"],
            "token_endpoint_auth_method": "client_secret_basic",
        }],
    });
    if let (Some(config), Some(settings)) = (config.as_object_mut(), settings.as_object()) {
        config.extend(settings.clone());
    }
    Upstream::start(config)
}

/// An MCP server at `path` in front of `upstream`, signed in with the test upstream.
pub fn mcp_server(path: &str, upstream: &str) -> McpServerConfig {
    McpServerConfig {
        path: path.into(),
        upstream: upstream.into(),
        provider: Some("up".into()),
        ..McpServerConfig::default()
    }
}

impl TestAuthhost {
    pub async fn start(upstream: &Upstream, options: Options) -> TestAuthhost {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let own = format!("http://{}", listener.local_addr().unwrap());
        let base = options.base_url.clone().unwrap_or_else(|| own.clone());
        let data_dir = options.data_dir.clone().unwrap_or_else(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("authhost-{}", authhost::crypto::random_token()));
            std::fs::create_dir_all(&dir).unwrap();
            dir
        });
        let mut config = Config::default();
        config.server.base_url = Some(base.clone());
        config.server.data_dir = data_dir.clone();
        config.server.database_url = options.database_url.clone();
        config.consent.remember = options.remember_consent;
        // One compile of each bundled component for the whole test run.
        config.runtime.compile_cache_dir =
            Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache"));
        config.clients = options.static_clients.clone();
        config.client_metadata.allow_private_hosts = options.allow_private_metadata;
        if let Some(ttl) = options.access_token_ttl {
            config.tokens.access_token_ttl = ttl;
        }
        if let Some(ttl) = options.authorization_request_ttl {
            config.tokens.authorization_request_ttl = ttl;
        }
        let mut provider = ProviderConfig {
            component: Some("oidc".into()),
            client_id: "test-client".into(),
            client_secret: Some("test-secret".into()),
            // Groups, for policies and identity headers.
            scopes: Some(
                ["openid", "profile", "email", "groups"]
                    .map(String::from)
                    .to_vec(),
            ),
            ..ProviderConfig::default()
        };
        provider.settings.insert(
            "issuer".into(),
            toml::Value::String(upstream.issuer("root")),
        );
        config.providers.insert("up".into(), provider);
        let demo = authhost::dev::demo_mcp::start().await.unwrap();
        config
            .mcp_servers
            .insert("demo".into(), mcp_server("/mcp", &demo));
        config.mcp_servers.insert(
            "admin".into(),
            McpServerConfig {
                scopes: Some(vec!["mcp".into(), "admin".into()]),
                ..mcp_server("/admin-mcp", &demo)
            },
        );
        if let Some(upstream) = &options.stream_upstream {
            config
                .mcp_servers
                .insert("stream".into(), mcp_server("/stream", upstream));
        }
        for (name, server) in &options.mcp_servers {
            config.mcp_servers.insert(name.to_string(), server.clone());
        }
        config.logging.audit_file = options.audit_file.clone();
        if let Some(tweak) = &options.config {
            tweak(&mut config);
        }
        let clock: std::sync::Arc<dyn authhost::clock::Clock> = match &options.clock {
            Some(manual) => manual.clone(),
            None => authhost::clock::system(),
        };
        let server = authhost::server::build_with_clock(config, clock)
            .await
            .expect("authhost starts");
        let state = server.state.clone();
        authhost::server::spawn_maintenance(&state);
        let app = authhost::server::app(&server);
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestAuthhost { base, own, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A URL of this very instance (not the shared public URL).
    pub fn own_url(&self, path: &str) -> String {
        format!("{}{path}", self.own)
    }

    /// Dynamic client registration of a public client.
    pub async fn register(&self, name: &str) -> String {
        let response = http()
            .post(self.own_url("/register"))
            .json(&json!({
                "client_name": name,
                "redirect_uris": [CALLBACK],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["client_id"].as_str().unwrap().to_string()
    }

    pub fn authorize_url(&self, client_id: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
        let mut url = Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("state", "client-state")
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &self.url("/mcp"));
        let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        for (k, v) in extra {
            pairs.retain(|(name, _)| name != k);
            if !v.is_empty() {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.into()
    }

    /// POST /token with a form; returns status and JSON body.
    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = http()
            .post(self.own_url("/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn exchange(&self, client_id: &str, code: &str, pkce: &Pkce) -> (StatusCode, Value) {
        self.exchange_for("/mcp", client_id, code, pkce).await
    }

    /// Redeem a code for the resource at `path`.
    pub async fn exchange_for(
        &self,
        path: &str,
        client_id: &str,
        code: &str,
        pkce: &Pkce,
    ) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &pkce.verifier),
            ("resource", &self.url(path)),
        ])
        .await
    }

    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// A full authorization: consent, upstream login, code, tokens.
    pub async fn sign_in(&self, browser: &Browser, client_id: &str) -> Value {
        self.sign_in_as(browser, client_id, "/mcp", "alice").await
    }

    /// A full authorization for the MCP server at `path`, as `user` (whose password
    /// is `<user>-password`).
    pub async fn sign_in_as(
        &self,
        browser: &Browser,
        client_id: &str,
        path: &str,
        user: &str,
    ) -> Value {
        let pkce = Pkce::new();
        let resource = self.url(path);
        let url = self.authorize_url(client_id, &pkce, &[("resource", &resource)]);
        let done = browser
            .authorize(&url, user, &format!("{user}-password"))
            .await;
        let code = done.param("code").expect("a code");
        let (status, tokens) = self.exchange_for(path, client_id, &code, &pkce).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens
    }

    /// Call the `whoami` tool at `path` with `token`.
    pub async fn whoami(&self, path: &str, token: &str) -> reqwest::Response {
        http()
            .post(self.own_url(path))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
            .send()
            .await
            .unwrap()
    }
}

/// A confidential client the operator configured (`[[clients]]`), for grants without
/// redirects.
pub fn confidential_client(client_id: &str, name: &str, secret: &str) -> StaticClientConfig {
    StaticClientConfig {
        client_id: client_id.into(),
        name: Some(name.into()),
        client_secret: Some(secret.into()),
        client_secret_env: None,
        client_secret_file: None,
        redirect_uris: vec![],
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = format!(
            "{}{}",
            authhost::crypto::random_token(),
            authhost::crypto::random_token()
        );
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// Where a flow ended: the client's redirect, or a page shown instead.
#[derive(Debug)]
pub enum Ended {
    AtClient(Url),
    Page(StatusCode, String),
}

impl Ended {
    pub fn param(&self, name: &str) -> Option<String> {
        match self {
            Ended::AtClient(url) => url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned()),
            Ended::Page(..) => None,
        }
    }

    pub fn page(&self) -> (StatusCode, &str) {
        match self {
            Ended::Page(status, body) => (*status, body),
            Ended::AtClient(url) => {
                panic!("expected a page, the flow went back to the client: {url}")
            }
        }
    }
}

/// A scripted browser with a cookie jar.
pub struct Browser {
    pub http: reqwest::Client,
    pub decision: &'static str,
    /// Send requests for one origin to another (two instances behind one URL).
    pub rewrite: Option<(String, String)>,
    /// Every URL it went to, in order.
    pub history: std::sync::Mutex<Vec<Url>>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser::with_headers(reqwest::header::HeaderMap::new())
    }

    /// A browser that sends `headers` with every request (`X-Forwarded-For` through
    /// a trusted proxy, `Sec-Fetch-Site`).
    pub fn with_headers(headers: reqwest::header::HeaderMap) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .unwrap(),
            decision: "approve",
            rewrite: None,
            history: Default::default(),
        }
    }

    /// Open `url` (an authorization request), approve the consent page, and return
    /// where the browser is sent next (the upstream's sign-in), without going there.
    pub async fn approve_until_upstream(&self, url: &str) -> Url {
        let url = Url::parse(url).unwrap();
        let response = self.http.get(url.clone()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "a consent page");
        let (action, mut fields) = form(&response.text().await.unwrap());
        fields.push(("decision".into(), "approve".into()));
        let response = self
            .http
            .post(url.join(&action).unwrap())
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_redirection(), "{}", response.status());
        url.join(response.headers()["location"].to_str().unwrap())
            .unwrap()
    }

    /// The last URL visited whose path starts with `prefix`.
    pub fn visited(&self, prefix: &str) -> Option<Url> {
        self.history
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|u| u.path().starts_with(prefix))
            .cloned()
    }

    fn rewritten(&self, url: Url) -> Url {
        match &self.rewrite {
            Some((from, to)) if url.as_str().starts_with(from.as_str()) => {
                Url::parse(&url.as_str().replacen(from.as_str(), to, 1)).unwrap()
            }
            _ => url,
        }
    }

    /// Follow the flow from `url` as a person would (consent by `self.decision`, then the
    /// upstream login) until it returns to the client or stops at a page.
    pub async fn authorize(&self, url: &str, username: &str, password: &str) -> Ended {
        let mut url = Url::parse(url).unwrap();
        let mut consents = 0;
        for _ in 0..20 {
            let at_client = (url.host_str() == Some("127.0.0.1")
                && url.path() == "/client/callback")
                || !matches!(url.scheme(), "http" | "https");
            if at_client {
                return Ended::AtClient(url);
            }
            url = self.rewritten(url);
            // Shown when a test fails: the path the flow took.
            println!("browser GET {url}");
            self.history.lock().unwrap().push(url.clone());
            let response = self.http.get(url.clone()).send().await.unwrap();
            let status = response.status();
            if status.is_redirection() {
                url = url
                    .join(response.headers()["location"].to_str().unwrap())
                    .unwrap();
                continue;
            }
            let page = response.text().await.unwrap();
            if status != StatusCode::OK {
                return Ended::Page(status, page);
            }
            let (action, mut fields) = form(&page);
            let action = self.rewritten(url.join(&action).unwrap());
            if fields.iter().any(|(k, _)| k == "csrf_token") {
                consents += 1;
                if self.decision == "stop" {
                    return Ended::Page(status, page);
                }
                fields.push(("decision".into(), self.decision.into()));
            } else if page.contains("name=\"password\"") {
                fields.push(("username".into(), username.into()));
                fields.push(("password".into(), password.into()));
            } else {
                return Ended::Page(status, page);
            }
            println!("browser POST {action}");
            let response = self
                .http
                .post(action.clone())
                .form(&fields)
                .send()
                .await
                .unwrap();
            if !response.status().is_redirection() {
                let status = response.status();
                return Ended::Page(status, response.text().await.unwrap());
            }
            url = action
                .join(response.headers()["location"].to_str().unwrap())
                .unwrap();
        }
        panic!("the flow did not end (consent pages seen: {consents})");
    }
}

/// The first form's action and hidden fields.
pub fn form(page: &str) -> (String, Vec<(String, String)>) {
    let action = Regex::new(r#"<form[^>]*action="([^"]*)""#).unwrap();
    let hidden = Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)""#).unwrap();
    let action = action
        .captures(page)
        .map(|c| unescape(&c[1]))
        .unwrap_or_default();
    let fields = hidden
        .captures_iter(page)
        .map(|c| (unescape(&c[1]), unescape(&c[2])))
        .collect();
    (action, fields)
}

/// Undo HTML attribute escaping, as a browser does.
fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

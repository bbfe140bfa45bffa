//! The real OpenID provider (`tests/oidc-upstream`, npm `oidc-provider`) as a child
//! process, and a headless login through its pages.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use url::Url;

pub struct Upstream {
    child: Child,
    pub issuers: Value,
}

impl Upstream {
    /// Start the provider with `config` (see tests/oidc-upstream/README.md).
    pub fn start(config: Value) -> Upstream {
        let dir = upstream_dir();
        install_once(&dir);
        let config_path = std::env::temp_dir().join(format!(
            "oidc-upstream-{}-{}.json",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&config_path, config.to_string()).unwrap();
        // A node start that never reports ready (seen once in CI) is retried, not
        // waited on forever.
        for attempt in 1..=3 {
            let mut child = Command::new("node")
                .arg(dir.join("server.js"))
                .arg(&config_path)
                .env("UPSTREAM_QUIET", "1")
                // The server exits when its stdin closes, so it never outlives the test.
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start node tests/oidc-upstream/server.js (is Node.js installed?)");
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            match rx.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(line) => {
                    let ready: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|_| panic!("oidc-upstream did not start: {line:?}"));
                    return Upstream {
                        child,
                        issuers: ready["issuers"].clone(),
                    };
                }
                Err(_) => {
                    eprintln!(
                        "oidc-upstream not ready after 30 s (attempt {attempt}); restarting it"
                    );
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("oidc-upstream did not become ready in three attempts");
    }

    pub fn issuer(&self, name: &str) -> String {
        self.issuers[name].as_str().expect("issuer").to_string()
    }

    /// The allowlist entry for the provider's origin.
    pub fn origin(&self) -> String {
        let url = Url::parse(&self.issuer("root")).unwrap();
        url.origin().ascii_serialization()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn upstream_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc-upstream")
}

/// `npm ci` once, when node_modules is missing (a fresh clone running `cargo test`).
fn install_once(dir: &PathBuf) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if dir.join("node_modules/oidc-provider").exists() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(dir)
            .status()
            .expect("run npm ci for tests/oidc-upstream");
        assert!(status.success(), "npm ci in tests/oidc-upstream failed");
    });
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A confidential client registered at the upstream.
pub fn client(client_id: &str, secret: &str, auth_method: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uris": ["http://127.0.0.1/oauth/callback/test"],
        "token_endpoint_auth_method": auth_method,
    })
}

/// Log in as `username` through the upstream's pages, starting at `authorize_url`,
/// and return the query of the final redirect to authhost's callback.
pub async fn login(authorize_url: &str, username: &str, password: &str) -> Vec<(String, String)> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location = |r: &reqwest::Response, base: &Url| -> Url {
        let loc = r.headers()["location"].to_str().unwrap();
        base.join(loc).unwrap()
    };
    let start = Url::parse(authorize_url).unwrap();
    let r = http.get(start.clone()).send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        303,
        "authorize should send to the login page"
    );
    let interaction = location(&r, &start);
    let login = interaction
        .join(&format!("{}/login", interaction.path()))
        .unwrap();
    let r = http
        .post(login.clone())
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "login should succeed");
    let resume = location(&r, &login);
    let r = http.get(resume.clone()).send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        303,
        "resume should redirect to the callback"
    );
    let callback = location(&r, &resume);
    callback.query_pairs().into_owned().collect()
}

/// Authorize with PKCE, sign in as `user` at the upstream, check the callback's `state`
/// and `iss`, and redeem the code.
pub async fn sign_in(
    provider: &authhost::runtime::ProviderInstance,
    issuer: &str,
    user: &str,
    password: &str,
) -> authhost::runtime::TokenSet {
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let url = provider
        .authorize_url(authhost::runtime::AuthorizeRequest {
            state: "state-abc".into(),
            code_challenge: Some(challenge.as_str().into()),
            nonce: "nonce-xyz".into(),
            extra: vec![],
        })
        .await
        .expect("authorize url");
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let callback = login(&url, user, password).await;
    let param = |k: &str| {
        callback
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("state").as_deref(), Some("state-abc"));
    assert_eq!(param("iss").as_deref(), Some(issuer));
    provider
        .exchange_code(authhost::runtime::CodeExchange {
            code: param("code").expect("code in the callback"),
            code_verifier: Some(verifier.secret().clone()),
            nonce: "nonce-xyz".into(),
        })
        .await
        .expect("code exchange")
}

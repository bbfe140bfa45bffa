//! `authhost providers test FILE.wasm`: run a component through the whole contract
//! against a local stand-in upstream, and report each check in words a provider author
//! understands.
//!
//! The stand-in answers like a tolerant OAuth server: discovery documents under any
//! path, a token endpoint (code `good-code` works, `bad-code` is refused with
//! `invalid_grant`), a user object for any bearer GET, 200/204 for revocation. Every
//! URL setting of the component points at it. A second instance without a client
//! secret checks that a public client still names itself (`client_id`) when redeeming.

use crate::runtime::{
    AuthorizeRequest, CallError, CodeExchange, InstanceSpec, ProviderError, ProviderInstance,
    Runtime, SettingKind, TokenKind,
};
use crate::secret::Secret;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use url::Url;

const CLIENT_ID: &str = "conformance-client";
const CLIENT_SECRET: &str = "conformance-secret";

/// One check and its outcome: `Ok(())`, or `Err(why)`.
pub struct Check {
    pub name: String,
    pub outcome: Result<(), String>,
}

pub struct Report {
    pub title: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| c.outcome.is_err()).count()
    }

    pub fn print(&self) {
        println!("{}", self.title);
        for check in &self.checks {
            match &check.outcome {
                Ok(()) => println!("  PASS  {}", check.name),
                Err(why) => println!("  FAIL  {}\n        {why}", check.name),
            }
        }
        let failed = self.failed();
        println!(
            "conformance: {} checks passed, {failed} failed",
            self.checks.len() - failed
        );
    }

    fn check(&mut self, name: &str, outcome: Result<(), String>) -> bool {
        let ok = outcome.is_ok();
        self.checks.push(Check {
            name: name.to_string(),
            outcome,
        });
        ok
    }
}

/// What the stand-in upstream saw.
#[derive(Default)]
struct Seen {
    client_authenticated: AtomicBool,
    /// The `client_id` in the form of the last token request, if it had one.
    token_request_client_id: Mutex<Option<String>>,
    paths: Mutex<Vec<String>>,
}

/// Test the component in `bytes`; `settings` override the generated ones.
pub async fn run(
    runtime: Arc<Runtime>,
    origin: &str,
    bytes: &[u8],
    settings: BTreeMap<String, String>,
) -> anyhow::Result<Report> {
    let mut report = Report {
        title: format!("Testing {origin}"),
        checks: Vec::new(),
    };
    let component = match runtime.load(origin, bytes).await {
        Ok(c) => c,
        Err(e) => {
            report.check("loads as an authhost provider component", Err(e.reason));
            return Ok(report);
        }
    };
    let info = component.info.clone();
    report.title = format!(
        "Testing {origin}: `{}` {} ({}), contract {}",
        info.id, info.version, info.display_name, component.contract
    );
    report.check("loads as an authhost provider component", Ok(()));
    report.check(
        "info: version is semantic (x.y.z)",
        semver::Version::parse(&info.version)
            .map(|_| ())
            .map_err(|e| format!("`{}`: {e}", info.version)),
    );
    let mut names: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    let duplicate = names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]);
    report.check(
        "info: setting names are unique and non-empty",
        match duplicate {
            Some(name) => Err(format!("`{name}` is declared twice")),
            None if names.contains(&"") => Err("a setting has an empty name".into()),
            None => Ok(()),
        },
    );

    let seen = Arc::new(Seen::default());
    let upstream = start_stand_in(seen.clone()).await?;
    let mut values = BTreeMap::new();
    for spec in &info.settings {
        let value = match spec.kind {
            SettingKind::Url if spec.required || spec.default_value.is_some() => {
                Some(stand_in_url(&upstream, spec.default_value.as_deref()))
            }
            _ if spec.required => Some(spec.default_value.clone().unwrap_or_else(|| "test".into())),
            _ => None,
        };
        if let Some(value) = value {
            values.insert(spec.name.clone(), value);
        }
    }
    values.extend(settings);
    let spec = |client_secret: Option<Secret>| InstanceSpec {
        id: format!("{}-conformance", info.id),
        client_id: CLIENT_ID.into(),
        client_secret,
        redirect_uri: "https://authhost.test/oauth/callback/conformance".into(),
        scopes: None,
        settings: values.clone(),
        allowed_hosts: Some(vec![upstream.clone()]),
        limits: Default::default(),
    };
    let public = ProviderInstance::new(runtime.clone(), component.clone(), spec(None));
    let secret = Some(Secret::new(CLIENT_SECRET));
    let instance = match ProviderInstance::new(runtime.clone(), component, spec(secret)) {
        Ok(instance) => instance,
        Err(problems) => {
            report.check(
                "accepts the generated configuration",
                Err(problems.join("; ")),
            );
            return Ok(report);
        }
    };
    // client_token mode needs the audience check; other modes do without.
    let audience = instance.can_check_audience().await;
    if let Ok(can) = audience {
        report.title += if can {
            "; checks token audiences"
        } else {
            "; cannot check token audiences (client_token needs client_token_any_audience)"
        };
    }
    report.check(
        "token-audience answers whether it can check whose token it is",
        audience.map(|_| ()).map_err(|e| explain(&e)),
    );

    let state = "conformance-state-123";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let request = AuthorizeRequest {
        state: state.into(),
        code_challenge: info.supports_pkce.then(|| challenge.to_string()),
        nonce: "conformance-nonce".into(),
        extra: vec![],
    };
    match instance.authorize_url(request).await {
        Ok(url) => {
            report.check("authorize-url answers", Ok(()));
            check_authorize_url(
                &mut report,
                &url,
                &upstream,
                state,
                info.supports_pkce.then_some(challenge),
            );
        }
        Err(e) => {
            report.check("authorize-url answers", Err(explain(&e)));
        }
    }

    let exchange = |code: &str| CodeExchange {
        code: code.into(),
        code_verifier: info.supports_pkce.then(|| "verifier".repeat(6)),
        nonce: "conformance-nonce".into(),
    };
    let tokens = match instance.exchange_code(exchange("good-code")).await {
        Ok(tokens) => {
            let ok = report.check(
                "exchange-code returns the upstream's tokens",
                (tokens.access_token == "at-1")
                    .then_some(())
                    .ok_or_else(|| {
                        format!(
                            "access token `{}` is not the one the upstream sent",
                            tokens.access_token
                        )
                    }),
            );
            ok.then_some(tokens)
        }
        Err(e) => {
            report.check(
                "exchange-code returns the upstream's tokens",
                Err(explain(&e)),
            );
            None
        }
    };
    report.check(
        "the client secret is attached by the host (client-auth), never by the component",
        seen.client_authenticated
            .load(Ordering::Relaxed)
            .then_some(())
            .ok_or_else(|| "no token request carried the client secret; mark token requests with client-auth basic or form-post".to_string()),
    );
    report.check(
        "a refused code is reported as invalid-grant",
        match instance.exchange_code(exchange("bad-code")).await {
            Err(e) if matches!(e.provider_error(), Some(ProviderError::InvalidGrant(_))) => Ok(()),
            Err(e) => Err(format!("got: {}", explain(&e))),
            Ok(_) => Err("the refused code was accepted".into()),
        },
    );
    if let Some(tokens) = tokens {
        report.check(
            "user-claims maps the user (non-empty subject)",
            match instance.user_claims(tokens.clone()).await {
                Ok(claims) if !claims.subject.is_empty() => Ok(()),
                Ok(_) => Err("the subject is empty".into()),
                Err(e) => Err(explain(&e)),
            },
        );
        if info.supports_refresh {
            let refresh = tokens
                .refresh_token
                .clone()
                .unwrap_or_else(|| "rt-1".into());
            report.check(
                "refresh returns new tokens",
                match instance.refresh(refresh).await {
                    Ok(t) if t.access_token == "at-2" => Ok(()),
                    Ok(t) => Err(format!(
                        "access token `{}` is not the refreshed one",
                        t.access_token
                    )),
                    Err(e) => Err(explain(&e)),
                },
            );
        }
        if info.supports_revoke {
            report.check(
                "revoke succeeds (or says unsupported for a token kind)",
                match instance
                    .revoke(tokens.access_token.clone(), TokenKind::AccessToken)
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(e) if matches!(e.provider_error(), Some(ProviderError::Unsupported)) => {
                        Ok(())
                    }
                    Err(e) => Err(explain(&e)),
                },
            );
        }
    }
    check_public_client(&mut report, public, &seen, exchange("good-code")).await;
    let paths = seen.paths.lock().unwrap_or_else(|p| p.into_inner()).clone();
    tracing::debug!(?paths, "stand-in upstream requests");
    Ok(report)
}

/// The no-secret pass: a public client (PKCE, no secret) must still name itself in
/// the token request, or say clearly that the upstream needs a secret.
async fn check_public_client(
    report: &mut Report,
    instance: Result<ProviderInstance, Vec<String>>,
    seen: &Seen,
    exchange: CodeExchange,
) {
    const NAME: &str = "without a client secret, the code is redeemed with client_id (public client) or refused as invalid-config";
    let instance = match instance {
        Ok(instance) => instance,
        // Refusing the configuration up front is a clear answer too.
        Err(_) => {
            report.check(NAME, Ok(()));
            return;
        }
    };
    *lock(&seen.token_request_client_id) = None;
    let outcome = match instance.exchange_code(exchange).await {
        Ok(_) => match lock(&seen.token_request_client_id).clone() {
            Some(id) if id == CLIENT_ID => Ok(()),
            Some(id) => Err(format!("the token request named client `{id}`")),
            None => Err("the token request carried no client_id: mark it with client-auth form-post (the host adds client_id) or send client_id in the form".into()),
        },
        Err(e) if matches!(e.provider_error(), Some(ProviderError::InvalidConfig(_))) => Ok(()),
        Err(e) => Err(format!("got: {}", explain(&e))),
    };
    report.check(NAME, outcome);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn check_authorize_url(
    report: &mut Report,
    url: &str,
    upstream: &str,
    state: &str,
    challenge: Option<&str>,
) {
    let Ok(parsed) = Url::parse(url) else {
        report.check(
            "the authorize URL is an absolute URL",
            Err(format!("`{url}`")),
        );
        return;
    };
    let query: HashMap<String, String> = parsed.query_pairs().into_owned().collect();
    let has = |key: &str, value: &str| query.get(key).map(String::as_str) == Some(value);
    report.check(
        "the authorize URL points at the configured upstream",
        url.starts_with(upstream)
            .then_some(())
            .ok_or_else(|| format!("`{url}` is not under {upstream}")),
    );
    report.check(
        "the authorize URL carries the host's state unchanged",
        has("state", state)
            .then_some(())
            .ok_or("the `state` parameter is missing or changed".to_string()),
    );
    report.check(
        "the authorize URL carries client_id and redirect_uri",
        (has("client_id", CLIENT_ID)
            && has(
                "redirect_uri",
                "https://authhost.test/oauth/callback/conformance",
            ))
        .then_some(())
        .ok_or("client_id or redirect_uri is missing or changed".to_string()),
    );
    if let Some(challenge) = challenge {
        report.check(
            "the authorize URL carries the PKCE challenge with S256 (the component says it supports PKCE)",
            (has("code_challenge", challenge) && has("code_challenge_method", "S256"))
                .then_some(())
                .ok_or("code_challenge / code_challenge_method=S256 missing".to_string()),
        );
    }
}

fn explain(error: &CallError) -> String {
    error.to_string()
}

/// The stand-in's URL for a URL setting, keeping the default's path (`/api/v3`, ...).
fn stand_in_url(upstream: &str, default: Option<&str>) -> String {
    let path = default
        .and_then(|d| Url::parse(d).ok())
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    format!("{upstream}{path}")
}

async fn start_stand_in(seen: Arc<Seen>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    let app = Router::new()
        .fallback(stand_in)
        .with_state((seen, origin.clone()));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(origin)
}

async fn stand_in(State((seen, origin)): State<(Arc<Seen>, String)>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    seen.paths
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(format!("{} {path}", parts.method));
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    if let Some(prefix) = path.strip_suffix("/.well-known/openid-configuration") {
        let issuer = format!("{origin}{prefix}");
        return Json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "code_challenge_methods_supported": ["S256"],
        }))
        .into_response();
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let basic = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Basic "));
    if basic || form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET) {
        seen.client_authenticated.store(true, Ordering::Relaxed);
    }
    // Some upstreams (GitHub) send no grant_type with the code.
    let grant = form
        .get("grant_type")
        .map(String::as_str)
        .or(form.get("code").map(|_| "authorization_code"));
    if parts.method == "POST" && grant.is_some() {
        *lock(&seen.token_request_client_id) = form.get("client_id").cloned();
    }
    match (parts.method.as_str(), grant) {
        ("POST", Some("authorization_code")) => match form.get("code").map(String::as_str) {
            Some("good-code") => token_response("at-1", "rt-1"),
            _ => (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant", "error_description": "bad code"}))).into_response(),
        },
        ("POST", Some("refresh_token")) => token_response("at-2", "rt-2"),
        ("POST", _) => StatusCode::OK.into_response(),
        ("DELETE", _) => StatusCode::NO_CONTENT.into_response(),
        _ => Json(json!({
            "sub": "conformance-user", "id": 4242, "user_id": "conformance-user", "account_id": "conformance-user",
            "login": "conformance", "username": "conformance", "preferred_username": "conformance",
            "email": "user@conformance.test", "email_verified": true, "name": "Conformance User",
        }))
        .into_response(),
    }
}

fn token_response(access: &str, refresh: &str) -> Response {
    Json(json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600, "refresh_token": refresh})).into_response()
}

//! What reaches the MCP server, and what comes back: no client-sent identity or proxy
//! header in any spelling, identities in every script, no cookies on authhost's
//! origin, no foreign challenges; bounded metric labels; `Origin` checked; credentials
//! where clients put them; scope hierarchies; canonical resource indicators; CORS.

use crate::common::sdk_servers::{Sdk, SdkServer};
use crate::common::server::{
    Browser, Options, Pkce, TestAuthhost, http, mcp_server, start_upstream, start_upstream_with,
};
use authhost::config::{McpServerConfig, PolicyConfig, ToolRule};

use reqwest::StatusCode;
use serde_json::{Value, json};

const WHOAMI: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;

/// POST `body` to `url` with `headers`; the status and JSON body.
async fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = http()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body.to_string()).send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The headers the SDK server's `whoami` saw.
fn seen(answer: &Value) -> Value {
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("a whoami answer: {answer}"));
    serde_json::from_str(text).unwrap()
}

async fn forged_headers_never_arrive(sdk: Sdk) {
    let server = SdkServer::start(sdk, false).await;
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("sdk", mcp_server("/sdk", &server.url))],
            ..Options::with(|config| config.server.trusted_proxies = vec!["127.0.0.1".into()])
        },
    )
    .await;
    let client = a.register("Forger").await;
    let tokens = a
        .sign_in_as(&Browser::new(), &client, "/sdk", "alice")
        .await;
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let forged = [
        ("authorization", bearer.as_str()),
        ("x-authhost-subject", "mallory"),
        ("x_authhost_groups", "admins-forged"),
        ("X_Authhost_Email", "mallory@evil.test"),
        ("x-authhost-custom", "forged"),
        ("x-forwarded-user", "admin-forged"),
        ("x_forwarded_email", "mallory@evil.test"),
        ("x-forwarded-host", "evil.test"),
        ("x-forwarded-proto", "gopher"),
        ("forwarded", "for=6.6.6.6;host=evil.test"),
        ("x-real-ip", "6.6.6.6"),
        ("x-auth-request-user", "admin-forged"),
        ("x-auth-request-groups", "admins-forged"),
        ("x-forwarded-for", "203.0.113.5"),
    ];
    let (status, _, answer) = post(&a.url("/sdk"), &forged, WHOAMI).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let headers = seen(&answer);
    let text = headers.to_string();
    for forgery in ["mallory", "forged", "evil.test", "6.6.6.6", "gopher"] {
        assert!(
            !text.contains(forgery),
            "{sdk:?}: `{forgery}` reached the server: {text}"
        );
    }
    assert_eq!(headers["x-authhost-subject"], "alice-sub");
    assert_eq!(headers["x-authhost-groups"], "engineering,admins");
    // Through the trusted proxy (loopback here), the client's address is appended.
    assert_eq!(headers["x-forwarded-for"], "203.0.113.5, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(
        headers["x-forwarded-host"],
        a.base.trim_start_matches("http://")
    );
    assert!(
        headers.get("authorization").is_none(),
        "the client's token never goes on"
    );
}

#[tokio::test]
async fn forged_identity_and_proxy_headers_never_reach_the_typescript_server() {
    forged_headers_never_arrive(Sdk::TypeScript).await;
}

#[tokio::test]
async fn forged_identity_and_proxy_headers_never_reach_the_python_server() {
    forged_headers_never_arrive(Sdk::Python).await;
}

/// Zoë Ærø of team エンジニア: headers carry her identity percent-encoded (UTF-8), the
/// identity token as it is.
#[tokio::test]
async fn identities_that_are_not_ascii_reach_the_server() {
    let server = SdkServer::start(Sdk::TypeScript, false).await;
    let upstream = start_upstream_with(json!({"users": [{
        "sub": "zoe-sub", "username": "zoe", "password": "zoe-password",
        "email": "zoe@example.com", "email_verified": true, "name": "Zoë Ærø",
        "groups": ["エンジニア", "a,b"],
    }]}));
    let mut sdk = mcp_server("/sdk", &server.url);
    sdk.identity.token = true;
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("sdk", sdk)],
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Unicode").await;
    let tokens = a.sign_in_as(&Browser::new(), &client, "/sdk", "zoe").await;
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let (_, _, answer) = post(&a.url("/sdk"), &[("authorization", &bearer)], WHOAMI).await;
    let headers = seen(&answer);
    assert_eq!(headers["x-authhost-name"], "Zo%C3%AB %C3%86r%C3%B8");
    assert_eq!(
        headers["x-authhost-groups"],
        "%E3%82%A8%E3%83%B3%E3%82%B8%E3%83%8B%E3%82%A2,a%2Cb"
    );
    let token = headers["x-authhost-identity"].as_str().unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["name"], "Zoë Ærø");
    assert_eq!(claims["groups"], json!(["エンジニア", "a,b"]));
}

/// A trivial upstream for what the gateway does with answers: it sets a cookie, or
/// challenges for credentials of its own.
async fn answering(status: StatusCode, headers: Vec<(&'static str, &'static str)>) -> String {
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(move || {
            let headers = headers.clone();
            async move {
                let mut response = axum::response::IntoResponse::into_response((
                    status,
                    axum::Json(json!({"jsonrpc": "2.0", "id": 1, "result": {}})),
                ));
                for (name, value) in headers {
                    response
                        .headers_mut()
                        .append(name, axum::http::HeaderValue::from_static(value));
                }
                response
            }
        }),
    );
    format!("{}/mcp", crate::common::serve(app).await)
}

#[tokio::test]
async fn cookies_and_foreign_challenges_from_the_server_stay_behind() {
    let cookie = answering(
        StatusCode::OK,
        vec![("set-cookie", "session=upstream; Path=/")],
    )
    .await;
    let challenge = answering(
        StatusCode::UNAUTHORIZED,
        vec![("www-authenticate", "Bearer resource_metadata=\"https://other-as.example/.well-known/oauth-protected-resource\"")],
    )
    .await;
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![
                ("cookie", mcp_server("/cookie", &cookie)),
                (
                    "relay",
                    McpServerConfig {
                        relay_cookies: true,
                        ..mcp_server("/relay", &cookie)
                    },
                ),
                ("challenge", mcp_server("/challenge", &challenge)),
            ],
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Cookie monster").await;
    let browser = Browser::new();
    let mut bearers = Vec::new();
    for path in ["/cookie", "/relay", "/challenge"] {
        let tokens = a.sign_in_as(&browser, &client, path, "alice").await;
        bearers.push(format!(
            "Bearer {}",
            tokens["access_token"].as_str().unwrap()
        ));
    }
    let (status, headers, _) =
        post(&a.url("/cookie"), &[("authorization", &bearers[0])], "{}").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers.get("set-cookie").is_none(),
        "not relayed by default"
    );
    let (_, headers, _) = post(&a.url("/relay"), &[("authorization", &bearers[1])], "{}").await;
    assert_eq!(headers["set-cookie"], "session=upstream; Path=/");
    let (status, headers, body) = post(
        &a.url("/challenge"),
        &[("authorization", &bearers[2])],
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        headers.get("www-authenticate").is_none(),
        "the server's challenge is not the client's"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{body}"
    );
}

#[tokio::test]
async fn made_up_http_methods_add_no_metric_series() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let series = |a: &TestAuthhost| {
        a.state
            .metrics
            .render()
            .lines()
            .filter(|l| l.starts_with("authhost_http_requests_total"))
            .count()
    };
    let _ = http().get(a.url("/mcp")).send().await.unwrap();
    let before = series(&a);
    for i in 0..200 {
        let method = reqwest::Method::from_bytes(format!("M{i}X").as_bytes()).unwrap();
        let _ = http().request(method, a.url("/mcp")).send().await.unwrap();
    }
    assert!(
        series(&a) <= before + 2,
        "{} series after, {before} before",
        series(&a)
    );
    assert!(a.state.metrics.render().contains("method=\"other\""));
}

/// A page on another site may not drive the MCP endpoint (DNS rebinding); none, or
/// authhost's own origin, is fine.
#[tokio::test]
async fn foreign_origins_are_refused_at_mcp_endpoints() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Origin checker").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let (status, _, body) = post(
        &a.url("/mcp"),
        &[
            ("authorization", &bearer),
            ("origin", "https://evil.example"),
        ],
        WHOAMI,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("evil.example")
    );
    for origin in [None, Some(a.base.as_str())] {
        let mut headers = vec![("authorization", bearer.as_str())];
        headers.extend(origin.map(|o| ("origin", o)));
        let (status, _, body) = post(&a.url("/mcp"), &headers, WHOAMI).await;
        assert_eq!(status, StatusCode::OK, "{origin:?}: {body}");
    }
}

/// Keys in `X-API-Key` (or the static token in `X-Auth-Token`) work like bearer
/// tokens, are never forwarded, and credentials in two places are refused.
#[tokio::test]
async fn credentials_arrive_in_the_headers_clients_use() {
    let server = SdkServer::start(Sdk::TypeScript, false).await;
    let token_file = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("static-{}", authhost::crypto::random_token()));
    std::fs::write(&token_file, "a-static-token-of-enough-length").unwrap();
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![
                (
                    "keyed",
                    McpServerConfig {
                        api_keys: true,
                        api_key_headers: vec!["Authorization".into(), "X-API-Key".into()],
                        ..mcp_server("/keyed", &server.url)
                    },
                ),
                (
                    "shared",
                    McpServerConfig {
                        auth: authhost::config::AuthMode::StaticToken,
                        static_token_file: Some(token_file.clone()),
                        api_key_headers: vec!["X-Auth-Token".into()],
                        ..mcp_server("/shared", &server.url)
                    },
                ),
            ],
            ..Options::default()
        },
    )
    .await;
    let (_, key) = authhost::cli::admin::create_api_key(
        &a.state.store,
        authhost::cli::admin::ApiKeySpec {
            name: "ci-bot",
            server: "keyed",
            subject: None,
            groups: &[],
            scopes: &["mcp".into()],
            expires_in_days: None,
        },
    )
    .await
    .unwrap();
    let (status, _, answer) = post(&a.url("/keyed"), &[("x-api-key", &key)], WHOAMI).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let headers = seen(&answer);
    assert_eq!(headers["x-authhost-subject"], "api-key:ci-bot");
    assert!(
        !headers.to_string().contains(&key),
        "the key is not forwarded"
    );
    let bearer = format!("Bearer {key}");
    let (status, _, body) = post(
        &a.url("/keyed"),
        &[("authorization", &bearer), ("x-api-key", &key)],
        WHOAMI,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, answer) = post(
        &a.url("/shared"),
        &[("x-auth-token", "a-static-token-of-enough-length")],
        WHOAMI,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!seen(&answer).to_string().contains("a-static-token"));
}

/// `[scopes] "mcp:admin" = ["mcp:write", "mcp:read"]`: an admin token passes checks for
/// the narrower scopes, at the server and at its tools; a read token is challenged for
/// what it lacks.
#[tokio::test]
async fn broader_scopes_imply_narrower_ones() {
    let server = SdkServer::start(Sdk::TypeScript, false).await;
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![(
                "tiered",
                McpServerConfig {
                    scopes: Some(vec!["mcp:read".into()]),
                    policy: PolicyConfig {
                        tools: vec![ToolRule {
                            tools: vec!["admin_*".into()],
                            allow: None,
                            scopes: vec!["mcp:write".into()],
                        }],
                        ..PolicyConfig::default()
                    },
                    ..mcp_server("/tiered", &server.url)
                },
            )],
            ..Options::with(|config| {
                config.scopes.insert(
                    "mcp:admin".into(),
                    vec!["mcp:write".into(), "mcp:read".into()],
                );
            })
        },
    )
    .await;
    let client = a.register("Tiered").await;
    let resource = a.url("/tiered");
    let token_for = |scope: &'static str| {
        let (a, client, resource) = (&a, &client, &resource);
        async move {
            let pkce = Pkce::new();
            let url = a.authorize_url(client, &pkce, &[("resource", resource), ("scope", scope)]);
            let done = Browser::new()
                .authorize(&url, "alice", "alice-password")
                .await;
            let code = done
                .param("code")
                .unwrap_or_else(|| panic!("{scope}: {done:?}"));
            let (status, tokens) = a.exchange_for("/tiered", client, &code, &pkce).await;
            assert_eq!(status, StatusCode::OK, "{tokens}");
            format!("Bearer {}", tokens["access_token"].as_str().unwrap())
        }
    };
    let admin = token_for("mcp:admin").await;
    let delete = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"t"}}}"#;
    let (status, _, answer) = post(&resource, &[("authorization", &admin)], delete).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "deleted t");
    let reader = token_for("mcp:read").await;
    let (status, headers, _) = post(&resource, &[("authorization", &reader)], delete).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"scope="mcp:read mcp:write""#),
        "{challenge}"
    );
}

/// `resource` is compared in canonical form: scheme case, a trailing slash and
/// percent-encoding do not make another resource.
#[tokio::test]
async fn resource_indicators_compare_in_canonical_form() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Canonical").await;
    let spelled = format!("{}/%6Dcp/", a.base.replacen("http://", "HTTP://", 1));
    let pkce = Pkce::new();
    let url = a.authorize_url(&client, &pkce, &[("resource", &spelled)]);
    let done = Browser::new()
        .authorize(&url, "alice", "alice-password")
        .await;
    let code = done.param("code").expect("the spelling names /mcp");
    let (status, tokens) = a
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client),
            ("code", &code),
            ("redirect_uri", crate::common::server::CALLBACK),
            ("code_verifier", &pkce.verifier),
            ("resource", &spelled),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(a.whoami("/mcp", access).await.status(), StatusCode::OK);
}

/// A `base_url` with a path cannot work with RFC 8414 discovery as authhost serves
/// it: `check` and `serve` refuse it and say why.
#[tokio::test]
async fn a_base_url_with_a_path_is_refused_with_the_reason() {
    let mut config = authhost::config::Config::default();
    config.server.base_url = Some("https://auth.example.com/tenant".into());
    config.runtime.compile_cache_dir =
        Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache"));
    let problems = authhost::cli::check::check(&config).await.join("\n");
    assert!(
        problems.contains("server.base_url") && problems.contains("has a path"),
        "{problems}"
    );
    let started = authhost::server::build(config).await;
    let error = started.err().expect("refused").to_string();
    assert!(error.contains("has a path"), "{error}");
}

/// Browser-based clients: preflights are answered on discovery, token and MCP
/// endpoints for configured origins, and the 401's challenge is readable by scripts.
#[tokio::test]
async fn cors_lets_configured_origins_call_the_client_endpoints() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options::with(|config| config.server.cors_origins = vec!["https://app.example".into()]),
    )
    .await;
    for path in [
        "/mcp",
        "/token",
        "/register",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let preflight = http()
            .request(reqwest::Method::OPTIONS, a.url(path))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, mcp-protocol-version",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), StatusCode::OK, "{path}");
        assert_eq!(
            preflight.headers()["access-control-allow-origin"],
            "https://app.example"
        );
        assert!(
            preflight
                .headers()
                .get("access-control-allow-credentials")
                .is_none()
        );
        let foreign = http()
            .request(reqwest::Method::OPTIONS, a.url(path))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(
            foreign
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path}"
        );
    }
    let (status, headers, _) =
        post(&a.url("/mcp"), &[("origin", "https://app.example")], WHOAMI).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("www-authenticate")
    );
}

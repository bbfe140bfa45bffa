//! Each auth mode through the real gateway in front of a real MCP server (rmcp): who the
//! MCP server is told the caller is, which token it gets, and who is turned away.

use crate::common::mcp_server::{self, Reply};
use crate::common::server::{
    Browser, Options, TestAuthhost, mcp_server, start_upstream, start_upstream_with,
};
use crate::common::upstream::sign_in;
use authhost::cli::admin::{ApiKeySpec, create_api_key};
use authhost::config::{AuthMode, IdentityConfig, McpServerConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn whoami(url: &str, token: Option<&str>) -> Reply {
    mcp_server::call(
        url,
        token,
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
    )
    .await
}

/// The upstream's own view of a token: its userinfo answer.
async fn upstream_userinfo(issuer: &str, token: &str) -> (StatusCode, Value) {
    let discovery: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .get(discovery["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn oauth_proxy_forwards_identity_headers_a_signed_identity_token_and_a_fresh_upstream_token()
{
    // Upstream access tokens live 20 s, inside authhost's 30 s refresh margin: every
    // call finds the token about to expire and refreshes it first.
    let upstream = start_upstream_with(json!({"access_token_ttl": 20}));
    let mcp = mcp_server::start(true).await;
    let server = McpServerConfig {
        forward_upstream_token: true,
        identity: IdentityConfig {
            email_header: "X-User-Email".into(),
            token: true,
            ..IdentityConfig::default()
        },
        ..mcp_server("/tools", &mcp)
    };
    let audit =
        std::env::temp_dir().join(format!("audit-{}.log", authhost::crypto::random_token()));
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("tools", server)],
            audit_file: Some(audit.clone()),
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Identity client").await;
    let tokens = a
        .sign_in_as(&Browser::new(), &client, "/tools", "alice")
        .await;
    let token = tokens["access_token"].as_str().unwrap();

    let reply = whoami(&a.url("/tools"), Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = reply.headers_seen().clone();
    assert_eq!(seen["x-authhost-subject"], "alice-sub");
    assert_eq!(
        seen["x-user-email"], "alice@example.com",
        "the configured header name"
    );
    assert!(
        seen.get("x-authhost-email").is_none(),
        "renamed, not duplicated: {seen}"
    );
    assert!(
        seen["x-authhost-groups"]
            .as_str()
            .unwrap()
            .contains("admins")
    );
    assert_eq!(seen["x-authhost-auth"], "oauth");

    // The MCP server gets the user's upstream token, never the client's own.
    let forwarded = seen["authorization"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    assert_ne!(forwarded, token);
    let (status, userinfo) = upstream_userinfo(&upstream.issuer("root"), &forwarded).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the forwarded token works upstream: {userinfo}"
    );
    assert_eq!(userinfo["sub"], "alice-sub");

    // The identity token verifies with authhost's JWKS, for this MCP server only.
    let identity = seen["x-authhost-identity"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(identity).unwrap();
    assert_eq!(header.typ.as_deref(), Some("authhost-identity+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(a.url("/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the signing key is published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&mcp]);
    validation.set_issuer(&[&a.base]);
    let claims = jsonwebtoken::decode::<Value>(
        identity,
        &jsonwebtoken::DecodingKey::from_jwk(key).unwrap(),
        &validation,
    )
    .expect("the identity token verifies")
    .claims;
    assert_eq!(claims["sub"], "alice-sub");
    assert_eq!(claims["email"], "alice@example.com");
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 60);
    // ... and is no access token.
    assert_eq!(
        whoami(&a.url("/tools"), Some(identity)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The next call carries a refreshed upstream token.
    let second = whoami(&a.url("/tools"), Some(token)).await;
    let again = second.headers_seen()["authorization"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    assert_ne!(
        again, forwarded,
        "the expiring upstream token was refreshed"
    );
    let (status, _) = upstream_userinfo(&upstream.issuer("root"), &again).await;
    assert_eq!(status, StatusCode::OK);
    // Calls at once: one refresh at a time, so the rotating refresh token is never
    // spent twice (the upstream would refuse the second use).
    let url = a.url("/tools");
    let calls = (0..6).map(|_| whoami(&url, Some(token)));
    for reply in futures_util::future::join_all(calls).await {
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert!(
            reply.headers_seen()["authorization"]
                .as_str()
                .unwrap()
                .starts_with("Bearer ")
        );
    }
    let audit = std::fs::read_to_string(&audit).unwrap();
    assert!(
        audit.contains("\"event\":\"upstream_token_refreshed\""),
        "{audit}"
    );
    assert!(!audit.contains(&again) && !audit.contains(&forwarded) && !audit.contains(token));
}

#[tokio::test]
async fn a_forged_identity_header_never_reaches_the_mcp_server() {
    let upstream = start_upstream();
    let mcp = mcp_server::start(true).await;
    let server = McpServerConfig {
        identity: IdentityConfig {
            email_header: "X-User-Email".into(),
            ..IdentityConfig::default()
        },
        ..mcp_server("/tools", &mcp)
    };
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("tools", server)],
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Forger").await;
    let tokens = a
        .sign_in_as(&Browser::new(), &client, "/tools", "bob")
        .await;
    let response = reqwest::Client::new()
        .post(a.url("/tools"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("x-user-email", "alice@example.com")
        .header("x-authhost-subject", "alice-sub")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let seen = &body["result"]["structuredContent"];
    assert_eq!(seen["x-user-email"], "bob@example.org", "{seen}");
    assert_eq!(seen["x-authhost-subject"], "bob-sub");
    assert!(
        seen.get("authorization").is_none(),
        "no token is forwarded unless configured"
    );
}

/// `authhost_provider_calls_total` for one provider function and outcome (`ok`,
/// `error`), from `/metrics`.
fn provider_calls(a: &TestAuthhost, function: &str, outcome: &str) -> u64 {
    let text = a.state.metrics.render();
    let prefix = format!(
        "authhost_provider_calls_total{{provider=\"up\",function=\"{function}\",outcome=\"{outcome}\"}} "
    );
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test]
async fn client_token_mode_validates_upstream_tokens_through_the_provider_and_caches_briefly() {
    let upstream = start_upstream();
    let mcp = mcp_server::start(false).await;
    let server = McpServerConfig {
        auth: AuthMode::ClientToken,
        forward_upstream_token: true,
        // A header of its own: the bare token, as an API like Mattermost's takes it.
        upstream_token_header: "X-Upstream-Token".into(),
        ..mcp_server("/ct", &mcp)
    };
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("ct", server)],
            ..Options::default()
        },
    )
    .await;
    let provider = &a.state.registry.instances["up"];
    let bob = sign_in(provider, &upstream.issuer("root"), "bob", "bob-password").await;

    let reply = whoami(&a.url("/ct"), Some(&bob.access_token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert!(
        reply.content_type.starts_with("text/event-stream"),
        "SSE passes through"
    );
    let seen = reply.headers_seen();
    assert_eq!(seen["x-authhost-subject"], "bob-sub");
    assert_eq!(seen["x-authhost-auth"], "client_token");
    assert_eq!(seen["x-upstream-token"], bob.access_token.as_str());
    assert!(
        seen.get("authorization").is_none(),
        "the client's header is not passed on"
    );
    let checks = provider_calls(&a, "user-claims", "ok");
    assert!(checks >= 1);
    assert_eq!(
        whoami(&a.url("/ct"), Some(&bob.access_token)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        provider_calls(&a, "user-claims", "ok"),
        checks,
        "the second call is answered from the cache"
    );

    // A token the upstream does not know: 401, and a challenge without an OAuth flow.
    let refused = whoami(&a.url("/ct"), Some("not-a-real-token")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let challenge = refused.www_authenticate.unwrap();
    assert!(
        challenge.contains("realm=\"ct\"") && challenge.contains("invalid_token"),
        "{challenge}"
    );
    assert!(!challenge.contains("resource_metadata"), "{challenge}");
    // Refusals are remembered briefly: a client retrying a dead token is answered here.
    let refusals = provider_calls(&a, "issued-to-client", "ok");
    let again = whoami(&a.url("/ct"), Some("not-a-real-token")).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(provider_calls(&a, "issued-to-client", "ok"), refusals);
    // No token: no fallback to anything shared.
    assert_eq!(
        whoami(&a.url("/ct"), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Not an OAuth resource: no metadata, no authorization for it.
    let prm = reqwest::get(a.url("/.well-known/oauth-protected-resource/ct"))
        .await
        .unwrap();
    assert_eq!(prm.status(), StatusCode::NOT_FOUND);
}

/// An upstream client of the test OpenID provider, registered for authhost's callback.
fn upstream_client(client_id: &str, secret: &str, instance: &str) -> Value {
    json!({
        "client_id": client_id, "client_secret": secret,
        "redirect_uris": [format!("http://127.0.0.1/oauth/callback/{instance}")],
        "token_endpoint_auth_method": "client_secret_basic",
    })
}

/// Another application at the same upstream signs alice in: the upstream takes its
/// token as alice's, so without an audience check the gateway would too.
#[tokio::test]
async fn client_token_mode_refuses_tokens_issued_to_another_client() {
    let upstream = start_upstream_with(json!({"clients": [
        upstream_client("test-client", "test-secret", "up"),
        upstream_client("other-app", "other-secret", "other"),
    ]}));
    let mcp = mcp_server::start(false).await;
    let server = McpServerConfig {
        auth: AuthMode::ClientToken,
        ..mcp_server("/ct", &mcp)
    };
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("ct", server)],
            ..Options::with(|config| {
                // The other application, as a provider instance only to sign in with.
                let mut other = config.providers["up"].clone();
                other.client_id = "other-app".into();
                other.client_secret = Some("other-secret".into());
                config.providers.insert("other".into(), other);
            })
        },
    )
    .await;
    let issuer = upstream.issuer("root");
    let theirs = sign_in(
        &a.state.registry.instances["other"],
        &issuer,
        "alice",
        "alice-password",
    )
    .await;
    let (status, info) = upstream_userinfo(&issuer, &theirs.access_token).await;
    assert_eq!(status, StatusCode::OK, "a live token of alice's: {info}");
    let refused = whoami(&a.url("/ct"), Some(&theirs.access_token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    assert!(
        refused.www_authenticate.unwrap().contains("invalid_token"),
        "a refusal in the OAuth shape"
    );

    let ours = sign_in(
        &a.state.registry.instances["up"],
        &issuer,
        "alice",
        "alice-password",
    )
    .await;
    let reply = whoami(&a.url("/ct"), Some(&ours.access_token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.headers_seen()["x-authhost-subject"], "alice-sub");
}

/// A component built against contract 0.1.0 has no audience check: `client_token`
/// with it is a config error naming the key, until the operator accepts any audience.
#[tokio::test]
async fn client_token_mode_with_a_provider_that_cannot_check_needs_any_audience() {
    let mcp = mcp_server::start(false).await;
    let providers_dir = std::env::temp_dir().join(format!(
        "legacy-providers-{}",
        authhost::crypto::random_token()
    ));
    std::fs::create_dir_all(&providers_dir).unwrap();
    std::fs::copy(
        crate::common::test_component_path("test_provider_contract_0_1_0"),
        providers_dir.join("legacy.wasm"),
    )
    .unwrap();
    let config = |any_audience: bool| {
        let mut config = authhost::config::Config::default();
        config.server.data_dir = std::env::temp_dir().join(format!(
            "authhost-legacy-{}",
            authhost::crypto::random_token()
        ));
        config.runtime.providers_dir = Some(providers_dir.clone());
        config.providers.insert(
            "legacy".into(),
            authhost::config::ProviderConfig {
                client_id: "legacy-client".into(),
                ..Default::default()
            },
        );
        let server = McpServerConfig {
            auth: AuthMode::ClientToken,
            provider: Some("legacy".into()),
            client_token_any_audience: any_audience,
            ..mcp_server("/ct", &mcp)
        };
        config.mcp_servers.insert("ct".into(), server);
        config
    };
    let Err(error) = authhost::server::build(config(false)).await else {
        panic!("started without an audience check");
    };
    let message = format!("{error:#}");
    assert!(
        message.contains("mcp_servers.ct.auth")
            && message.contains("`legacy`")
            && message.contains("client_token_any_audience = true"),
        "{message}"
    );

    let server = authhost::server::build(config(true))
        .await
        .expect("starts when any audience is accepted");
    let contract = &server.state.registry.instances["legacy"].component.contract;
    assert_eq!(contract.to_string(), "0.1.0");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = authhost::server::app(&server)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let reply = whoami(&format!("{base}/ct"), Some("carol")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.headers_seen()["x-authhost-subject"], "carol");
}

#[tokio::test]
async fn static_token_mode_admits_the_one_token_as_the_configured_identity() {
    let upstream = start_upstream();
    let mcp = mcp_server::start(true).await;
    let file = std::env::temp_dir().join(format!("static-{}", authhost::crypto::random_token()));
    let secret = authhost::crypto::random_token();
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let server = McpServerConfig {
        auth: AuthMode::StaticToken,
        static_token_file: Some(file),
        static_subject: Some("deploy-bot".into()),
        static_groups: vec!["ops".into()],
        ..mcp_server("/svc", &mcp)
    };
    let audit =
        std::env::temp_dir().join(format!("audit-{}.log", authhost::crypto::random_token()));
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("svc", server)],
            audit_file: Some(audit.clone()),
            ..Options::default()
        },
    )
    .await;
    let reply = whoami(&a.url("/svc"), Some(&secret)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = reply.headers_seen();
    assert_eq!(seen["x-authhost-subject"], "deploy-bot");
    assert_eq!(seen["x-authhost-groups"], "ops");
    assert!(
        seen.get("authorization").is_none(),
        "the shared token stays at authhost"
    );
    assert_eq!(
        whoami(&a.url("/svc"), Some("wrong-token-of-some-length"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        whoami(&a.url("/svc"), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The failed attempt is audited, without the token it tried.
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.contains(r#""event":"authentication_failed""#) && log.contains(r#""resource":"svc""#),
        "{log}"
    );
    assert!(!log.contains("wrong-token-of-some-length") && !log.contains(&secret));
}

#[tokio::test]
async fn api_keys_work_where_enabled_for_their_server_until_revoked() {
    let upstream = start_upstream();
    let mcp = mcp_server::start(true).await;
    let keyed = McpServerConfig {
        api_keys: true,
        ..mcp_server("/keys", &mcp)
    };
    let other = McpServerConfig {
        api_keys: true,
        ..mcp_server("/other", &mcp)
    };
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("keys", keyed), ("other", other)],
            ..Options::default()
        },
    )
    .await;
    let store = &a.state.store;
    let spec = |scopes: &'static [String]| ApiKeySpec {
        name: "ci-bot",
        server: "keys",
        subject: None,
        groups: &[],
        scopes,
        expires_in_days: None,
    };
    let scopes = vec!["mcp".to_string()];
    let (id, key) = create_api_key(
        store,
        ApiKeySpec {
            groups: &["ci".to_string()],
            scopes: &scopes,
            ..spec(&[])
        },
    )
    .await
    .unwrap();

    let reply = whoami(&a.url("/keys"), Some(&key)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let seen = reply.headers_seen();
    assert_eq!(seen["x-authhost-subject"], "api-key:ci-bot");
    assert_eq!(seen["x-authhost-auth"], "api_key");
    assert_eq!(seen["x-authhost-groups"], "ci");
    let elsewhere = whoami(&a.url("/other"), Some(&key)).await;
    assert_eq!(
        elsewhere.status,
        StatusCode::UNAUTHORIZED,
        "a key is for its own server"
    );
    assert!(
        elsewhere
            .www_authenticate
            .unwrap()
            .contains("for the MCP server `keys`")
    );
    assert_eq!(
        whoami(&a.url("/mcp"), Some(&key)).await.status,
        StatusCode::UNAUTHORIZED,
        "not where keys are off"
    );

    // Only the hash is stored.
    let listed = store.api_keys().await.unwrap();
    assert!(
        listed
            .iter()
            .all(|k| k.key_hash != key && !k.key_hash.contains(&key[4..]))
    );
    assert!(
        store
            .revoke_api_key(&id, authhost::clock::now())
            .await
            .unwrap()
    );
    assert_eq!(
        whoami(&a.url("/keys"), Some(&key)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A key without the server's scope: 403 insufficient_scope.
    let few = vec!["read".to_string()];
    let (_, weak) = create_api_key(
        store,
        ApiKeySpec {
            scopes: &few,
            ..spec(&[])
        },
    )
    .await
    .unwrap();
    let reply = whoami(&a.url("/keys"), Some(&weak)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply
            .www_authenticate
            .unwrap()
            .contains("insufficient_scope")
    );
}

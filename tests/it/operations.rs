//! What an operator relies on: readiness, Prometheus metrics, the audit log (with user,
//! client and provider, and no secrets), `authhost check`, and clear errors when the MCP
//! server behind is slow or gone.

use crate::common::mcp_server;
use crate::common::server::{Browser, Options, TestAuthhost, mcp_server, start_upstream};
use authhost::config::{Config, McpServerConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test]
async fn readiness_metrics_and_an_audit_log_without_secrets() {
    let upstream = start_upstream();
    let audit =
        std::env::temp_dir().join(format!("audit-{}.log", authhost::crypto::random_token()));
    let a = TestAuthhost::start(
        &upstream,
        Options {
            audit_file: Some(audit.clone()),
            ..Options::default()
        },
    )
    .await;
    let ready = reqwest::get(a.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");

    let client = a.register("Audited client").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(a.whoami("/mcp", access).await.status(), StatusCode::OK);
    let (status, refreshed) = a.refresh(&client, refresh).await;
    assert_eq!(status, StatusCode::OK);
    let revoked = reqwest::Client::new()
        .post(a.url("/revoke"))
        .form(&[
            ("token", refreshed["refresh_token"].as_str().unwrap()),
            ("client_id", &client),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    // Reuse of the old refresh token: detected (and would end the family).
    assert_eq!(a.refresh(&client, refresh).await.0, StatusCode::BAD_REQUEST);

    let metrics = reqwest::get(a.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "authhost_authorization_flows_total{provider=\"up\",outcome=\"completed\"} 1",
        "authhost_tokens_issued_total{grant_type=\"authorization_code\"} 1",
        "authhost_tokens_issued_total{grant_type=\"refresh_token\"} 1",
        "authhost_gateway_requests_total{server=\"demo\",outcome=\"forwarded\"} 1",
        "authhost_provider_calls_total{provider=\"up\",function=\"exchange-code\",outcome=\"ok\"} 1",
        "authhost_http_requests_total{route=\"/token\",method=\"POST\",status=\"200\"} 2",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in:\n{metrics}");
    }
    assert!(
        metrics.contains("authhost_http_request_duration_seconds_bucket{"),
        "latency histograms"
    );

    let log = std::fs::read_to_string(&audit).unwrap();
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for kind in [
        "consent",
        "sign_in",
        "token_issued",
        "token_refreshed",
        "refresh_reuse",
        "revoked",
    ] {
        assert!(kinds.contains(&kind), "no `{kind}` event in {kinds:?}");
    }
    let sign_in = events.iter().find(|e| e["event"] == "sign_in").unwrap();
    assert_eq!(sign_in["user"], "alice-sub");
    assert_eq!(sign_in["client_id"], client.as_str());
    assert_eq!(sign_in["provider"], "up");
    assert!(sign_in["time"].as_i64().is_some());
    for secret in [
        access,
        refresh,
        refreshed["access_token"].as_str().unwrap(),
        "test-secret",
    ] {
        assert!(!log.contains(secret), "a secret in the audit log");
    }
}

/// An MCP server that takes two seconds to answer.
async fn slow_server() -> String {
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(|| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            axum::Json(json!({"jsonrpc": "2.0", "id": 1, "result": {}}))
        }),
    );
    format!("{}/mcp", crate::common::serve(app).await)
}

#[tokio::test]
async fn a_slow_or_missing_mcp_server_gets_a_json_rpc_error_not_a_hang() {
    let upstream = start_upstream();
    let servers = vec![
        (
            "slow",
            McpServerConfig {
                timeout_ms: 300,
                ..mcp_server("/slow", &slow_server().await)
            },
        ),
        // Nothing listens on the discard port.
        ("gone", mcp_server("/gone", "http://127.0.0.1:9/mcp")),
    ];
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: servers,
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Patient client").await;
    for (path, status, says) in [
        (
            "/slow",
            StatusCode::GATEWAY_TIMEOUT,
            "did not answer within 300 ms",
        ),
        ("/gone", StatusCode::BAD_GATEWAY, "is unreachable"),
    ] {
        let token = a.sign_in_as(&Browser::new(), &client, path, "alice").await;
        let started = std::time::Instant::now();
        let reply = mcp_server::call(
            &a.url(path),
            token["access_token"].as_str(),
            "tools/list",
            json!({}),
        )
        .await;
        assert_eq!(reply.status, status, "{reply:?}");
        let message = reply.last()["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
        assert!(started.elapsed() < Duration::from_millis(1500));
    }
}

#[tokio::test]
async fn check_reports_every_problem_with_its_key() {
    let file = std::env::temp_dir().join(format!("short-{}", authhost::crypto::random_token()));
    std::fs::write(&file, "short").unwrap();
    let mut config = Config::from_toml(&format!(
        r#"
        [server]
        base_url = "http://mcp.example.com"
        trusted_proxies = ["10.0.0.0/8", "not-an-address"]

        [providers.corp]
        component = "oidc"
        client_id = "authhost"
        issuer = "https://id.example.com"
        colour = "blue"

        [mcp_servers.docs]
        path = "/docs"
        upstream = "http://127.0.0.1:9000/mcp"
        provider = "nope"

        [mcp_servers.ops]
        path = "/ops"
        upstream = "http://127.0.0.1:9001/mcp"
        auth = "static_token"
        static_token_file = "{}"
        identity = {{ email_header = "bad header" }}
        policy = {{ allow = "user.email ==" }}
        "#,
        file.display()
    ))
    .unwrap();
    config.runtime.compile_cache_dir =
        Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache"));
    let problems = authhost::cli::check::check(&config).await;
    let all = problems.join("\n");
    for key in [
        "server.base_url",
        "server.trusted_proxies: `not-an-address`",
        "providers.corp",
        "colour",
        "mcp_servers.docs.provider: no provider instance `nope`",
        "mcp_servers.ops: the static token is shorter than 16 characters",
        "mcp_servers.ops.identity.email_header",
        "mcp_servers.ops.policy.allow",
    ] {
        assert!(all.contains(key), "`{key}` not reported in:\n{all}");
    }
}

#[tokio::test]
async fn clients_added_by_the_operator_sign_in_and_removing_one_ends_its_grants() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let store = &a.state.store;
    let added = authhost::cli::admin::add_client(
        store,
        "Internal agent",
        &[crate::common::server::CALLBACK.to_string()],
        true,
    )
    .await
    .unwrap();
    let secret = added
        .secret
        .clone()
        .expect("a confidential client has a secret");
    let pkce = crate::common::server::Pkce::new();
    let done = Browser::new()
        .authorize(
            &a.authorize_url(&added.client_id, &pkce, &[]),
            "alice",
            "alice-password",
        )
        .await;
    let code = done.param("code").expect("a code");
    let redeem = |secret: Option<&str>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("client_id", added.client_id.clone()),
            ("code", code.clone()),
            ("redirect_uri", crate::common::server::CALLBACK.to_string()),
            ("code_verifier", pkce.verifier.clone()),
        ];
        if let Some(secret) = secret {
            form.push(("client_secret", secret.to_string()));
        }
        form
    };
    let form = redeem(None);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = a.token(&pairs).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the secret is required: {body}"
    );
    assert_eq!(body["error"], "invalid_client");
    let form = redeem(Some(&secret));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, tokens) = a.token(&pairs).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let listed = store.clients().await.unwrap();
    assert!(listed.iter().any(
        |c| c.client_id == added.client_id && c.secret_hash.as_deref() != Some(secret.as_str())
    ));

    assert!(
        store
            .remove_client(&added.client_id, authhost::clock::now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_client(&added.client_id, authhost::clock::now())
            .await
            .unwrap()
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        a.whoami("/mcp", access).await.status(),
        StatusCode::UNAUTHORIZED,
        "its grants ended"
    );
    let bad =
        authhost::cli::admin::add_client(store, "x", &["javascript:alert(1)".into()], false).await;
    assert!(bad.is_err());
}

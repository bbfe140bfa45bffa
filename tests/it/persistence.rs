//! State lives in the store: flows cross instances that share a database, a restart
//! loses nothing, and revocation reaches the upstream. Each on SQLite and PostgreSQL.

use crate::common::instances::{database, shared_dir, two_instances};
use crate::common::server::{Browser, Options, Pkce, TestAuthhost, http, start_upstream};
use authhost::config::StaticClientConfig;
use reqwest::StatusCode;
use serde_json::Value;

/// A starts the flow, B finishes it, C (a restart) refreshes; tokens work everywhere.
async fn flow_across_instances(backend: &str) {
    let upstream = start_upstream();
    let Some((a, b, shared)) = two_instances(backend, &upstream, Options::default()).await else {
        return;
    };

    let client = a.register("Cross-instance client").await;
    let pkce = Pkce::new();
    let browser = Browser {
        rewrite: Some((a.base.clone(), b.own.clone())),
        ..Browser::new()
    };
    // The first page from A; everything after it (consent, callback) lands on B.
    let consent = browser
        .http
        .get(a.authorize_url(&client, &pkce, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), StatusCode::OK);
    let (action, mut fields) = crate::common::server::form(&consent.text().await.unwrap());
    fields.push(("decision".into(), "approve".into()));
    let action = action.replacen(&a.base, &b.own, 1);
    let upstream_redirect = browser
        .http
        .post(&action)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(
        upstream_redirect.status(),
        StatusCode::SEE_OTHER,
        "B knows A's authorization"
    );
    let next = upstream_redirect.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let done = browser.authorize(&next, "alice", "alice-password").await;
    let (status, tokens) = b
        .exchange(&client, &done.param("code").expect("code from B"), &pkce)
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        a.whoami("/mcp", tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK,
        "A accepts B's token"
    );

    let c = TestAuthhost::start(&upstream, shared).await;
    let (status, refreshed) = c
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a restarted instance knows the client and the refresh token: {refreshed}"
    );
    assert_eq!(
        b.whoami("/mcp", refreshed["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn flow_across_instances_sqlite() {
    flow_across_instances("sqlite").await;
}

#[tokio::test]
async fn flow_across_instances_postgres() {
    flow_across_instances("postgres").await;
}

/// Revocation ends the grant here and the upstream tokens there; introspection tells
/// resource servers.
async fn revocation_and_introspection(backend: &str) {
    let dir = shared_dir();
    let Some(db) = database(backend, &dir).await else {
        return;
    };
    let upstream = start_upstream();
    let resource_server = StaticClientConfig {
        client_id: "docs-server".into(),
        name: Some("Docs MCP server".into()),
        client_secret: Some("rs-secret".into()),
        client_secret_env: None,
        client_secret_file: None,
        redirect_uris: vec![],
    };
    let a = TestAuthhost::start(
        &upstream,
        Options {
            database_url: Some(db),
            data_dir: Some(dir),
            static_clients: vec![resource_server],
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Revocation client").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let access = tokens["access_token"].as_str().unwrap();

    let introspect = |token: String, id: &'static str, secret: &'static str| {
        let url = a.own_url("/introspect");
        async move {
            http()
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    let active: Value = introspect(access.to_string(), "docs-server", "rs-secret")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], "alice-sub");
    assert_eq!(active["aud"], a.url("/mcp"));
    assert_eq!(
        introspect(access.to_string(), "docs-server", "wrong")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let grant_id = a.state.signer.verify(access, None).unwrap().0.gid.unwrap();
    let grant = a.state.store.grant(&grant_id).await.unwrap().unwrap();
    let sealed = grant.upstream_tokens.expect("upstream tokens kept");
    assert!(
        !sealed.contains("access_token"),
        "upstream tokens are encrypted at rest"
    );
    let upstream_tokens: Value =
        serde_json::from_slice(&a.state.sealer.open(&sealed).unwrap()).unwrap();
    let upstream_refresh = upstream_tokens["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    let response = http()
        .post(a.own_url("/revoke"))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        a.whoami("/mcp", access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let inactive: Value = introspect(access.to_string(), "docs-server", "rs-secret")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inactive["active"], false);
    let instance = &a.state.registry.instances["up"];
    let err = instance.refresh(upstream_refresh).await.unwrap_err();
    assert!(
        err.provider_error().is_some(),
        "the upstream refresh token was revoked too: {err}"
    );
}

#[tokio::test]
async fn revocation_and_introspection_sqlite() {
    revocation_and_introspection("sqlite").await;
}

#[tokio::test]
async fn revocation_and_introspection_postgres() {
    revocation_and_introspection("postgres").await;
}

async fn api_keys_and_revocation_across_instances(backend: &str) {
    let upstream = start_upstream();
    let demo = authhost::dev::demo_mcp::start().await.unwrap();
    let options = Options {
        mcp_servers: vec![(
            "keys",
            authhost::config::McpServerConfig {
                api_keys: true,
                ..crate::common::server::mcp_server("/keys", &demo)
            },
        )],
        ..Options::default()
    };
    let Some((a, b, _)) = two_instances(backend, &upstream, options).await else {
        return;
    };

    let scopes = vec!["mcp".to_string()];
    let spec = authhost::cli::admin::ApiKeySpec {
        name: "shared-bot",
        server: "keys",
        subject: None,
        groups: &[],
        scopes: &scopes,
        expires_in_days: Some(1),
    };
    let (id, key) = authhost::cli::admin::create_api_key(&a.state.store, spec)
        .await
        .unwrap();
    assert_eq!(b.whoami("/keys", &key).await.status(), StatusCode::OK);
    assert!(
        a.state
            .store
            .revoke_api_key(&id, authhost::clock::now())
            .await
            .unwrap()
    );
    assert_eq!(
        b.whoami("/keys", &key).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let client = a.register("Two-instance client").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(b.whoami("/mcp", access).await.status(), StatusCode::OK);
    let revoke = http()
        .post(a.own_url("/revoke"))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    assert_eq!(
        a.whoami("/mcp", access).await.status(),
        StatusCode::UNAUTHORIZED,
        "at once where revoked"
    );
    let started = std::time::Instant::now();
    while b.whoami("/mcp", access).await.status() == StatusCode::OK {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "B still admits a revoked grant"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn api_keys_and_revocation_across_instances_sqlite() {
    api_keys_and_revocation_across_instances("sqlite").await;
}

#[tokio::test]
async fn api_keys_and_revocation_across_instances_postgres() {
    api_keys_and_revocation_across_instances("postgres").await;
}

/// Two instances forwarding the same user's upstream token, which is always about to
/// expire and whose refresh token rotates: calls on both at once all get a token the
/// upstream accepts, because only one refresh runs at a time across instances (a
/// refresh token spent twice would make the upstream end the grant).
async fn upstream_refresh_across_instances(backend: &str) {
    let upstream = crate::common::server::start_upstream_with(serde_json::json!({
        "access_token_ttl": 20,
        "rotate_refresh_tokens": true,
    }));
    let mcp = crate::common::mcp_server::start(true).await;
    let options = Options {
        mcp_servers: vec![(
            "tools",
            authhost::config::McpServerConfig {
                forward_upstream_token: true,
                ..crate::common::server::mcp_server("/tools", &mcp)
            },
        )],
        ..Options::default()
    };
    let Some((a, b, _)) = two_instances(backend, &upstream, options).await else {
        return;
    };
    let client = a.register("Busy client").await;
    let tokens = a
        .sign_in_as(&Browser::new(), &client, "/tools", "alice")
        .await;
    let token = tokens["access_token"].as_str().unwrap();
    let whoami = |own: String| async move {
        crate::common::mcp_server::call(
            &own,
            Some(token),
            "tools/call",
            serde_json::json!({"name": "whoami", "arguments": {}}),
        )
        .await
    };
    for round in 0..3 {
        let calls = (0..8).map(|i| {
            whoami(if i % 2 == 0 {
                a.own_url("/tools")
            } else {
                b.own_url("/tools")
            })
        });
        for reply in futures_util::future::join_all(calls).await {
            assert_eq!(reply.status, StatusCode::OK, "round {round}: {reply:?}");
            assert!(
                reply.headers_seen()["authorization"]
                    .as_str()
                    .unwrap()
                    .starts_with("Bearer ")
            );
        }
    }
}

#[tokio::test]
async fn upstream_refresh_across_instances_sqlite() {
    upstream_refresh_across_instances("sqlite").await;
}

#[tokio::test]
async fn upstream_refresh_across_instances_postgres() {
    upstream_refresh_across_instances("postgres").await;
}

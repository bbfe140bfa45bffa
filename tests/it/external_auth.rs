//! An external authorization server (`auth = "external"`): the real OpenID provider
//! used in the tests is the MCP authorization server, issuing JWT access tokens bound
//! to the resource; authhost only names it in the protected resource metadata and
//! checks its tokens. The official TypeScript SDK client does the whole flow against
//! that provider (discovery from authhost's 401, registration, login, token), then
//! calls the server through authhost.

use crate::common::clients::node;
use crate::common::server::{Browser, Options, TestAuthhost, mcp_server, start_upstream_with};
use authhost::config::{AuthMode, ExternalAuthConfig, McpServerConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn start() -> (TestAuthhost, crate::common::upstream::Upstream) {
    let upstream = start_upstream_with(json!({
        "resource_servers": [
            { "path": "/ext", "scope": "mcp" },
            { "path": "/ext-opaque", "scope": "mcp", "format": "opaque" },
        ],
    }));
    let issuer = upstream.issuer("root");
    let demo = authhost::dev::demo_mcp::start().await.unwrap();
    let external = McpServerConfig {
        auth: AuthMode::External,
        provider: None,
        external: Some(ExternalAuthConfig {
            issuer: issuer.clone(),
            jwks_url: format!("{issuer}/jwks"),
            audiences: vec![],
            algorithms: vec!["RS256".into()],
            allow_private_hosts: true,
            introspection_url: None,
            client_id: None,
            client_secret: None,
            client_secret_env: None,
            client_secret_file: None,
        }),
        ..mcp_server("/ext", &demo)
    };
    // The same server for opaque tokens, introspected as the provider's own client.
    let opaque = McpServerConfig {
        external: external.external.clone().map(|e| ExternalAuthConfig {
            introspection_url: Some(format!("{issuer}/token/introspection")),
            client_id: Some("test-client".into()),
            client_secret: Some("test-secret".into()),
            ..e
        }),
        ..mcp_server("/ext-opaque", &demo)
    };
    let opaque = McpServerConfig {
        auth: AuthMode::External,
        provider: None,
        ..opaque
    };
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("ext", external), ("ext-opaque", opaque)],
            ..Options::default()
        },
    )
    .await;
    (a, upstream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_signs_in_at_the_external_server_and_calls_through_authhost() {
    sign_in_externally("/ext").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_of_the_external_server_are_introspected() {
    sign_in_externally("/ext-opaque").await;
}

async fn sign_in_externally(path: &str) {
    let (a, upstream) = start().await;
    let args = [
        "--url",
        &a.url(path),
        "--mode",
        "headless",
        "--username",
        "alice",
        "--password",
        "alice-password",
    ];
    let result = node("e2e", "mcp-client.mjs", args.map(String::from).into()).await;
    let whoami: Value = serde_json::from_str(result["first"].as_str().unwrap()).unwrap();
    assert_eq!(whoami["subject"], "alice-sub");
    assert_eq!(whoami["auth"], "external");
    assert_eq!(whoami["provider"], upstream.issuer("root"));
    // The client registered at the external server, not at authhost.
    let client_id = result["registered_client_id"].as_str().unwrap();
    assert!(a.state.store.client(client_id).await.unwrap().is_none());
}

#[tokio::test]
async fn the_metadata_names_the_external_server_and_other_tokens_are_refused() {
    let (a, upstream) = start().await;
    let metadata: Value = crate::common::server::http()
        .get(a.own_url("/.well-known/oauth-protected-resource/ext"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], a.url("/ext"));
    assert_eq!(
        metadata["authorization_servers"],
        json!([upstream.issuer("root")])
    );

    // Without a token: the challenge that starts discovery.
    let reply = a.whoami("/ext", "").await;
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    // authhost's own token for another server is not the external server's token.
    let client = a.register("agent").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let own = tokens["access_token"].as_str().unwrap();
    let reply = a.whoami("/ext", own).await;
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    let challenge = reply.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // Unsigned, or not a JWT at all.
    use base64::Engine as _;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "at+jwt"})),
        b64(
            json!({"iss": upstream.issuer("root"), "sub": "mallory", "aud": a.url("/ext"),
                   "exp": a.state.clock.now() + 300})
        )
    );
    for token in [unsigned.as_str(), "opaque-token"] {
        assert_eq!(
            a.whoami("/ext", token).await.status(),
            StatusCode::UNAUTHORIZED,
            "{token}"
        );
    }
}

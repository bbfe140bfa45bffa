//! Delegation by token exchange (RFC 8693): the MCP server behind `/mcp`, as the
//! confidential client its `delegation` names, trades the access token a signed-in
//! user sent it for a short-lived token to a downstream API, naming itself as the
//! actor. And each refusal: another server's token, an audience or scope beyond what
//! the operator allowed, a revoked grant, a client that is not the server's.

use crate::common::server::{
    Browser, Options, TestAuthhost, confidential_client, http, start_upstream,
};
use authhost::config::DelegationConfig;
use reqwest::StatusCode;
use serde_json::Value;

const SERVER_CLIENT: &str = "docs-mcp";
const SERVER_SECRET: &str = "docs-mcp-secret-0123456789";
const API: &str = "https://api.internal.example";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

fn options() -> Options {
    Options {
        static_clients: vec![confidential_client(
            SERVER_CLIENT,
            "Docs MCP server",
            SERVER_SECRET,
        )],
        ..Options::with(|config| {
            if let Some(demo) = config.mcp_servers.get_mut("demo") {
                demo.delegation = Some(DelegationConfig {
                    client_id: SERVER_CLIENT.into(),
                    audiences: vec![API.into()],
                    scopes: vec![],
                    token_ttl: 120,
                });
            }
        })
    }
}

async fn exchange(a: &TestAuthhost, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("client_id", SERVER_CLIENT),
        ("client_secret", SERVER_SECRET),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", API),
    ];
    for (key, value) in extra {
        form.retain(|(k, _)| k != key);
        form.push((key, value));
    }
    a.token(&form).await
}

#[tokio::test]
async fn an_mcp_server_exchanges_its_callers_token_for_one_to_its_api() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, options()).await;
    let client = a.register("agent").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let user_token = tokens["access_token"].as_str().unwrap();

    let (status, body) = exchange(&a, &[("subject_token", user_token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert!(body.get("refresh_token").is_none(), "{body}");
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((1..=120).contains(&expires_in), "{body}");
    let delegated = body["access_token"].as_str().unwrap();
    // The new token: the user, for the API, with the MCP server as the actor.
    let (claims, _) = a.state.signer.verify(delegated, Some(API)).unwrap();
    assert_eq!(claims.sub, "alice-sub");
    assert_eq!(
        claims.act.map(|actor| actor.sub).as_deref(),
        Some(SERVER_CLIENT)
    );
    assert_eq!(claims.scope, "mcp");
    // It is no good at the MCP servers themselves.
    assert_eq!(
        a.whoami("/mcp", delegated).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The API can introspect it (as an operator's confidential client), and it ends
    // with the user's grant.
    let introspect = |token: String| {
        let a = &a;
        async move {
            let body: Value = http()
                .post(a.own_url("/introspect"))
                .basic_auth(SERVER_CLIENT, Some(SERVER_SECRET))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body
        }
    };
    let live = introspect(delegated.to_string()).await;
    assert_eq!(live["active"], true, "{live}");
    assert_eq!(live["act"]["sub"], SERVER_CLIENT);
    let grant_id = a
        .state
        .signer
        .verify(user_token, None)
        .unwrap()
        .0
        .gid
        .unwrap();
    a.state
        .store
        .revoke_grant(&grant_id, a.state.clock.now())
        .await
        .unwrap();
    assert_eq!(introspect(delegated.to_string()).await["active"], false);
    let (status, body) = exchange(&a, &[("subject_token", user_token)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn exchanges_beyond_what_the_operator_allowed_are_refused() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, options()).await;
    let client = a.register("agent").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let user_token = tokens["access_token"].as_str().unwrap();
    let refused = |(status, body): (StatusCode, Value), code: &str| {
        assert_eq!(body["error"], code, "{body}");
        status
    };

    // An audience the server was not allowed.
    let status = refused(
        exchange(
            &a,
            &[
                ("subject_token", user_token),
                ("audience", "https://payroll.example"),
            ],
        )
        .await,
        "invalid_target",
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A scope the user's token does not hold.
    let status = refused(
        exchange(&a, &[("subject_token", user_token), ("scope", "mcp admin")]).await,
        "invalid_scope",
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A token the user got for another MCP server.
    let admin = a
        .sign_in_as(&Browser::new(), &client, "/admin-mcp", "alice")
        .await;
    refused(
        exchange(
            &a,
            &[("subject_token", admin["access_token"].as_str().unwrap())],
        )
        .await,
        "invalid_grant",
    );
    // Not a token at all, or of another type.
    refused(
        exchange(&a, &[("subject_token", "garbage")]).await,
        "invalid_grant",
    );
    refused(
        exchange(
            &a,
            &[
                ("subject_token", user_token),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
        )
        .await,
        "invalid_request",
    );
    // The MCP server with a wrong secret; a client that is not the server's delegate.
    let status = refused(
        exchange(
            &a,
            &[("subject_token", user_token), ("client_secret", "wrong")],
        )
        .await,
        "invalid_client",
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let status = refused(
        a.token(&[
            ("grant_type", EXCHANGE),
            ("client_id", &client),
            ("subject_token_type", ACCESS_TOKEN),
            ("subject_token", user_token),
            ("audience", API),
        ])
        .await,
        "unauthorized_client",
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

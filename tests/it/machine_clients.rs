//! Machines calling MCP servers with the client_credentials grant (the MCP
//! client-credentials extension), driven by the official Python SDK's providers
//! (tests/machine-clients/client.py): a client secret, in Basic and in the form, and
//! private_key_jwt. Then the attacks and mistakes, at the token endpoint itself: a
//! wrong secret, a replayed or forged assertion, scopes and servers beyond what the
//! operator allowed, clients that are not machine clients.

use crate::common::clients::{key_pair, python, serve_public_keys};
use crate::common::server::{Options, TestAuthhost, http, start_upstream};
use authhost::cli::admin;
use authhost::domain::clients::{ClientKeys, MachineAccess, NewClient};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Call `whoami` at `/mcp` as a machine client: `auth` is the credential's arguments.
async fn call(a: &TestAuthhost, client_id: &str, auth: &[&str]) -> Value {
    let mut args: Vec<String> = ["call", "--url", &a.url("/mcp"), "--issuer", &a.base]
        .map(String::from)
        .into();
    args.extend(["--client-id".into(), client_id.into()]);
    args.extend(auth.iter().map(|s| s.to_string()));
    python(&args).await
}

async fn machine(
    a: &TestAuthhost,
    servers: &[&str],
    scopes: &[&str],
    keys: Option<ClientKeys>,
) -> NewClient {
    let access = MachineAccess {
        servers: servers.iter().map(|s| s.to_string()).collect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        groups: vec!["bots".into()],
    };
    admin::add_machine_client(&a.state.store, "nightly-report", access, keys)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_client_with_a_secret_calls_a_server_as_itself() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let bot = machine(&a, &["demo"], &[], None).await;
    let secret = bot.secret.clone().unwrap();
    for method in [
        vec!["--secret", &secret],
        vec!["--secret", &secret, "--post"],
    ] {
        let result = call(&a, &bot.client_id, &method).await;
        assert_eq!(result["ok"], true, "{method:?}: {result}");
        let whoami = &result["whoami"];
        assert_eq!(whoami["subject"], bot.client_id.as_str());
        assert_eq!(whoami["client_id"], bot.client_id.as_str());
        assert_eq!(whoami["auth"], "client_credentials");
        assert_eq!(whoami["name"], "nightly-report");
        assert_eq!(whoami["groups"], json!(["bots"]));
        // No user signed in, so there is no provider.
        assert_eq!(whoami["provider"], Value::Null);
        assert_eq!(result["scope"], "mcp");
    }

    // The same client with a wrong secret gets nothing.
    let refused = call(&a, &bot.client_id, &["--secret", "not-the-secret"]).await;
    assert_eq!(refused["ok"], false, "{refused}");
    let (status, body) = a
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &bot.client_id),
            ("client_secret", "not-the-secret"),
        ])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_client_with_private_key_jwt_calls_a_server_and_cannot_replay() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let keys = key_pair().await;
    let set = admin::read_public_jwks(&keys.join("jwks.json")).unwrap();
    let bot = machine(&a, &["demo"], &[], Some(ClientKeys::Set(set))).await;
    assert!(
        bot.secret.is_none(),
        "a private_key_jwt client gets no secret"
    );
    let key = keys.display().to_string();

    let result = call(&a, &bot.client_id, &["--key", &key]).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["whoami"]["subject"], bot.client_id.as_str());
    assert_eq!(result["whoami"]["auth"], "client_credentials");

    // One assertion, presented twice: the second time it is refused, even though it
    // is still valid and correctly signed.
    let first = call(&a, &bot.client_id, &["--key", &key, "--jti", "once"]).await;
    assert_eq!(first["ok"], true, "{first}");
    let replayed = call(&a, &bot.client_id, &["--key", &key, "--jti", "once"]).await;
    assert_eq!(replayed["ok"], false, "{replayed}");

    // At the token endpoint: the replay, an assertion for another server, one signed
    // by a key the client never registered, and the client's keys without an assertion.
    let pem = std::fs::read(keys.join("key.pem")).unwrap();
    let sign = |claims: Value, key: &EncodingKey| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("machine-1".into());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    };
    let now = a.state.clock.now();
    let claims = |jti: &str, aud: &str| {
        json!({"iss": bot.client_id, "sub": bot.client_id, "aud": aud,
               "iat": now, "exp": now + 120, "jti": jti})
    };
    let own_key = EncodingKey::from_ec_pem(&pem).unwrap();
    let refusal = |assertion: String| {
        let a = &a;
        async move {
            a.token(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ])
            .await
        }
    };
    let (status, body) = refusal(sign(claims("fresh", &a.base), &own_key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = refusal(sign(claims("fresh", &a.base), &own_key)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("used before"),
        "{body}"
    );
    let (status, body) = refusal(sign(
        claims("other-aud", "https://elsewhere.example"),
        &own_key,
    ))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let forger = key_pair().await;
    let forged_key =
        EncodingKey::from_ec_pem(&std::fs::read(forger.join("key.pem")).unwrap()).unwrap();
    let (status, body) = refusal(sign(claims("forged", &a.base), &forged_key)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{body}"
    );
    let (status, body) = a
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &bot.client_id),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

#[tokio::test]
async fn a_machine_client_gets_only_the_servers_and_scopes_it_was_allowed() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let bot = machine(&a, &["demo", "admin"], &["mcp"], None).await;
    let secret = bot.secret.clone().unwrap();
    let token = |resource: &'static str, scope: Option<&'static str>| {
        let (a, id, secret) = (&a, bot.client_id.clone(), secret.clone());
        async move {
            let resource = a.url(resource);
            let mut form = vec![
                ("grant_type", "client_credentials"),
                ("client_id", id.as_str()),
                ("client_secret", secret.as_str()),
                ("resource", resource.as_str()),
            ];
            form.extend(scope.map(|s| ("scope", s)));
            a.token(&form).await
        }
    };
    // Two servers allowed: each token names one, and carries no refresh token.
    let (status, body) = token("/mcp", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "mcp");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let access = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(a.whoami("/mcp", &access).await.status(), StatusCode::OK);
    // A token for one server is no good at the other.
    assert_eq!(
        a.whoami("/admin-mcp", &access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // /admin-mcp offers `admin`, but the operator allowed this client only `mcp`, and
    // a token for /admin-mcp needs both: it cannot get one that works there.
    let (status, body) = token("/admin-mcp", Some("mcp admin")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    // Without a resource, the server is ambiguous.
    let (status, body) = a
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &bot.client_id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );

    // A client allowed only `demo` asks for `admin`'s server.
    let narrow = machine(&a, &["demo"], &[], None).await;
    let admin_resource = a.url("/admin-mcp");
    let (status, body) = a
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &narrow.client_id),
            ("client_secret", narrow.secret.as_deref().unwrap()),
            ("resource", &admin_resource),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );

    // Removing the client ends its tokens at once.
    assert!(
        a.state
            .store
            .remove_client(&bot.client_id, a.state.clock.now())
            .await
            .unwrap()
    );
    assert_eq!(
        a.whoami("/mcp", &access).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn only_operator_made_machine_clients_use_client_credentials() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    // A confidential client made for sign-ins is not a machine client.
    let app = admin::add_client(
        &a.state.store,
        "web app",
        &["https://app.example/callback".to_string()],
        true,
    )
    .await
    .unwrap();
    let (status, body) = a
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", app.secret.as_deref().unwrap()),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
    // Nor can anyone register one.
    let response = http()
        .post(a.own_url("/register"))
        .json(&json!({
            "client_name": "self-made bot",
            "redirect_uris": ["https://bot.example/callback"],
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");
    // And the metadata says what is supported.
    let metadata: Value = http()
        .get(a.own_url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let supports = |key: &str, value: &str| {
        metadata[key]
            .as_array()
            .is_some_and(|list| list.iter().any(|v| v == value))
    };
    assert!(supports("grant_types_supported", "client_credentials"));
    assert!(supports(
        "token_endpoint_auth_methods_supported",
        "private_key_jwt"
    ));
    assert!(supports(
        "token_endpoint_auth_signing_alg_values_supported",
        "ES256"
    ));
    assert!(!supports(
        "token_endpoint_auth_signing_alg_values_supported",
        "HS256"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_client_may_publish_its_keys_at_a_url() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let keys = key_pair().await;
    let url = serve_public_keys(&keys).await;
    let bot = machine(
        &a,
        &["demo"],
        &[],
        Some(admin::check_jwks_url(&url).unwrap()),
    )
    .await;
    let key = keys.display().to_string();
    let result = call(&a, &bot.client_id, &["--key", &key]).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["whoami"]["subject"], bot.client_id.as_str());
    // Only https, or http on loopback.
    assert!(admin::check_jwks_url("http://keys.example/jwks.json").is_err());
}

//! Each bundled provider through a full flow against its upstream: authorize URL,
//! login, code exchange, claims, refresh.

use crate::common::upstream::{self, Upstream};
use crate::common::{self, instance};
use authhost::runtime::{AuthorizeRequest, CodeExchange, ProviderInstance};
use oauth2::PkceCodeChallenge;
use serde_json::json;

async fn bundled_instance(
    file: &str,
    settings: &[(&str, &str)],
    allowed: &[String],
) -> ProviderInstance {
    let runtime = common::runtime();
    let component = common::load_bundled(&runtime, file).await;
    let mut spec = common::spec("test", settings, allowed);
    // The test upstream puts groups in tokens only for this scope (Keycloak's Group
    // Membership mapper adds them to every token).
    spec.scopes = Some(
        ["openid", "profile", "email", "groups"]
            .map(String::from)
            .to_vec(),
    );
    instance(&runtime, &component, spec)
}

/// Authorize, sign in as `user` at the upstream, redeem the code.
async fn sign_in(
    provider: &ProviderInstance,
    user: &str,
    password: &str,
) -> authhost::runtime::TokenSet {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let url = provider
        .authorize_url(AuthorizeRequest {
            state: "s1".into(),
            code_challenge: Some(challenge.as_str().into()),
            nonce: "n1".into(),
            extra: vec![],
        })
        .await
        .expect("authorize url");
    let callback = upstream::login(&url, user, password).await;
    let code = callback
        .iter()
        .find(|(k, _)| k == "code")
        .expect("code")
        .1
        .clone();
    provider
        .exchange_code(CodeExchange {
            code,
            code_verifier: Some(verifier.secret().clone()),
            nonce: "n1".into(),
        })
        .await
        .expect("code exchange")
}

fn keycloak_upstream() -> Upstream {
    Upstream::start(json!({
        "clients": [upstream::client("test-client", "test-secret", "client_secret_basic")],
        "realms": ["corp"],
        "users": [{
            "sub": "kc-alice", "username": "alice", "password": "pw", "email": "alice@corp.example",
            "email_verified": true, "name": "Alice Corp", "groups": ["/engineering/platform", "/admins"],
            "realm_roles": ["admin", "offline_access"], "client_roles": {"test-client": ["editor"], "other-app": ["viewer"]},
        }],
    }))
}

#[tokio::test]
async fn keycloak_builds_realm_endpoints_and_maps_roles_and_groups() {
    let upstream = keycloak_upstream();
    let server = upstream.origin();
    let provider = bundled_instance(
        "provider-keycloak.wasm",
        &[("server_url", &server), ("realm", "corp")],
        std::slice::from_ref(&server),
    )
    .await;
    let url = provider
        .authorize_url(AuthorizeRequest {
            state: "s".into(),
            code_challenge: None,
            nonce: "n".into(),
            extra: vec![],
        })
        .await
        .unwrap();
    assert!(
        url.starts_with(&format!(
            "{server}/realms/corp/protocol/openid-connect/auth?"
        )),
        "{url}"
    );

    let tokens = sign_in(&provider, "alice", "pw").await;
    let refresh = tokens.refresh_token.clone().expect("refresh token");
    let claims = provider.user_claims(tokens).await.unwrap();
    assert_eq!(claims.subject, "kc-alice");
    assert_eq!(
        claims.roles,
        vec!["admin", "offline_access", "test-client:editor"],
        "another client's roles stay out"
    );
    assert_eq!(
        claims.groups,
        vec!["engineering/platform", "admins"],
        "{}",
        claims.extra_json
    );
    let extra: serde_json::Value = serde_json::from_str(&claims.extra_json).unwrap();
    assert_eq!(extra["realm"], "corp");
    assert!(
        provider
            .refresh(refresh)
            .await
            .expect("refresh")
            .refresh_token
            .is_some()
    );
}

#[tokio::test]
async fn keycloak_legacy_prefix_puts_realms_under_auth() {
    let upstream = keycloak_upstream();
    let server = upstream.origin();
    let provider = bundled_instance(
        "provider-keycloak.wasm",
        &[
            ("server_url", &server),
            ("realm", "corp"),
            ("legacy_auth_prefix", "true"),
        ],
        std::slice::from_ref(&server),
    )
    .await;
    // The test upstream serves the modern layout, so discovery under /auth is not found.
    let err = provider
        .authorize_url(AuthorizeRequest {
            state: "s".into(),
            code_challenge: None,
            nonce: "n".into(),
            extra: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "{server}/auth/realms/corp/.well-known/openid-configuration"
        )),
        "{err}"
    );
}

//! The bundled generic OIDC component against a real OpenID provider (npm
//! `oidc-provider`): authorize URL, login, code exchange, claims, refresh, revoke.

use crate::common::upstream::{self, Upstream};
use crate::common::{self, instance, load_bundled};
use authhost::runtime::{CallError, CodeExchange, ProviderError, ProviderInstance, TokenKind};
use oauth2::PkceCodeChallenge;
use serde_json::json;

async fn oidc_instance(
    upstream: &Upstream,
    issuer: &str,
    settings: &[(&str, &str)],
) -> ProviderInstance {
    let mut all = vec![("issuer", issuer)];
    all.extend_from_slice(settings);
    common::bundled_instance("provider-oidc.wasm", &all, &[upstream.origin()]).await
}

#[tokio::test]
async fn full_flow_with_basic_client_auth() {
    let upstream = Upstream::start(json!({
        "clients": [upstream::client("test-client", "test-secret", "client_secret_basic")],
        "rotate_refresh_tokens": true,
    }));
    let issuer = upstream.issuer("root");
    let provider = oidc_instance(&upstream, &issuer, &[]).await;

    let tokens = upstream::sign_in(&provider, &issuer, "alice", "alice-password").await;
    assert_eq!(tokens.token_type, "Bearer");
    assert!(tokens.expires_in.is_some());
    assert!(tokens.id_token.is_some());
    let first_refresh = tokens.refresh_token.clone().expect("a refresh token");

    let claims = provider.user_claims(tokens).await.expect("claims");
    assert_eq!(claims.subject, "alice-sub");
    assert_eq!(claims.username.as_deref(), Some("alice"));
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    assert!(claims.email_verified);
    assert_eq!(claims.name.as_deref(), Some("Alice Example"));
    assert_eq!(claims.groups, vec!["engineering", "admins"]);

    let refreshed = provider
        .refresh(first_refresh.clone())
        .await
        .expect("refresh");
    let second_refresh = refreshed
        .refresh_token
        .clone()
        .expect("a rotated refresh token");
    assert_ne!(second_refresh, first_refresh);
    let claims = provider
        .user_claims(refreshed)
        .await
        .expect("claims after refresh");
    assert_eq!(claims.subject, "alice-sub");

    // The rotated-out token is dead: the upstream says invalid_grant.
    let err = provider.refresh(first_refresh).await.unwrap_err();
    assert!(
        matches!(err.provider_error(), Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );

    provider
        .revoke(second_refresh.clone(), TokenKind::RefreshToken)
        .await
        .expect("revoke");
    assert!(provider.refresh(second_refresh).await.is_err());
}

#[tokio::test]
async fn client_secret_post_and_unverified_email() {
    let upstream = Upstream::start(json!({
        "clients": [upstream::client("test-client", "test-secret", "client_secret_post")],
    }));
    let issuer = upstream.issuer("root");
    let provider = oidc_instance(
        &upstream,
        &issuer,
        &[("token_auth_method", "client_secret_post")],
    )
    .await;
    let tokens = upstream::sign_in(&provider, &issuer, "bob", "bob-password").await;
    let claims = provider.user_claims(tokens).await.unwrap();
    assert_eq!(claims.subject, "bob-sub");
    assert!(!claims.email_verified);
    assert_eq!(claims.groups, vec!["sales"]);
}

#[tokio::test]
async fn keycloak_shaped_realm_roles_map_to_roles() {
    let upstream = Upstream::start(json!({
        "clients": [upstream::client("test-client", "test-secret", "client_secret_basic")],
        "realms": ["corp"],
    }));
    let issuer = upstream.issuer("corp");
    assert!(issuer.ends_with("/realms/corp"));
    let provider =
        oidc_instance(&upstream, &issuer, &[("roles_claim", "realm_access.roles")]).await;
    let tokens = upstream::sign_in(&provider, &issuer, "alice", "alice-password").await;
    let claims = provider.user_claims(tokens).await.unwrap();
    assert_eq!(claims.roles, vec!["admin"]);
}

#[tokio::test]
async fn a_wrong_verifier_and_a_wrong_secret_are_refused_by_the_upstream() {
    let upstream = Upstream::start(json!({
        "clients": [upstream::client("test-client", "test-secret", "client_secret_basic")],
    }));
    let issuer = upstream.issuer("root");
    let provider = oidc_instance(&upstream, &issuer, &[]).await;
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let url = provider
        .authorize_url(common::authorize_request(Some(challenge.as_str())))
        .await
        .unwrap();
    let callback = upstream::login(&url, "alice", "alice-password").await;
    let code = callback
        .iter()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .clone();
    let (_, wrong_verifier) = PkceCodeChallenge::new_random_sha256();
    let err = provider
        .exchange_code(CodeExchange {
            code,
            code_verifier: Some(wrong_verifier.secret().clone()),
            nonce: "n".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.provider_error(), Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );

    // A misconfigured secret is the operator's problem, and the error says so.
    let runtime = common::runtime();
    let component = load_bundled(&runtime, "provider-oidc.wasm").await;
    let mut spec = common::spec("test", &[("issuer", &issuer)], &[upstream.origin()]);
    spec.client_secret = Some(authhost::secret::Secret::new("wrong-secret"));
    let wrong = instance(&runtime, &component, spec);
    let err = wrong.refresh("whatever".into()).await.unwrap_err();
    assert!(
        matches!(err.provider_error(), Some(ProviderError::InvalidConfig(m)) if m.contains("invalid_client")),
        "{err:?}"
    );
    assert!(
        !format!("{err:?}").contains("wrong-secret"),
        "the secret must not leak into errors"
    );
}

#[tokio::test]
async fn an_issuer_off_the_allowlist_is_a_config_error() {
    let upstream = Upstream::start(json!({}));
    let runtime = common::runtime();
    let component = load_bundled(&runtime, "provider-oidc.wasm").await;
    let spec = common::spec(
        "test",
        &[("issuer", &upstream.issuer("root"))],
        &["https://elsewhere.example".into()],
    );
    let err = instance(&runtime, &component, spec)
        .authorize_url(common::authorize_request(None))
        .await
        .unwrap_err();
    match &err {
        CallError::Provider {
            error: ProviderError::InvalidConfig(m),
            ..
        } => {
            assert!(m.contains("not in allowed_hosts"), "{m}")
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

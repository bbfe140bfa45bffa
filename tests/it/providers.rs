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

mod github {
    use super::*;
    use crate::common::simulators::github::{AppKind, CLIENT_ID, CLIENT_SECRET, GitHubSim};
    use authhost::runtime::{ProviderError, TokenKind};

    async fn provider(sim: &GitHubSim) -> ProviderInstance {
        let runtime = common::runtime();
        let component = common::load_bundled(&runtime, "provider-github.wasm").await;
        let api = sim.api_url();
        let mut spec = common::spec(
            "github",
            &[
                ("base_url", &sim.origin),
                ("api_url", &api),
                ("orgs", "acme,pending-org,nowhere"),
                ("teams", "true"),
            ],
            std::slice::from_ref(&sim.origin),
        );
        spec.client_id = CLIENT_ID.into();
        spec.client_secret = Some(authhost::secret::Secret::new(CLIENT_SECRET));
        instance(&runtime, &component, spec)
    }

    /// The simulator signs octocat in at once: follow its redirect, redeem the code.
    async fn sign_in(provider: &ProviderInstance) -> authhost::runtime::TokenSet {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let url = provider
            .authorize_url(AuthorizeRequest {
                state: "st".into(),
                code_challenge: Some(challenge.as_str().into()),
                nonce: "n".into(),
                extra: vec![],
            })
            .await
            .unwrap();
        assert!(
            url.contains("/login/oauth/authorize?")
                && url.contains("scope=read%3Auser+user%3Aemail"),
            "{url}"
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = http.get(&url).send().await.unwrap();
        let back = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        let code = back
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        provider
            .exchange_code(CodeExchange {
                code,
                code_verifier: Some(verifier.secret().clone()),
                nonce: "n".into(),
            })
            .await
            .expect("exchange")
    }

    #[tokio::test]
    async fn oauth_app_tokens_without_expiry_and_the_verified_primary_email() {
        let sim = GitHubSim::start(AppKind::OAuthApp).await;
        let provider = provider(&sim).await;
        let tokens = sign_in(&provider).await;
        assert!(tokens.access_token.starts_with("gho_"));
        assert_eq!(tokens.expires_in, None, "OAuth-App tokens do not expire");
        assert_eq!(tokens.refresh_token, None);
        let claims = provider.user_claims(tokens.clone()).await.unwrap();
        assert_eq!(claims.subject, "583231");
        assert_eq!(claims.username.as_deref(), Some("octocat"));
        assert_eq!(
            claims.email.as_deref(),
            Some("octocat@github.example"),
            "from /user/emails, primary and verified"
        );
        assert!(claims.email_verified);
        assert_eq!(
            claims.groups,
            vec!["acme", "acme/platform"],
            "active memberships only, teams of listed orgs only"
        );
        assert_eq!(claims.roles, vec!["acme:admin"]);

        // Revocation deletes the grant, authenticated by the host's Basic credentials.
        provider
            .revoke(tokens.access_token.clone(), TokenKind::AccessToken)
            .await
            .unwrap();
        assert!(!sim.is_live(&tokens.access_token));
        let err = provider.user_claims(tokens).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidGrant(_))),
            "{err}"
        );
    }

    #[tokio::test]
    async fn github_app_tokens_expire_and_rotate_their_refresh_token() {
        let sim = GitHubSim::start(AppKind::GitHubApp).await;
        let provider = provider(&sim).await;
        let tokens = sign_in(&provider).await;
        assert_eq!(tokens.expires_in, Some(28800), "string expiry parsed");
        let first = tokens.refresh_token.clone().expect("ghr_ token");
        let refreshed = provider.refresh(first.clone()).await.unwrap();
        let second = refreshed.refresh_token.clone().unwrap();
        assert_ne!(first, second);
        let err = provider.refresh(first).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::UpstreamError(m)) if m.contains("bad_refresh_token")),
            "{err}"
        );
        assert_eq!(
            provider.user_claims(refreshed).await.unwrap().subject,
            "583231"
        );
    }

    #[tokio::test]
    async fn a_bad_code_reported_with_status_200_is_still_an_error() {
        let sim = GitHubSim::start(AppKind::OAuthApp).await;
        let provider = provider(&sim).await;
        let err = provider
            .exchange_code(CodeExchange {
                code: "forged".into(),
                code_verifier: None,
                nonce: "n".into(),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidGrant(m)) if m.contains("bad_verification_code")),
            "{err}"
        );
    }
}

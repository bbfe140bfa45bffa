//! Each bundled provider through a full flow against its upstream: authorize URL,
//! login, code exchange, claims, refresh.

use crate::common::upstream::{self, Upstream};
use crate::common::{self, instance};
use authhost::runtime::{AuthorizeRequest, CodeExchange, ProviderInstance, TokenSet};
use oauth2::PkceCodeChallenge;
use serde_json::json;

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
    let provider = common::bundled_instance(
        "provider-keycloak.wasm",
        &[("server_url", &server), ("realm", "corp")],
        std::slice::from_ref(&server),
    )
    .await;
    let url = provider
        .authorize_url(common::authorize_request(None))
        .await
        .unwrap();
    assert!(
        url.starts_with(&format!(
            "{server}/realms/corp/protocol/openid-connect/auth?"
        )),
        "{url}"
    );

    let tokens =
        upstream::sign_in(&provider, &format!("{server}/realms/corp"), "alice", "pw").await;
    let refresh = tokens.refresh_token.clone().expect("refresh token");
    // The realm's introspection endpoint says whose token it is.
    assert!(provider.can_check_audience().await.unwrap());
    let ours = tokens.access_token.clone();
    assert!(provider.issued_to_client(ours).await.unwrap());
    assert!(!provider.issued_to_client("forged".into()).await.unwrap());
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
    let provider = common::bundled_instance(
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
        .authorize_url(common::authorize_request(None))
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

    #[tokio::test]
    async fn oauth_app_tokens_without_expiry_and_the_verified_primary_email() {
        let sim = GitHubSim::start(AppKind::OAuthApp).await;
        let provider = provider(&sim).await;
        let request = common::authorize_request(None);
        let url = provider.authorize_url(request).await.unwrap();
        assert!(
            url.starts_with(&format!("{}/login/oauth/authorize?", sim.origin)),
            "{url}"
        );
        assert_eq!(query_of(&url)["scope"], "read:user user:email");
        let tokens = sim_sign_in(&provider, None).await.expect("exchange");
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
        let tokens = sim_sign_in(&provider, None).await.expect("exchange");
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
    async fn only_tokens_issued_to_the_app_pass_the_audience_check() {
        let sim = GitHubSim::start(AppKind::OAuthApp).await;
        let provider = provider(&sim).await;
        assert!(provider.can_check_audience().await.unwrap());
        let tokens = sim_sign_in(&provider, None).await.expect("exchange");
        assert!(
            provider
                .issued_to_client(tokens.access_token)
                .await
                .unwrap()
        );
        // A personal access token of the same user: GitHub's API takes it as the user.
        let pat = sim.personal_access_token();
        let claims = provider.user_claims(TokenSet::bearer(&pat)).await.unwrap();
        assert_eq!(claims.username.as_deref(), Some("octocat"));
        assert!(!provider.issued_to_client(pat).await.unwrap());
        assert!(!provider.issued_to_client("gho_dead".into()).await.unwrap());
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

/// Follow an authorize URL to the simulator's redirect; the callback's query.
async fn follow_authorize(url: &str) -> std::collections::HashMap<String, String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = http.get(url).send().await.unwrap();
    let location = response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no redirect from {url}: {}", response.status()));
    let back = url::Url::parse(location.to_str().unwrap()).unwrap();
    back.query_pairs().into_owned().collect()
}

/// An authorize URL's query.
fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Authorize (with PKCE and optional login hint), follow, redeem.
async fn sim_sign_in(
    provider: &ProviderInstance,
    login_hint: Option<&str>,
) -> Result<authhost::runtime::TokenSet, authhost::runtime::CallError> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let url = provider
        .authorize_url(AuthorizeRequest {
            state: "st".into(),
            code_challenge: Some(challenge.as_str().into()),
            nonce: "n".into(),
            extra: login_hint
                .map(|h| vec![("login_hint".to_string(), h.to_string())])
                .unwrap_or_default(),
        })
        .await
        .expect("authorize url");
    let back = follow_authorize(&url).await;
    assert_eq!(
        back.get("state").map(String::as_str),
        Some("st"),
        "{back:?}"
    );
    provider
        .exchange_code(CodeExchange {
            code: back["code"].clone(),
            code_verifier: Some(verifier.secret().clone()),
            nonce: "n".into(),
        })
        .await
}

fn extras(claims: &authhost::runtime::Claims) -> serde_json::Value {
    serde_json::from_str(&claims.extra_json).unwrap()
}

mod mattermost {
    use super::*;
    use crate::common::simulators::mattermost::{CLIENT_ID, CLIENT_SECRET, MattermostSim, USER_ID};
    use authhost::runtime::{ProviderError, TokenKind};

    async fn provider(sim: &MattermostSim, secret: Option<&str>, public: bool) -> ProviderInstance {
        let runtime = common::runtime();
        let component = common::load_bundled(&runtime, "provider-mattermost.wasm").await;
        let mut spec = common::spec(
            "test",
            &[
                ("server_url", &sim.origin),
                ("public_client", if public { "true" } else { "false" }),
                ("fallback_expiry_seconds", "900"),
            ],
            std::slice::from_ref(&sim.origin),
        );
        spec.client_id = CLIENT_ID.into();
        spec.client_secret = secret.map(authhost::secret::Secret::new);
        instance(&runtime, &component, spec)
    }

    #[tokio::test]
    async fn confidential_app_signs_in_maps_the_user_and_refreshes() {
        let sim = MattermostSim::start(false).await;
        let provider = provider(&sim, Some(CLIENT_SECRET), false).await;
        let url = provider
            .authorize_url(common::authorize_request(Some("ch")))
            .await
            .unwrap();
        assert!(
            url.starts_with(&format!("{}/oauth/authorize?", sim.origin)),
            "{url}"
        );
        let q = query_of(&url);
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], CLIENT_ID);
        assert_eq!(q["redirect_uri"], "http://127.0.0.1/oauth/callback/test");
        assert_eq!(q["state"], "s");
        assert_eq!(q["code_challenge"], "ch");
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(!q.contains_key("scope"), "Mattermost has no scopes: {url}");

        let tokens = sim_sign_in(&provider, None).await.expect("exchange");
        assert_eq!(
            tokens.expires_in,
            Some(2_592_000),
            "a positive expiry passes through"
        );
        let (form, authorization) = sim.last_token_request();
        assert_eq!(form["client_id"], CLIENT_ID);
        assert_eq!(form["client_secret"], CLIENT_SECRET);
        assert!(form.contains_key("code_verifier"));
        assert_eq!(authorization, None, "never Basic");

        let claims = provider.user_claims(tokens.clone()).await.unwrap();
        assert_eq!(claims.subject, USER_ID);
        assert_eq!(claims.username.as_deref(), Some("alice"));
        assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
        assert!(claims.email_verified);
        assert_eq!(claims.name.as_deref(), Some("Alice Liddell"));
        assert_eq!(claims.roles, vec!["system_user", "system_admin"]);
        assert!(claims.groups.is_empty());
        assert_eq!(
            extras(&claims),
            json!({"nickname": "Al", "auth_service": ""})
        );

        // A refresh starts a new session: new tokens, the old ones dead.
        let old_refresh = tokens.refresh_token.clone().expect("refresh token");
        let refreshed = provider.refresh(old_refresh.clone()).await.unwrap();
        assert_ne!(refreshed.access_token, tokens.access_token);
        assert_ne!(
            refreshed.refresh_token.as_deref(),
            Some(old_refresh.as_str())
        );
        assert!(refreshed.refresh_token.is_some());
        assert!(!sim.is_live(&tokens.access_token));
        let err = provider.refresh(old_refresh).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidGrant(m)) if m.contains("refresh_token.app_error")),
            "{err}"
        );
        assert_eq!(
            provider.user_claims(refreshed).await.unwrap().subject,
            USER_ID
        );

        let err = provider
            .revoke(tokens.access_token, TokenKind::AccessToken)
            .await
            .unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::Unsupported)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_reused_grant_without_a_usable_expiry_gets_the_fallback() {
        let sim = MattermostSim::start(false).await;
        let provider = provider(&sim, Some(CLIENT_SECRET), false).await;
        let first = sim_sign_in(&provider, None).await.unwrap();
        assert_eq!(first.expires_in, Some(2_592_000));
        for reuse in [Some(-1_700_000_000), Some(0), None] {
            sim.set_reuse_expires_in(reuse);
            let again = sim_sign_in(&provider, None).await.unwrap();
            assert_eq!(
                again.access_token, first.access_token,
                "same token for a live grant"
            );
            assert_eq!(again.refresh_token, first.refresh_token);
            assert_eq!(
                again.expires_in,
                Some(900),
                "fallback for expires_in {reuse:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_public_client_sends_no_secret_and_client_id_in_the_form() {
        let sim = MattermostSim::start(true).await;
        let provider = provider(&sim, None, true).await;
        let tokens = sim_sign_in(&provider, None).await.expect("exchange");
        let (form, authorization) = sim.last_token_request();
        assert_eq!(form["client_id"], CLIENT_ID);
        assert!(!form.contains_key("client_secret"), "{form:?}");
        assert!(form.contains_key("code_verifier"));
        assert_eq!(authorization, None);
        assert_eq!(provider.user_claims(tokens).await.unwrap().subject, USER_ID);
    }

    #[tokio::test]
    async fn mattermost_error_objects_and_a_missing_secret_are_mapped() {
        let sim = MattermostSim::start(false).await;
        let provider = provider(&sim, Some(CLIENT_SECRET), false).await;
        let err = provider
            .exchange_code(CodeExchange {
                code: "forged".into(),
                code_verifier: None,
                nonce: "n".into(),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidGrant(m)) if m.contains("expired_code.app_error") && m.contains("HTTP 400")),
            "{err}"
        );
        // Confidential app configured without its secret: refused before any request.
        let provider = super::mattermost::provider(&sim, None, false).await;
        let err = provider
            .exchange_code(CodeExchange {
                code: "any".into(),
                code_verifier: None,
                nonce: "n".into(),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidConfig(m)) if m.contains("client secret")),
            "{err}"
        );
    }
}

mod atlassian {
    use super::*;
    use crate::common::simulators::atlassian::{
        ACCOUNT_ID, AtlassianSim, CLIENT_ID, CLIENT_SECRET, SITE_IDS,
    };
    use authhost::runtime::{ProviderError, TokenKind};

    async fn provider(sim: &AtlassianSim, scopes: Option<&[&str]>) -> ProviderInstance {
        let runtime = common::runtime();
        let component = common::load_bundled(&runtime, "provider-atlassian.wasm").await;
        let (auth, api) = (sim.auth_url(), sim.api_url());
        let mut spec = common::spec(
            "test",
            &[("auth_url", &auth), ("api_url", &api)],
            std::slice::from_ref(&sim.origin),
        );
        spec.client_id = CLIENT_ID.into();
        spec.client_secret = Some(authhost::secret::Secret::new(CLIENT_SECRET));
        spec.scopes = scopes.map(|s| s.iter().map(|s| s.to_string()).collect());
        instance(&runtime, &component, spec)
    }

    #[tokio::test]
    async fn three_legged_flow_maps_the_user_and_the_sites() {
        let sim = AtlassianSim::start().await;
        let provider = provider(&sim, None).await;
        let url = provider
            .authorize_url(common::authorize_request(Some("ch")))
            .await
            .unwrap();
        assert!(
            url.starts_with(&format!("{}/authorize?", sim.auth_url())),
            "{url}"
        );
        let q = query_of(&url);
        assert_eq!(q["audience"], "api.atlassian.com");
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["scope"], "read:me read:jira-work offline_access");
        assert_eq!(q["client_id"], CLIENT_ID);
        assert_eq!(q["response_type"], "code");
        assert!(!q.contains_key("code_challenge"), "no PKCE for 3LO: {url}");

        let tokens = sim_sign_in(&provider, None).await.expect("exchange");
        assert_eq!(tokens.expires_in, Some(3600));
        assert!(tokens.refresh_token.is_some(), "offline_access granted");
        let (form, authorization) = sim.last_token_request();
        assert_eq!(form["client_id"], CLIENT_ID);
        assert_eq!(form["client_secret"], CLIENT_SECRET);
        assert_eq!(authorization, None, "credentials in the body, no Basic");

        let claims = provider.user_claims(tokens.clone()).await.unwrap();
        assert_eq!(claims.subject, ACCOUNT_ID);
        assert_eq!(claims.username.as_deref(), Some("alice"));
        assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
        assert!(claims.email_verified);
        assert_eq!(claims.name.as_deref(), Some("Alice Liddell"));
        assert!(claims.groups.is_empty() && claims.roles.is_empty());
        assert_eq!(
            extras(&claims),
            json!({
                "cloud_ids": SITE_IDS,
                "sites": [
                    {"id": SITE_IDS[0], "name": "acme", "url": "https://acme.atlassian.net"},
                    {"id": SITE_IDS[1], "name": "acme-sandbox", "url": "https://acme-sandbox.atlassian.net"},
                ],
            }),
            "only the two keys; scopes and avatarUrl dropped"
        );

        let err = provider
            .revoke(tokens.access_token, TokenKind::AccessToken)
            .await
            .unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::Unsupported)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn refresh_tokens_rotate_and_a_rotated_out_one_fails() {
        let sim = AtlassianSim::start().await;
        let provider = provider(&sim, None).await;
        let tokens = sim_sign_in(&provider, None).await.unwrap();
        let rt1 = tokens.refresh_token.clone().unwrap();
        let second = provider.refresh(rt1.clone()).await.expect("first refresh");
        let rt2 = second.refresh_token.clone().expect("a new refresh token");
        assert_ne!(rt1, rt2);
        assert_ne!(second.access_token, tokens.access_token);
        let third = provider.refresh(rt2.clone()).await.expect("second refresh");
        let rt3 = third.refresh_token.clone().expect("another refresh token");
        assert_ne!(rt2, rt3);
        assert_eq!(
            provider.user_claims(third).await.unwrap().subject,
            ACCOUNT_ID
        );

        let err = provider.refresh(rt1).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidGrant(m)) if m.contains("invalid refresh token")),
            "{err}"
        );
        // Reuse kills the family: the newest token is dead too.
        let err = provider.refresh(rt3).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidGrant(_))),
            "{err}"
        );
    }

    #[tokio::test]
    async fn me_without_read_me_is_a_clear_config_error() {
        let sim = AtlassianSim::start().await;
        let provider = provider(&sim, Some(&["read:jira-work", "offline_access"])).await;
        let tokens = sim_sign_in(&provider, None).await.unwrap();
        let err = provider.user_claims(tokens).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidConfig(m))
                if m.contains("HTTP 403") && m.contains("read:me") && m.contains("/me")),
            "{err}"
        );
    }
}

mod salesforce {
    use super::*;
    use crate::common::simulators::salesforce::{
        CLIENT_ID, CLIENT_SECRET, INSTANCE_URL, ORG_1, SalesforceSim,
    };
    use authhost::runtime::{ProviderError, TokenKind};

    async fn provider(login_url: &str, orgs: Option<&str>) -> ProviderInstance {
        let runtime = common::runtime();
        let component = common::load_bundled(&runtime, "provider-salesforce.wasm").await;
        let mut settings = vec![("login_url", login_url)];
        if let Some(orgs) = orgs {
            settings.push(("organization_ids", orgs));
        }
        let allowed = login_url.to_string();
        let mut spec = common::spec("test", &settings, std::slice::from_ref(&allowed));
        spec.client_id = CLIENT_ID.into();
        spec.client_secret = Some(authhost::secret::Secret::new(CLIENT_SECRET));
        instance(&runtime, &component, spec)
    }

    fn extra<'a>(tokens: &'a authhost::runtime::TokenSet, key: &str) -> Option<&'a str> {
        tokens
            .extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn web_server_flow_keeps_instance_url_and_leaves_expiry_unknown() {
        let sim = SalesforceSim::start().await;
        let provider = provider(&sim.origin, None).await;
        let url = provider
            .authorize_url(common::authorize_request(Some("ch")))
            .await
            .unwrap();
        assert!(
            url.starts_with(&format!("{}/services/oauth2/authorize?", sim.origin)),
            "{url}"
        );
        let q = query_of(&url);
        assert_eq!(q["scope"], "openid api refresh_token");
        assert_eq!(q["code_challenge"], "ch");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["client_id"], CLIENT_ID);
        assert!(!q.contains_key("nonce"), "{url}");

        let tokens = sim_sign_in(&provider, None).await.expect("exchange");
        let form = sim.last_token_form();
        assert_eq!(form["client_id"], CLIENT_ID);
        assert_eq!(form["client_secret"], CLIENT_SECRET);
        assert!(
            form["code"].ends_with("=="),
            "the code's '=' survived: {form:?}"
        );
        assert_eq!(tokens.expires_in, None, "Salesforce sends no expires_in");
        assert_eq!(extra(&tokens, "instance_url"), Some(INSTANCE_URL));
        assert_eq!(extra(&tokens, "issued_at"), Some("1732000000000"));
        assert!(extra(&tokens, "signature").is_some());
        assert!(extra(&tokens, "id").is_some_and(|id| id.ends_with("/005000000000001AAA")));

        let claims = provider.user_claims(tokens.clone()).await.unwrap();
        assert_eq!(claims.subject, "005000000000001AAA");
        assert_eq!(claims.username.as_deref(), Some("alice@acme.example"));
        assert_eq!(claims.email.as_deref(), Some("alice@acme.example"));
        assert!(claims.email_verified);
        assert_eq!(claims.name.as_deref(), Some("Alice Liddell"));
        assert!(claims.groups.is_empty() && claims.roles.is_empty());
        assert_eq!(
            extras(&claims),
            json!({"organization_id": ORG_1, "instance_url": INSTANCE_URL})
        );

        // Refresh: a new access token, no refresh token in the answer.
        let refresh = tokens.refresh_token.clone().expect("refresh token");
        let refreshed = provider.refresh(refresh.clone()).await.unwrap();
        assert_ne!(refreshed.access_token, tokens.access_token);
        assert_eq!(refreshed.refresh_token, None);
        assert_eq!(refreshed.expires_in, None);
        assert_eq!(extra(&refreshed, "instance_url"), Some(INSTANCE_URL));

        // Revoking the refresh token takes its access tokens with it; again is fine.
        provider
            .revoke(refresh.clone(), TokenKind::RefreshToken)
            .await
            .unwrap();
        assert!(!sim.is_live(&tokens.access_token) && !sim.is_live(&refreshed.access_token));
        provider
            .revoke(refresh, TokenKind::RefreshToken)
            .await
            .expect("400 invalid_token counts as revoked");
        let err = provider.user_claims(refreshed).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidGrant(_))),
            "{err}"
        );
    }

    #[tokio::test]
    async fn organization_ids_admit_only_listed_orgs() {
        let sim = SalesforceSim::start().await;
        // The 15-character form Setup shows.
        let provider = provider(&sim.origin, Some("00D000000000001")).await;
        let alice = sim_sign_in(&provider, None).await.unwrap();
        assert_eq!(
            provider.user_claims(alice).await.unwrap().subject,
            "005000000000001AAA"
        );
        let bob = sim_sign_in(&provider, Some("bob@other.example"))
            .await
            .unwrap();
        let err = provider.user_claims(bob).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::AccessDenied(m)) if m.contains("00D000000000002AAA")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_sandbox_or_my_domain_is_just_another_login_url() {
        let production = SalesforceSim::start().await;
        let sandbox = SalesforceSim::start().await;
        let provider = provider(&sandbox.origin, None).await;
        let tokens = sim_sign_in(&provider, None).await.expect("exchange");
        let claims = provider.user_claims(tokens).await.unwrap();
        assert_eq!(claims.subject, "005000000000001AAA");
        assert_eq!(
            production.requests(),
            0,
            "nothing goes to the other login host"
        );
        assert!(sandbox.requests() >= 3);
    }
}

mod google {
    use super::*;
    use crate::common::simulators::google::{CLIENT_ID, CLIENT_SECRET, GoogleSim, IssuerForm};
    use authhost::runtime::{ProviderError, TokenKind};

    const ALICE: &str = "110169484474386276334";

    async fn provider(sim: &GoogleSim, hosted_domain: Option<&str>) -> ProviderInstance {
        let runtime = common::runtime();
        let component = common::load_bundled(&runtime, "provider-google.wasm").await;
        let mut settings = vec![("issuer", sim.origin.as_str())];
        if let Some(hd) = hosted_domain {
            settings.push(("hosted_domain", hd));
        }
        let mut spec = common::spec("test", &settings, std::slice::from_ref(&sim.origin));
        spec.client_id = CLIENT_ID.into();
        spec.client_secret = Some(authhost::secret::Secret::new(CLIENT_SECRET));
        instance(&runtime, &component, spec)
    }

    #[tokio::test]
    async fn oidc_flow_with_offline_access_refresh_userinfo_and_revoke() {
        let sim = GoogleSim::start().await;
        let provider = provider(&sim, Some("example.com")).await;
        let url = provider
            .authorize_url(common::authorize_request(Some("ch")))
            .await
            .unwrap();
        assert!(
            url.starts_with(&format!("{}/o/oauth2/v2/auth?", sim.origin)),
            "{url}"
        );
        let q = query_of(&url);
        assert_eq!(q["access_type"], "offline");
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["hd"], "example.com");
        assert_eq!(q["nonce"], "n");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "openid email profile");

        let tokens = sim_sign_in(&provider, None).await.expect("exchange");
        assert!(tokens.id_token.is_some());
        assert_eq!(tokens.expires_in, Some(3599));
        let refresh = tokens.refresh_token.clone().expect("offline + consent");
        let claims = provider.user_claims(tokens.clone()).await.unwrap();
        assert_eq!(claims.subject, ALICE);
        assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
        assert!(claims.email_verified);
        assert_eq!(claims.name.as_deref(), Some("Alice Liddell"));
        assert_eq!(
            claims.username.as_deref(),
            Some("alice@example.com"),
            "the address stands in for a username"
        );
        let extra = extras(&claims);
        assert_eq!(extra["hd"], "example.com", "{extra}");
        assert!(
            extra.get("nonce").is_none() && extra.get("iss").is_none(),
            "{extra}"
        );

        // Refresh: no refresh token and, here, no ID token: claims come from userinfo.
        let refreshed = provider.refresh(refresh.clone()).await.unwrap();
        assert_ne!(refreshed.access_token, tokens.access_token);
        assert_eq!(refreshed.refresh_token, None);
        assert_eq!(refreshed.id_token, None);
        let via_userinfo = provider.user_claims(refreshed.clone()).await.unwrap();
        assert_eq!(via_userinfo.subject, ALICE);
        assert_eq!(via_userinfo.email.as_deref(), Some("alice@example.com"));

        // Revoking either token ends the grant; a second revocation (400) is fine.
        provider
            .revoke(refreshed.access_token.clone(), TokenKind::AccessToken)
            .await
            .unwrap();
        assert!(!sim.is_live(&refreshed.access_token) && !sim.is_live(&tokens.access_token));
        provider
            .revoke(refreshed.access_token.clone(), TokenKind::AccessToken)
            .await
            .expect("400 invalid_token counts as revoked");
        let err = provider.refresh(refresh).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidGrant(_))),
            "{err}"
        );
    }

    #[tokio::test]
    async fn token_info_tells_this_clients_tokens_from_another_apps() {
        let sim = GoogleSim::start().await;
        let provider = provider(&sim, None).await;
        assert!(provider.can_check_audience().await.unwrap());
        let tokens = sim_sign_in(&provider, None).await.expect("exchange");
        assert!(
            provider
                .issued_to_client(tokens.access_token)
                .await
                .unwrap()
        );
        let other = sim.token_of_another_app("alice");
        let claims = provider
            .user_claims(TokenSet::bearer(&other))
            .await
            .unwrap();
        assert_eq!(claims.subject, ALICE, "userinfo takes another app's token");
        assert!(!provider.issued_to_client(other).await.unwrap());
        assert!(!provider.issued_to_client("ya29.dead".into()).await.unwrap());
    }

    #[tokio::test]
    async fn hosted_domain_is_enforced_on_the_id_token_hd() {
        let sim = GoogleSim::start().await;
        let provider = provider(&sim, Some("example.com")).await;
        // dave is in the domain (unverified address, still admitted).
        let dave = sim_sign_in(&provider, Some("dave@example.com"))
            .await
            .unwrap();
        let claims = provider.user_claims(dave).await.unwrap();
        assert_eq!(claims.email.as_deref(), Some("dave@example.com"));
        assert!(!claims.email_verified);
        // The hd=example.com hint was sent, yet another domain's and a personal account
        // signed in: the ID token's hd decides.
        for hint in ["bob@other.example", "carol@gmail.com"] {
            let tokens = sim_sign_in(&provider, Some(hint)).await.expect("exchange");
            let err = provider.user_claims(tokens).await.unwrap_err();
            assert!(
                matches!(err.provider_error(), Some(ProviderError::AccessDenied(m)) if m.contains("example.com")),
                "{hint}: {err}"
            );
        }
        // "*": any Workspace domain, no personal accounts.
        let any = super::google::provider(&sim, Some("*")).await;
        let bob = sim_sign_in(&any, Some("bob@other.example")).await.unwrap();
        assert!(any.user_claims(bob).await.is_ok());
        let carol = sim_sign_in(&any, Some("carol@gmail.com")).await.unwrap();
        let err = any.user_claims(carol).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::AccessDenied(_))),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_issuer_without_scheme_is_accepted_and_a_foreign_one_refused() {
        let sim = GoogleSim::start().await;
        let provider = provider(&sim, None).await;
        sim.set_issuer_form(IssuerForm::Bare);
        let tokens = sim_sign_in(&provider, None)
            .await
            .expect("bare issuer accepted");
        assert_eq!(provider.user_claims(tokens).await.unwrap().subject, ALICE);
        sim.set_issuer_form(IssuerForm::Foreign);
        let err = sim_sign_in(&provider, None).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::InvalidGrant(m)) if m.contains("accounts.evil.example")),
            "{err}"
        );
    }
}

//! Refresh tokens and grants over time: a refused refresh spends nothing, a narrower
//! scope is honoured, the user's claims and access follow the upstream (groups changed,
//! session revoked, account disabled), and no grant outlives `max_session_age`.
//! Against the real OpenID provider, whose administrator actions the tests perform.

use crate::common::server::{Browser, Options, TestAuthhost, http, mcp_server, start_upstream};
use crate::common::upstream::Upstream;
use authhost::config::PolicyConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn claims_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn refresh_with(
    a: &TestAuthhost,
    client: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client),
        ("refresh_token", token),
    ];
    form.extend_from_slice(extra);
    a.token(&form).await
}

/// Each refused refresh (wrong resource, a scope never granted, another client) leaves
/// the token unspent: the corrected retry works and is not mistaken for reuse.
#[tokio::test]
async fn a_refused_refresh_does_not_spend_the_token() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Careful client").await;
    let other = a.register("Other client").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let rt = tokens["refresh_token"].as_str().unwrap();

    let wrong_resource = a.url("/admin-mcp");
    let wrong_resource = [("resource", wrong_resource.as_str())];
    let wider_scope = [("scope", "mcp admin")];
    let refusals = [
        (&client, &wrong_resource[..], "invalid_target"),
        (&client, &wider_scope[..], "invalid_scope"),
        (&other, &[][..], "invalid_grant"),
    ];
    for (who, extra, error) in refusals {
        let (status, body) = refresh_with(&a, who, rt, extra).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(error)),
            "{body}"
        );
    }
    let (status, body) = a.refresh(&client, rt).await;
    assert_eq!(status, StatusCode::OK, "the token was not spent: {body}");
    assert_eq!(
        a.whoami("/mcp", body["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // Reuse is still reuse.
    let (status, body) = a.refresh(&client, rt).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

/// RFC 6749 6: a narrower scope on refresh is the new access token's scope; the grant
/// keeps its own, so a later refresh may ask for all of it again.
#[tokio::test]
async fn a_narrower_scope_on_refresh_is_honoured() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Narrowing client").await;
    let tokens = a
        .sign_in_as(&Browser::new(), &client, "/admin-mcp", "alice")
        .await;
    assert_eq!(tokens["scope"], "mcp admin");
    let (status, narrow) = refresh_with(
        &a,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
        &[("scope", "mcp")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{narrow}");
    assert_eq!(narrow["scope"], "mcp");
    let access = narrow["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["scope"], "mcp");
    assert_eq!(
        a.whoami("/admin-mcp", access).await.status(),
        StatusCode::FORBIDDEN,
        "the narrowed token lacks `admin`"
    );
    let (status, full) = a
        .refresh(&client, narrow["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(full["scope"], "mcp admin");
}

async fn administer(upstream: &Upstream, user: &str, action: &str, body: Option<Value>) {
    let mut request = http().post(format!(
        "{}/__test/users/{user}/{action}",
        upstream.issuer("root")
    ));
    if let Some(body) = body {
        request = request.json(&body);
    }
    assert_eq!(
        request.send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
}

/// A server only members of `admins` may use, and authhost confirming claims with
/// the upstream on every refresh.
async fn following_upstream(upstream: &Upstream) -> TestAuthhost {
    let demo = authhost::dev::demo_mcp::start().await.unwrap();
    TestAuthhost::start(
        upstream,
        Options {
            mcp_servers: vec![(
                "admins",
                authhost::config::McpServerConfig {
                    policy: PolicyConfig {
                        allow: Some(r#""admins" in user.groups"#.into()),
                        ..PolicyConfig::default()
                    },
                    ..mcp_server("/admins", &demo)
                },
            )],
            ..Options::with(|config| config.tokens.claims_max_age = 0)
        },
    )
    .await
}

/// Alice leaves `admins` upstream: her next refresh carries her new groups, and the
/// policy on that group refuses her.
#[tokio::test]
async fn removed_from_a_group_upstream_loses_access_at_the_next_refresh() {
    let upstream = start_upstream();
    let a = following_upstream(&upstream).await;
    let client = a.register("Group follower").await;
    let tokens = a
        .sign_in_as(&Browser::new(), &client, "/admins", "alice")
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(a.whoami("/admins", access).await.status(), StatusCode::OK);
    assert!(
        claims_of(access)["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("admins"))
    );

    administer(&upstream, "alice", "groups", Some(json!(["engineering"]))).await;
    let (status, refreshed) = a
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["groups"], json!(["engineering"]));
    assert_eq!(
        a.whoami("/admins", access).await.status(),
        StatusCode::FORBIDDEN,
        "the policy on `admins` now refuses her"
    );
    let audit = a.state.metrics.render();
    assert!(audit.contains("function=\"user-claims\""), "asked upstream");
}

/// Her upstream session is revoked (or her account disabled): her next refresh fails,
/// and the grant is gone, access tokens included.
#[tokio::test]
async fn a_revoked_or_disabled_upstream_user_loses_the_grant() {
    let upstream = start_upstream();
    let a = following_upstream(&upstream).await;
    for (user, action) in [("alice", "revoke"), ("bob", "disable")] {
        let client = a.register("Session follower").await;
        let tokens = a.sign_in_as(&Browser::new(), &client, "/mcp", user).await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(a.whoami("/mcp", access).await.status(), StatusCode::OK);
        administer(&upstream, user, action, None).await;
        let (status, body) = a
            .refresh(&client, tokens["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{user}: {body}"
        );
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("sign in again"),
            "{body}"
        );
        assert_eq!(
            a.whoami("/mcp", access).await.status(),
            StatusCode::UNAUTHORIZED,
            "{user}: the grant ended"
        );
    }
}

/// Claims younger than `claims_max_age` are not confirmed again: a refresh costs no
/// upstream call.
#[tokio::test]
async fn fresh_claims_need_no_upstream_call() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Quiet client").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let calls = |metrics: &str| {
        metrics
            .lines()
            .filter(|l| l.starts_with("authhost_provider_calls_total"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let before = calls(&a.state.metrics.render());
    let (status, _) = a
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(calls(&a.state.metrics.render()), before);
}

/// No grant outlives `max_session_age`: tokens are cut to it, and a refresh after it
/// is refused.
#[tokio::test]
async fn sessions_end_at_their_maximum_age() {
    let upstream = start_upstream();
    let clock = std::sync::Arc::new(authhost::clock::ManualClock::default());
    let a = TestAuthhost::start(
        &upstream,
        Options {
            clock: Some(clock.clone()),
            ..Options::with(|config| config.tokens.max_session_age = 3)
        },
    )
    .await;
    let client = a.register("Short session").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    assert!(tokens["expires_in"].as_i64().unwrap() <= 3, "{tokens}");
    clock.advance(3);
    let (status, body) = a
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{body}"
    );
}

/// A GitHub OAuth App cannot refresh: its stored token is confirmed with the claims
/// call instead, and once the user revokes the app at GitHub, the next refresh ends
/// the grant.
#[tokio::test]
async fn an_upstream_that_cannot_refresh_is_asked_with_the_stored_token() {
    use crate::common::simulators::github::{AppKind, CLIENT_ID, CLIENT_SECRET, GitHubSim};
    let sim = GitHubSim::start(AppKind::OAuthApp).await;
    let upstream = start_upstream();
    let (origin, api) = (sim.origin.clone(), sim.api_url());
    let a = TestAuthhost::start(
        &upstream,
        Options::with(move |config| {
            config.tokens.claims_max_age = 0;
            let mut github = authhost::config::ProviderConfig {
                component: Some("github".into()),
                client_id: CLIENT_ID.into(),
                client_secret: Some(CLIENT_SECRET.into()),
                ..Default::default()
            };
            for (key, value) in [("base_url", &origin), ("api_url", &api)] {
                github
                    .settings
                    .insert(key.into(), toml::Value::String(value.clone()));
            }
            config.providers.insert("up".into(), github);
        }),
    )
    .await;
    let client = a.register("GitHub user").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let (status, again) = a
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the stored token still works: {again}"
    );

    // The user revokes the app at GitHub: every token of the authorization dies.
    let upstream_token = sim.live_tokens().pop().expect("authhost holds a token");
    let revoked = http()
        .delete(format!("{}/applications/{CLIENT_ID}/grant", sim.api_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&json!({"access_token": upstream_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let (status, body) = a
        .refresh(&client, again["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{body}"
    );
}

/// Upstream tokens that expired are refreshed (and the claims confirmed) at the next
/// refresh, however young the claims are.
#[tokio::test]
async fn expired_upstream_tokens_are_refreshed_at_the_next_refresh() {
    let upstream = crate::common::server::start_upstream_with(json!({"access_token_ttl": 1}));
    let clock = std::sync::Arc::new(authhost::clock::ManualClock::default());
    let a = TestAuthhost::start(
        &upstream,
        Options {
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Short upstream tokens").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let refreshes = |a: &TestAuthhost| {
        a.state
            .metrics
            .render()
            .lines()
            .filter(|l| {
                l.starts_with("authhost_provider_calls_total") && l.contains("function=\"refresh\"")
            })
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert!(refreshes(&a).is_empty());
    clock.advance(2);
    let (status, body) = a
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        refreshes(&a).len(),
        1,
        "refreshed upstream: {:?}",
        refreshes(&a)
    );
}

//! The authorization server's security properties, each through real HTTP against a
//! real upstream OpenID provider. Every test fails if its property breaks.

use crate::common::server::{Browser, CALLBACK, Options, Pkce, TestAuthhost, http, start_upstream};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn discovery_documents_advertise_s256_and_the_resource() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc: Value = http()
            .get(a.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["issuer"], a.base.as_str(), "{path}");
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"]),
            "{path}"
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["client_id_metadata_document_supported"], true);
    }
    let prm: Value = http()
        .get(a.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], a.url("/mcp"));
    assert_eq!(prm["authorization_servers"][0], a.base.as_str());

    let response = http().post(a.url("/mcp")).body("{}").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{}\"",
            a.url("/.well-known/oauth-protected-resource/mcp")
        )),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp\""), "{challenge}");
}

#[tokio::test]
async fn a_full_flow_reaches_the_mcp_server_with_the_users_identity_and_not_the_token() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Flow test").await;
    let pkce = Pkce::new();
    let done = Browser::new()
        .authorize(
            &a.authorize_url(&client, &pkce, &[]),
            "alice",
            "alice-password",
        )
        .await;
    assert_eq!(
        done.param("state").as_deref(),
        Some("client-state"),
        "{done:?}"
    );
    assert_eq!(
        done.param("iss").as_deref(),
        Some(a.base.as_str()),
        "RFC 9207 iss"
    );
    let (status, tokens) = a
        .exchange(&client, &done.param("code").unwrap(), &pkce)
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().unwrap();
    let response = a.whoami("/mcp", access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let who: Value =
        serde_json::from_str(body["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(who["subject"], "alice-sub");
    assert_eq!(who["email"], "alice@example.com");
    assert_eq!(who["client_id"], client.as_str());
    assert_eq!(
        who["authorization_header_seen"], false,
        "the client's token must not reach the MCP server"
    );
}

#[tokio::test]
async fn plain_pkce_and_missing_pkce_are_refused() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("PKCE test").await;
    let pkce = Pkce::new();
    for extra in [
        vec![
            ("code_challenge_method", "plain"),
            ("code_challenge", pkce.verifier.as_str()),
        ],
        vec![("code_challenge", "")],
        vec![("code_challenge_method", "")],
    ] {
        let done = Browser::new()
            .authorize(
                &a.authorize_url(&client, &pkce, &extra),
                "alice",
                "alice-password",
            )
            .await;
        assert_eq!(
            done.param("error").as_deref(),
            Some("invalid_request"),
            "{extra:?}: {done:?}"
        );
        assert_eq!(done.param("iss").as_deref(), Some(a.base.as_str()));
        assert_eq!(done.param("state").as_deref(), Some("client-state"));
    }
}

#[tokio::test]
async fn a_wrong_verifier_is_refused_and_burns_the_code() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Verifier test").await;
    let pkce = Pkce::new();
    let done = Browser::new()
        .authorize(
            &a.authorize_url(&client, &pkce, &[]),
            "alice",
            "alice-password",
        )
        .await;
    let code = done.param("code").unwrap();
    let (status, body) = a.exchange(&client, &code, &Pkce::new()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = a.exchange(&client, &code, &pkce).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "the code is spent"
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_the_grant() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Replay test").await;
    let pkce = Pkce::new();
    let done = Browser::new()
        .authorize(
            &a.authorize_url(&client, &pkce, &[]),
            "alice",
            "alice-password",
        )
        .await;
    let code = done.param("code").unwrap();
    let (status, tokens) = a.exchange(&client, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = a.exchange(&client, &code, &pkce).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        a.whoami("/mcp", access).await.status(),
        StatusCode::UNAUTHORIZED,
        "tokens from the replayed code are revoked"
    );
    let (status, _) = a
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Rotation test").await;
    let first = a.sign_in(&Browser::new(), &client).await;
    let rt1 = first["refresh_token"].as_str().unwrap();
    let (status, second) = a.refresh(&client, rt1).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2, "rotated on use");
    assert_eq!(
        a.whoami("/mcp", second["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    let (status, body) = a.refresh(&client, rt1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let (status, _) = a.refresh(&client, rt2).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the whole family is revoked"
    );
    assert_eq!(
        a.whoami("/mcp", second["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_token_for_one_resource_is_refused_by_another_and_scopes_are_enforced() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Audience test").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    let response = a.whoami("/admin-mcp", access).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "audience is /mcp, not /admin-mcp"
    );
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // A token for /admin-mcp with only the `mcp` scope: 403 insufficient_scope.
    let pkce = Pkce::new();
    let url = a.authorize_url(
        &client,
        &pkce,
        &[("resource", &a.url("/admin-mcp")), ("scope", "mcp")],
    );
    let done = Browser::new()
        .authorize(&url, "alice", "alice-password")
        .await;
    let (status, tokens) = a
        .exchange_for("/admin-mcp", &client, &done.param("code").unwrap(), &pkce)
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let response = a
        .whoami("/admin-mcp", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"mcp admin\""),
        "{challenge}"
    );

    // Unknown resources and scopes are refused at /authorize.
    let done = Browser::new()
        .authorize(
            &a.authorize_url(
                &client,
                &pkce,
                &[("resource", "https://elsewhere.example/mcp")],
            ),
            "alice",
            "alice-password",
        )
        .await;
    assert_eq!(done.param("error").as_deref(), Some("invalid_target"));
    let done = Browser::new()
        .authorize(
            &a.authorize_url(&client, &pkce, &[("scope", "mcp root")]),
            "alice",
            "alice-password",
        )
        .await;
    assert_eq!(done.param("error").as_deref(), Some("invalid_scope"));
}

#[tokio::test]
async fn a_redirect_uri_mismatch_shows_a_page_and_never_redirects() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Redirect test").await;
    let pkce = Pkce::new();
    for evil in [
        "https://evil.example/callback",
        "http://127.0.0.1:9/client/callback/extra",
        "http://localhost:9/client/callback",
    ] {
        let done = Browser::new()
            .authorize(
                &a.authorize_url(&client, &pkce, &[("redirect_uri", evil)]),
                "alice",
                "alice-password",
            )
            .await;
        let (status, page) = done.page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{evil}");
        assert!(page.contains("does not match"), "{page}");
    }
    // Loopback redirect URIs match on any port.
    let other_port = CALLBACK.replace(":9/", ":54321/");
    let done = Browser::new()
        .authorize(
            &a.authorize_url(&client, &pkce, &[("redirect_uri", &other_port)]),
            "alice",
            "alice-password",
        )
        .await;
    match &done {
        crate::common::server::Ended::AtClient(url) => assert_eq!(url.port(), Some(54321)),
        other => panic!("a loopback redirect on another port must be accepted: {other:?}"),
    }
    let code = done.param("code").expect("a code");
    let (status, body) = a
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client),
            ("code", &code),
            ("redirect_uri", &other_port),
            ("code_verifier", &pkce.verifier),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_expired_authorization_request_is_refused() {
    let upstream = start_upstream();
    let clock = std::sync::Arc::new(authhost::clock::ManualClock::default());
    let a = TestAuthhost::start(
        &upstream,
        Options {
            authorization_request_ttl: Some(1),
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Expiry test").await;
    let browser = Browser {
        decision: "stop",
        ..Browser::new()
    };
    let pkce = Pkce::new();
    let done = browser
        .authorize(
            &a.authorize_url(&client, &pkce, &[]),
            "alice",
            "alice-password",
        )
        .await;
    let (_, consent) = done.page();
    let (action, mut fields) = crate::common::server::form(consent);
    clock.advance(2);
    fields.push(("decision".into(), "approve".into()));
    let response = browser
        .http
        .post(action)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn consent_is_csrf_protected_not_frameable_and_stable_on_reload() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("CSRF test").await;
    let browser = Browser::new();
    let url = a.authorize_url(&client, &Pkce::new(), &[]);
    let first = browser.http.get(&url).send().await.unwrap();
    assert_eq!(first.headers()["x-frame-options"], "DENY");
    assert!(
        first.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let page = first.text().await.unwrap();
    assert!(
        page.contains("CSRF test") && page.contains("127.0.0.1:9"),
        "names the client and the redirect host"
    );
    let (action, fields) = crate::common::server::form(&page);
    let request = fields
        .iter()
        .find(|(k, _)| k == "request")
        .unwrap()
        .1
        .clone();
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .unwrap()
        .1
        .clone();

    // Another browser (no cookie) with the right token, or this browser with a wrong one.
    let forged = [
        ("request", request.as_str()),
        ("csrf_token", csrf.as_str()),
        ("decision", "approve"),
    ];
    let response = Browser::new()
        .http
        .post(&action)
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let wrong = [
        ("request", request.as_str()),
        ("csrf_token", "AAAA"),
        ("decision", "approve"),
    ];
    let response = browser
        .http
        .post(&action)
        .form(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The genuine form still works afterwards.
    let response = browser
        .http
        .post(&action)
        .form(
            &fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain([("decision", "approve")])
                .collect::<Vec<_>>(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn consent_is_asked_per_client_and_denial_returns_access_denied() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            remember_consent: true,
            ..Options::default()
        },
    )
    .await;
    let first = a.register("First client").await;
    let second = a.register("Second client").await;
    let browser = Browser::new();
    a.sign_in(&browser, &first).await;
    // The same client again in the same browser: remembered, straight to the upstream.
    let response = browser
        .http
        .get(a.authorize_url(&first, &Pkce::new(), &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "remembered consent for the first client"
    );
    // Another client: asked again.
    let response = browser
        .http
        .get(a.authorize_url(&second, &Pkce::new(), &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("Second client"));
    let deny = Browser {
        decision: "deny",
        ..Browser::new()
    };
    let done = deny
        .authorize(
            &a.authorize_url(&second, &Pkce::new(), &[]),
            "alice",
            "alice-password",
        )
        .await;
    assert_eq!(done.param("error").as_deref(), Some("access_denied"));
    assert_eq!(done.param("iss").as_deref(), Some(a.base.as_str()));
}

#[tokio::test]
async fn registration_enforces_the_redirect_policy_and_returns_no_upstream_credentials() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let response = http()
        .post(a.url("/register"))
        .json(
            &serde_json::json!({"client_name": "x", "redirect_uris": ["https://evil.example/cb"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
    let response = http()
        .post(a.url("/register"))
        .json(&serde_json::json!({"client_name": "conf", "redirect_uris": [CALLBACK]}))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("test-client") && !text.contains("test-secret"),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(
        body["client_secret"].as_str().is_some_and(|s| s.len() > 30),
        "a confidential client gets its own secret"
    );
    let bad = http()
        .post(a.url("/register"))
        .body("not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"],
        "invalid_client_metadata"
    );
}

/// A token request form, and the status and error it must get.
type TokenCase<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);

#[tokio::test]
async fn bad_token_requests_get_oauth_errors() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Errors").await;
    let cases: Vec<TokenCase> = vec![
        (
            vec![("client_id", &client)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("client_id", &client), ("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![
                ("client_id", "nobody"),
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("client_id", &client),
                ("grant_type", "authorization_code"),
                ("code", "nope"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![
                ("client_id", &client),
                ("client_secret", "x"),
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
    ];
    for (form, status, error) in cases {
        let (got, body) = a.token(&form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{form:?} → {body}"
        );
    }
}

#[tokio::test]
async fn a_client_id_metadata_document_client_completes_the_flow() {
    use axum::routing::get;
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            allow_private_metadata: true,
            ..Options::default()
        },
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let doc_url = format!("http://{}/client.json", listener.local_addr().unwrap());
    let liar_url = format!("http://{}/liar.json", listener.local_addr().unwrap());
    let doc = serde_json::json!({"client_id": doc_url, "client_name": "Metadata Client", "redirect_uris": [CALLBACK]});
    let liar = serde_json::json!({"client_id": "https://someone-else.example/client.json", "client_name": "Liar", "redirect_uris": [CALLBACK]});
    let app = axum::Router::new()
        .route("/client.json", get(move || async move { axum::Json(doc) }))
        .route("/liar.json", get(move || async move { axum::Json(liar) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let pkce = Pkce::new();
    let browser = Browser::new();
    let page = browser
        .http
        .get(a.authorize_url(&doc_url, &pkce, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Metadata Client"), "{page}");
    let done = browser
        .authorize(
            &a.authorize_url(&doc_url, &pkce, &[]),
            "alice",
            "alice-password",
        )
        .await;
    let (status, tokens) = a
        .exchange(&doc_url, &done.param("code").expect("code"), &pkce)
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    let done = Browser::new()
        .authorize(
            &a.authorize_url(&liar_url, &pkce, &[]),
            "alice",
            "alice-password",
        )
        .await;
    let (status, page) = done.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("client_id does not equal the document URL"),
        "{page}"
    );

    // Without the lab setting, loopback documents are refused (SSRF guard).
    let strict = TestAuthhost::start(&upstream, Options::default()).await;
    let done = Browser::new()
        .authorize(
            &strict.authorize_url(&doc_url, &pkce, &[]),
            "alice",
            "alice-password",
        )
        .await;
    let (_, page) = done.page();
    assert!(
        page.contains("non-public address") || page.contains("https"),
        "{page}"
    );
}

#[tokio::test]
async fn native_clients_may_return_to_a_custom_scheme() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let cursor = "cursor://anysphere.cursor-retrieval/oauth/authhost/callback";
    let response = http()
        .post(a.url("/register"))
        .json(&serde_json::json!({"client_name": "Cursor", "redirect_uris": [cursor], "token_endpoint_auth_method": "none", "application_type": "native"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let client: Value = response.json().await.unwrap();
    let pkce = Pkce::new();
    let url = a.authorize_url(
        client["client_id"].as_str().unwrap(),
        &pkce,
        &[("redirect_uri", cursor)],
    );
    match Browser::new()
        .authorize(&url, "alice", "alice-password")
        .await
    {
        crate::common::server::Ended::AtClient(url) => {
            assert!(url.as_str().starts_with(cursor), "{url}");
            assert!(url.query_pairs().any(|(k, _)| k == "code"));
        }
        other => panic!("expected the cursor:// redirect, got {other:?}"),
    }
}

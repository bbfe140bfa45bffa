//! Endpoints anyone can call stay bounded in rate, size and storage: floods of
//! registrations, authorization requests and bogus bearer tokens from one address get
//! 429 while others carry on; registrations are size-checked and purged when never
//! used; nothing is stored before the user acts on the consent page.

use crate::common::server::{Browser, CALLBACK, Options, Pkce, TestAuthhost, http, start_upstream};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

/// authhost behind a trusted proxy on loopback, so each test "client" has its own
/// forwarded address.
fn behind_proxy() -> Options {
    Options::with(|config| config.server.trusted_proxies = vec!["127.0.0.1".into()])
}

fn from(addr: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_str(addr).unwrap());
    headers
}

async fn register_from(a: &TestAuthhost, addr: &str, body: &Value) -> reqwest::Response {
    http()
        .post(a.own_url("/register"))
        .headers(from(addr))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn count(a: &TestAuthhost, table: &str) -> i64 {
    let url = a.state.config.server.database_url();
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut db)
        .await
        .unwrap();
    n
}

fn public_client(name: &str) -> Value {
    json!({
        "client_name": name,
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
    })
}

#[tokio::test]
async fn a_registration_flood_is_limited_per_address_and_bounded_in_storage() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, behind_proxy()).await;
    let limit = a.state.config.rate_limits.register_per_minute as usize;
    let mut created = 0;
    let mut limited = None;
    for i in 0..limit + 30 {
        let response =
            register_from(&a, "203.0.113.9", &public_client(&format!("flood {i}"))).await;
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => limited = Some(response),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, limit, "the burst, then nothing");
    let limited = limited.expect("the flood was limited");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(count(&a, "clients").await, limit as i64);

    // Someone else registers and signs in as usual.
    let response = register_from(&a, "198.51.100.7", &public_client("honest")).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let client: Value = response.json().await.unwrap();
    let client = client["client_id"].as_str().unwrap();
    let tokens = a
        .sign_in(&Browser::with_headers(from("198.51.100.7")), client)
        .await;
    assert!(tokens["access_token"].is_string());
}

#[tokio::test]
async fn registration_documents_are_bounded() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let post = |body: Vec<u8>| {
        http()
            .post(a.own_url("/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let too_long_name = json!({"client_name": "x".repeat(201), "redirect_uris": [CALLBACK]});
    let many_uris: Vec<String> = (0..11)
        .map(|i| format!("http://127.0.0.1:9/cb{i}"))
        .collect();
    let too_many = json!({"client_name": "x", "redirect_uris": many_uris});
    let long_uri = json!({"client_name": "x", "redirect_uris": [format!("http://127.0.0.1/{}", "a".repeat(2100))]});
    for (body, error) in [
        (too_long_name, "invalid_client_metadata"),
        (too_many, "invalid_redirect_uri"),
        (long_uri, "invalid_redirect_uri"),
    ] {
        let response = post(body.to_string().into_bytes()).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{body}");
    }
    let huge = format!(
        r#"{{"client_name":"x","redirect_uris":["{CALLBACK}"],"padding":"{}"}}"#,
        "p".repeat(20_000)
    );
    let response = post(huge.into_bytes()).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(count(&a, "clients").await, 0);
}

/// Opening the authorization page stores nothing; only acting on it does.
#[tokio::test]
async fn authorization_requests_store_nothing_before_consent() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Page viewer").await;
    for _ in 0..30 {
        let response = Browser::new()
            .http
            .get(a.authorize_url(&client, &Pkce::new(), &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(count(&a, "authorizations").await, 0);
    a.sign_in(&Browser::new(), &client).await;
    assert_eq!(count(&a, "authorizations").await, 1);
}

/// A flood of made-up bearer tokens: each naming an unknown key costs at most one key
/// read per second, and past the failure limit the address gets 429 without its
/// tokens being looked at; a real token from elsewhere still works.
#[tokio::test]
async fn a_flood_of_bogus_bearer_tokens_is_cut_off() {
    use base64::Engine as _;
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, behind_proxy()).await;
    let client = a.register("Real client").await;
    let tokens = a
        .sign_in(&Browser::with_headers(from("198.51.100.7")), &client)
        .await;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let reads_before = a.state.signer.demand_reads();
    let limit = a.state.config.rate_limits.gateway_auth_failures_per_minute as usize;
    let mut statuses = Vec::new();
    for i in 0..limit + 20 {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("made-up-{i}")});
        let bogus = format!("{}.{}.c2ln", b64(&header), b64(&json!({"sub": "x"})));
        let response = http()
            .post(a.own_url("/mcp"))
            .headers(from("203.0.113.66"))
            .bearer_auth(bogus)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    // The burst of failures is answered; then the address is cut off (it earns about
    // one more attempt a second, as the limit says).
    assert!(
        statuses[..limit]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED)
    );
    let cut_off = statuses[limit..]
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(cut_off >= 15, "{statuses:?}");
    let reads = a.state.signer.demand_reads() - reads_before;
    assert!(
        reads <= 3,
        "{reads} key reads for {} bogus tokens",
        statuses.len()
    );
    let ok = http()
        .post(a.own_url("/mcp"))
        .headers(from("198.51.100.7"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

/// Self-registered clients that never complete a sign-in are purged; used ones and
/// the operator's stay.
#[tokio::test]
async fn registrations_never_used_are_purged() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let unused = a.register("Never used").await;
    let used = a.register("Used").await;
    a.sign_in(&Browser::new(), &used).await;
    let operator =
        authhost::cli::admin::add_client(&a.state.store, "Operator's", &[CALLBACK.into()], false)
            .await
            .unwrap();
    let later = authhost::clock::now() + a.state.config.registration.unused_client_ttl as i64 + 1;
    authhost::server::maintain(&a.state, later).await.unwrap();
    let store = &a.state.store;
    assert!(store.client(&unused).await.unwrap().is_none(), "purged");
    assert!(store.client(&used).await.unwrap().is_some());
    assert!(store.client(&operator.client_id).await.unwrap().is_some());
}

/// Introspection tells whose a token is: a client that registered itself may not ask,
/// even a confidential one; the operator's resource server may.
#[tokio::test]
async fn only_the_operators_clients_may_introspect() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Token holder").await;
    let tokens = a.sign_in(&Browser::new(), &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    let response = http()
        .post(a.own_url("/register"))
        .json(&json!({"client_name": "Nosy", "redirect_uris": [CALLBACK]}))
        .send()
        .await
        .unwrap();
    let nosy: Value = response.json().await.unwrap();
    let introspect = |id: String, secret: String| {
        http()
            .post(a.own_url("/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", access)])
            .send()
    };
    let refused = introspect(
        nosy["client_id"].as_str().unwrap().into(),
        nosy["client_secret"].as_str().unwrap().into(),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    let rs = authhost::cli::admin::add_client(
        &a.state.store,
        "Resource server",
        &[CALLBACK.into()],
        true,
    )
    .await
    .unwrap();
    let allowed = introspect(rs.client_id, rs.secret.unwrap()).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let body: Value = allowed.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], "alice-sub");
}

/// authhost is an OAuth authorization server, not an OpenID Provider, and its
/// OpenID-location metadata says only that.
#[tokio::test]
async fn discovery_claims_no_openid_provider_features() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let doc: Value = http()
        .get(a.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for absent in [
        "id_token_signing_alg_values_supported",
        "userinfo_endpoint",
        "subject_types_supported",
    ] {
        assert!(doc.get(absent).is_none(), "{absent}: {doc}");
    }
    assert!(
        !doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("openid"))
    );
    let client = a.register("Wants openid").await;
    let done = Browser::new()
        .authorize(
            &a.authorize_url(&client, &Pkce::new(), &[("scope", "openid")]),
            "alice",
            "alice-password",
        )
        .await;
    assert_eq!(done.param("error").as_deref(), Some("invalid_scope"));
}

//! A sign-in completes only in the browser that approved it, and remembered consent is
//! only ever replayed for the same user, client and redirect URI, never for a request
//! another site started. Each test performs the attack with two real browsers (cookie
//! jars) against the real upstream OpenID provider.

use crate::common::server::{Browser, Ended, Options, Pkce, TestAuthhost, start_upstream};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

/// The attacker registers a client, approves the consent page in their own browser,
/// and sends the upstream sign-in link to the victim, who signs in. Without the flow
/// cookie of the approving browser, the callback stops at a page: no code reaches the
/// attacker's redirect URI, and the callback cannot be finished afterwards by anyone.
#[tokio::test]
async fn a_sign_in_link_finished_in_another_browser_yields_no_code() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Attacker's app").await;
    let attacker = Browser::new();
    let pkce = Pkce::new();
    let upstream_link = attacker
        .approve_until_upstream(&a.authorize_url(&client, &pkce, &[]))
        .await;
    assert!(
        upstream_link.as_str().starts_with(&upstream.issuer("root")),
        "consent sends the browser upstream: {upstream_link}"
    );

    let victim = Browser::new();
    let ended = victim
        .authorize(upstream_link.as_str(), "alice", "alice-password")
        .await;
    let Ended::Page(status, page) = &ended else {
        panic!("the victim's browser must not be sent to the client: {ended:?}");
    };
    assert_eq!(*status, StatusCode::FORBIDDEN);
    assert!(page.contains("another browser"), "{page}");
    assert!(ended.param("code").is_none());

    // The victim's callback URL (with the upstream code) replayed in the attacker's
    // browser, which holds the flow cookie: the request was used up.
    let callback = victim
        .visited("/oauth/callback/")
        .expect("the victim reached the callback");
    assert!(callback.query().unwrap_or("").contains("code="));
    let replay = attacker.authorize(callback.as_str(), "", "").await;
    let (status, page) = replay.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("expired"), "{page}");
    let events = a.state.metrics.render();
    assert!(
        events.contains("outcome=\"failed\""),
        "the refused callback is counted"
    );
}

/// The same browser from start to end completes, and the flow cookie is gone after.
#[tokio::test]
async fn the_approving_browser_completes_and_the_flow_cookie_is_cleared() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Honest app").await;
    let browser = Browser::new();
    let pkce = Pkce::new();
    let link = browser
        .approve_until_upstream(&a.authorize_url(&client, &pkce, &[]))
        .await;
    let done = browser
        .authorize(link.as_str(), "alice", "alice-password")
        .await;
    let code = done.param("code").expect("a code in the approving browser");
    let (status, tokens) = a.exchange(&client, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

fn cross_site() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    headers
}

/// Remembered consent skips the page only for the same browser, client and redirect
/// URI, and never when another site started the request.
#[tokio::test]
async fn remembered_consent_is_not_replayed_cross_site_or_for_another_redirect_uri() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            remember_consent: true,
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Remembered app").await;
    let browser = Browser::new();
    a.sign_in(&browser, &client).await;
    let again = browser
        .http
        .get(a.authorize_url(&client, &Pkce::new(), &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::SEE_OTHER, "remembered");

    // The same browser, but the request comes from a page on another site.
    let response = browser
        .http
        .get(a.authorize_url(&client, &Pkce::new(), &[]))
        .headers(cross_site())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "asked again");
    assert!(response.text().await.unwrap().contains("csrf_token"));

    // The same client returning elsewhere (a loopback port is not a new URI, a path is).
    let other = "http://127.0.0.1:9/client/other-callback";
    let response = crate::common::server::http()
        .post(a.own_url("/register"))
        .json(&serde_json::json!({
            "client_name": "Two callbacks",
            "redirect_uris": [crate::common::server::CALLBACK, other],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap();
    let two: serde_json::Value = response.json().await.unwrap();
    let two = two["client_id"].as_str().unwrap().to_string();
    a.sign_in(&browser, &two).await;
    let response = browser
        .http
        .get(a.authorize_url(&two, &Pkce::new(), &[("redirect_uri", other)]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a different redirect URI asks again"
    );
}

/// Remembered consent was given by alice; bob signs in on the same browser. The
/// skipped consent was not his: no code, and the page is shown next time.
#[tokio::test]
async fn remembered_consent_does_not_carry_over_to_another_user() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            remember_consent: true,
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Shared computer app").await;
    let browser = Browser::new();
    a.sign_in(&browser, &client).await;
    // Log alice out upstream by dropping the upstream's cookies: a new browser profile
    // would lose authhost's cookie too, so take only the upstream session away.
    let revoked = crate::common::server::http()
        .post(format!(
            "{}/__test/users/alice/revoke",
            upstream.issuer("root")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let done = browser
        .authorize(
            &a.authorize_url(&client, &Pkce::new(), &[]),
            "bob",
            "bob-password",
        )
        .await;
    let (status, page) = done.page();
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("another user"), "{page}");
    let response = browser
        .http
        .get(a.authorize_url(&client, &Pkce::new(), &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "consent asked again");
}

/// The consent page names the full redirect URI, not only its origin.
#[tokio::test]
async fn the_consent_page_shows_the_whole_redirect_uri() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let client = a.register("Shown in full").await;
    let page = Browser::new()
        .http
        .get(a.authorize_url(&client, &Pkce::new(), &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&crate::common::server::CALLBACK.replace('/', "&#x2f;"))
            || page.contains(crate::common::server::CALLBACK),
        "{page}"
    );
}

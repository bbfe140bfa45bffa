//! Client ID metadata documents, from the hostile side: ids that a URL parser would
//! rewrite, documents that carry secrets, and an outage of the client's host, which
//! must not end its users' sessions (`temporarily_unavailable`, not `invalid_client`).

use crate::common::server::{Browser, CALLBACK, Options, Pkce, TestAuthhost, start_upstream};
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Serve `documents` (path → JSON, never cached) on `addr` until the handle is aborted.
async fn serve_documents(
    addr: SocketAddr,
    documents: Vec<(&'static str, Value)>,
) -> tokio::task::JoinHandle<()> {
    let mut app = axum::Router::new();
    for (path, doc) in documents {
        app = app.route(
            path,
            get(move || async move { ([("cache-control", "no-store")], axum::Json(doc)) }),
        );
    }
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn lab(failure_cache_seconds: u64) -> Options {
    Options {
        allow_private_metadata: true,
        ..Options::with(move |config| {
            config.client_metadata.failure_cache_seconds = failure_cache_seconds
        })
    }
}

#[tokio::test]
async fn ids_a_parser_would_rewrite_and_documents_with_secrets_are_refused() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, lab(0)).await;
    let addr = free_addr();
    let base = format!("http://{addr}");
    let secret_doc = json!({
        "client_id": format!("{base}/secret.json"), "client_name": "Leaky",
        "redirect_uris": [CALLBACK], "client_secret": "s3cret",
    });
    let fine = json!({"client_id": format!("{base}/a/client.json"), "client_name": "Fine", "redirect_uris": [CALLBACK]});
    let _server = serve_documents(
        addr,
        vec![("/secret.json", secret_doc), ("/a/client.json", fine)],
    )
    .await;
    for (client_id, reason) in [
        (format!("{base}/secret.json"), "client_secret"),
        (format!("{base}/a/../a/client.json"), "dot segments"),
        (format!("{base}/a/%2e%2e/a/client.json"), "dot segments"),
        (format!("{base}/a/client.json?x=1"), "query"),
    ] {
        let done = Browser::new()
            .authorize(
                &a.authorize_url(&client_id, &Pkce::new(), &[]),
                "alice",
                "alice-password",
            )
            .await;
        let (status, page) = done.page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{client_id}: {page}");
        assert!(page.contains(reason), "{client_id}: {page}");
    }
}

/// The client's host goes down after its user signed in: refreshes get 503
/// `temporarily_unavailable` (the grant lives on), failures are remembered for
/// `failure_cache_seconds`, and once the host is back the refresh works.
async fn outage(failure_cache_seconds: u64) -> (TestAuthhost, StatusCode) {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, lab(failure_cache_seconds)).await;
    let addr = free_addr();
    let client_id = format!("http://{addr}/client.json");
    let doc =
        json!({"client_id": client_id, "client_name": "Flaky host", "redirect_uris": [CALLBACK]});
    let server = serve_documents(addr, vec![("/client.json", doc.clone())]).await;
    let tokens = a.sign_in(&Browser::new(), &client_id).await;
    server.abort();
    let _ = server.await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = a.refresh(&client_id, refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("temporarily_unavailable")
        ),
        "{body}"
    );
    let _back = serve_documents(addr, vec![("/client.json", doc)]).await;
    let (status, body) = a.refresh(&client_id, refresh).await;
    if status == StatusCode::OK {
        assert!(body["access_token"].is_string());
    }
    (a, status)
}

#[tokio::test]
async fn an_outage_of_the_clients_host_does_not_end_sessions() {
    let (_, status) = outage(0).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the refresh works once the host is back"
    );
}

#[tokio::test]
async fn failed_fetches_are_remembered_briefly() {
    let (_, status) = outage(60).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "within failure_cache_seconds the failure is served from memory"
    );
}

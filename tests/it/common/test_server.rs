//! A local HTTP server with the endpoints the sandbox tests need.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::time::Duration;

pub const BIG_BODY_BYTES: usize = 2 << 20;

pub struct TestServer {
    pub addr: SocketAddr,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let escape_to = format!("http://localhost:{}/ok", addr.port());
        let app = Router::new()
            .route("/ok", get(|| async { "hello from upstream" }))
            .route("/big", get(|| async { "x".repeat(BIG_BODY_BYTES) }))
            .route("/to-ok", get(|| async { Redirect::to("/ok") }))
            // Same server, but under a host name the allowlist does not contain.
            .route(
                "/escape",
                get(move || async move { Redirect::to(&escape_to) }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/token", post(token));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestServer { addr }
    }

    /// The allowlist entry for this server.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Answers whether the request carried the test client's credentials, and how.
async fn token(headers: HeaderMap, body: String) -> impl IntoResponse {
    // base64("test-client:test-secret")
    let basic = "Basic dGVzdC1jbGllbnQ6dGVzdC1zZWNyZXQ=";
    let by_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(basic);
    let by_form = body.split('&').any(|p| p == "client_secret=test-secret")
        && body.split('&').any(|p| p == "client_id=test-client");
    match (by_header, by_form) {
        (true, false) => (StatusCode::OK, "authenticated by basic"),
        (false, true) => (StatusCode::OK, "authenticated by form"),
        (false, false) => (StatusCode::UNAUTHORIZED, "anonymous"),
        (true, true) => (StatusCode::BAD_REQUEST, "two authentication methods"),
    }
}

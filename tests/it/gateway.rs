//! The gateway proxies streamable HTTP faithfully: SSE events arrive as they are sent,
//! status codes and headers pass through, forged identity headers do not.

use crate::common::server::{Browser, Options, Pkce, TestAuthhost, mcp_server, start_upstream};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use std::time::{Duration, Instant};

/// An MCP server that answers with an SSE stream of two events, 700 ms apart, and
/// echoes the identity it was given; notifications get 202.
async fn streaming_server() -> String {
    let app = axum::Router::new().route(
        "/mcp",
        post(|headers: HeaderMap, body: String| async move {
            if !body.contains("\"id\"") {
                return Response::builder()
                    .status(StatusCode::ACCEPTED)
                    .body(Body::empty())
                    .unwrap();
            }
            let subject = headers
                .get("x-authhost-subject")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let stream = async_stream(subject);
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("mcp-session-id", "session-123")
                .body(Body::from_stream(stream))
                .unwrap()
        }),
    );
    format!("{}/mcp", crate::common::serve(app).await)
}

fn async_stream(
    subject: String,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::unfold(0, move |n| {
        let subject = subject.clone();
        async move {
            match n {
                0 => Some((
                    Ok(format!(
                        "event: message\ndata: {{\"progress\":1,\"sub\":\"{subject}\"}}\n\n"
                    )),
                    1,
                )),
                1 => {
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    Some((Ok("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n".to_string()), 2))
                }
                _ => None,
            }
        }
    })
}

#[tokio::test]
async fn sse_streams_through_with_headers_and_status_and_no_forged_identity() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            stream_upstream: Some(streaming_server().await),
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Stream client").await;
    let pkce = Pkce::new();
    let url = a.authorize_url(&client, &pkce, &[("resource", &a.url("/stream"))]);
    let done = Browser::new()
        .authorize(&url, "alice", "alice-password")
        .await;
    let (status, tokens) = a
        .exchange_for("/stream", &client, &done.param("code").unwrap(), &pkce)
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();

    let started = Instant::now();
    let mut response = reqwest::Client::new()
        .post(a.url("/stream"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("x-authhost-subject", "mallory")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["mcp-session-id"], "session-123");
    let first = response.chunk().await.unwrap().expect("a first event");
    let first_at = started.elapsed();
    let first = String::from_utf8_lossy(&first).to_string();
    assert!(
        first.contains("\"sub\":\"alice-sub\""),
        "the real identity, not the forged one: {first}"
    );
    let mut rest = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(rest.contains("\"result\""), "{rest}");
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(
        first_at < Duration::from_millis(600),
        "the first event was held back until the end ({first_at:?})"
    );

    let notification = reqwest::Client::new()
        .post(a.url("/stream"))
        .bearer_auth(token)
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(notification.status(), StatusCode::ACCEPTED);
}

/// Set when the MCP server's response stream is dropped (its client went away).
struct DropFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_client_going_away_cancels_the_request_to_the_mcp_server() {
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = dropped.clone();
    // An endless SSE stream: one event every 100 ms until nobody listens.
    let app = axum::Router::new().route(
        "/mcp",
        post(move || {
            let guard = DropFlag(flag.clone());
            async move {
                let events = futures_util::stream::unfold(guard, |guard| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((Ok::<_, std::io::Error>("data: {}\n\n".to_string()), guard))
                });
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(events))
                    .unwrap()
            }
        }),
    );
    let endless = format!("{}/mcp", crate::common::serve(app).await);
    let upstream = start_upstream();
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("endless", mcp_server("/endless", &endless))],
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Impatient client").await;
    let tokens = a
        .sign_in_as(&Browser::new(), &client, "/endless", "alice")
        .await;
    let mut response = reqwest::Client::new()
        .post(a.url("/endless"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"forever"}}"#)
        .send()
        .await
        .unwrap();
    assert!(response.chunk().await.unwrap().is_some(), "events flow");
    assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
    drop(response);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !dropped.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the MCP server kept streaming to nobody"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An MCP server with every HTTP verb of streamable HTTP (2025-11-25): POST answers a
/// `tools/list` as SSE, a notification first and the list 500 ms later; GET opens a
/// long-lived stream of notifications; DELETE ends a session.
async fn verbs_server() -> String {
    use axum::routing::delete;
    use futures_util::StreamExt;
    let sse = |events: Vec<(u64, &'static str)>| {
        let stream = futures_util::stream::iter(events).then(|(wait, event)| async move {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            Ok::<_, std::io::Error>(event.to_string())
        });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap()
    };
    let app = axum::Router::new().route(
        "/mcp",
        post(move || async move {
            sse(vec![
                (0, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n"),
                (500, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"admin_drop\"}]}}\n\n"),
            ])
        })
        .get(move || async move {
            sse((0..50).map(|_| (100, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\n")).collect())
        })
        .merge(delete(|| async { StatusCode::NO_CONTENT })),
    );
    format!("{}/mcp", crate::common::serve(app).await)
}

#[tokio::test]
async fn events_arrive_as_sent_and_get_streams_and_delete_pass_through() {
    use futures_util::StreamExt;
    let server = verbs_server().await;
    let upstream = start_upstream();
    let policed = authhost::config::McpServerConfig {
        policy: authhost::config::PolicyConfig {
            deny_tools: vec!["admin_*".into()],
            ..Default::default()
        },
        ..mcp_server("/verbs", &server)
    };
    let a = TestAuthhost::start(
        &upstream,
        Options {
            mcp_servers: vec![("verbs", policed)],
            ..Options::default()
        },
    )
    .await;
    let client = a.register("Verbs").await;
    let tokens = a
        .sign_in_as(&Browser::new(), &client, "/verbs", "alice")
        .await;
    let token = tokens["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();

    // The list is filtered event by event, and the first event is not held back.
    let started = Instant::now();
    let response = http
        .post(a.url("/verbs"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut events = response.bytes_stream();
    let first = events.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("notifications/progress"));
    let mut rest = Vec::new();
    while let Some(chunk) = events.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let last_at = started.elapsed();
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.contains("echo") && !rest.contains("admin_drop"),
        "{rest}"
    );
    assert!(
        first_at < Duration::from_millis(250) && last_at >= Duration::from_millis(500),
        "first event at {first_at:?}, the list at {last_at:?}"
    );

    // A long-lived GET stream flows through.
    let response = http
        .get(a.url("/verbs"))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream();
    let started = Instant::now();
    for _ in 0..3 {
        let event = stream.next().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&event).contains("notifications/message"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "events arrive as sent"
    );
    drop(stream);

    let deleted = http
        .delete(a.url("/verbs"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}

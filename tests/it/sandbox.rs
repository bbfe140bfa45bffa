//! A component that misbehaves gets a clear error for that call only, within its
//! limits; the call right after succeeds.

use crate::common::test_server::{BIG_BODY_BYTES, TestServer};
use crate::common::{self, instance, load_test_component, spec};
use authhost::runtime::{AuthorizeRequest, CallError, ProviderError, ProviderInstance, Runtime};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn request() -> AuthorizeRequest {
    AuthorizeRequest {
        state: "state-1".into(),
        code_challenge: None,
        nonce: "nonce-1".into(),
        extra: vec![],
    }
}

struct Fixture {
    runtime: Arc<Runtime>,
    component: Arc<authhost::runtime::ProviderComponent>,
    server: TestServer,
}

impl Fixture {
    async fn new() -> Fixture {
        let runtime = common::runtime();
        let component = load_test_component(&runtime, "test_provider_misbehaving").await;
        Fixture {
            runtime,
            component,
            server: TestServer::start().await,
        }
    }

    fn instance(&self, settings: &[(&str, &str)]) -> ProviderInstance {
        instance(
            &self.runtime,
            &self.component,
            spec(
                "misbehaving",
                settings,
                &[self.server.origin(), "https://upstream.test".into()],
            ),
        )
    }

    /// What an `http` or `post` mode call handed back (see `result` in the component).
    async fn fetched(&self, settings: &[(&str, &str)]) -> Result<String, CallError> {
        let url = self.instance(settings).authorize_url(request()).await?;
        let url = url::Url::parse(&url).unwrap();
        Ok(url
            .query_pairs()
            .find(|(k, _)| k == "value")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default())
    }

    /// The same component, well-behaved: must work right after any failure.
    async fn assert_good_call_works(&self) {
        let url = self
            .instance(&[("mode", "ok")])
            .authorize_url(request())
            .await
            .expect("a good call after a failure succeeds");
        assert_eq!(url, "https://upstream.test/authorize?state=state-1");
        let body = self
            .fetched(&[("mode", "http"), ("url", &self.server.url("/ok"))])
            .await
            .expect("a good HTTP call after a failure succeeds");
        assert_eq!(body, "200 hello from upstream");
    }
}

/// The provider's error text, for errors returned as values.
fn upstream_error(result: Result<String, CallError>) -> String {
    match result {
        Err(CallError::Provider {
            error: ProviderError::UpstreamError(message),
            ..
        }) => message,
        other => panic!("expected an upstream error value, got {other:?}"),
    }
}

#[tokio::test]
async fn an_infinite_loop_is_interrupted_at_the_cpu_limit() {
    let f = Fixture::new().await;
    let started = Instant::now();
    let err = f
        .instance(&[("mode", "loop")])
        .authorize_url(request())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, CallError::CpuLimit { limit_ms: 100, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("CPU time limit of 100 ms"),
        "{err}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "interrupted only after {elapsed:?}"
    );
    f.assert_good_call_works().await;
}

#[tokio::test]
async fn allocating_past_the_memory_limit_fails_the_call() {
    let f = Fixture::new().await;
    let err = f
        .instance(&[("mode", "oom")])
        .authorize_url(request())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::MemoryLimit { limit_mib: 16, .. }),
        "{err:?}"
    );
    f.assert_good_call_works().await;
}

#[tokio::test]
async fn a_panic_is_reported_with_its_message() {
    let f = Fixture::new().await;
    let err = f
        .instance(&[("mode", "panic")])
        .authorize_url(request())
        .await
        .unwrap_err();
    match &err {
        CallError::Panicked { message, .. } => {
            assert!(
                message.contains("misbehaving provider panics on purpose"),
                "{message}"
            )
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    f.assert_good_call_works().await;
}

#[tokio::test]
async fn a_host_off_the_allowlist_is_refused() {
    let f = Fixture::new().await;
    // The same server under another name: reachable, but not allowed.
    let url = format!("http://localhost:{}/ok", f.server.addr.port());
    let message = upstream_error(
        f.instance(&[("mode", "http"), ("url", &url)])
            .authorize_url(request())
            .await,
    );
    assert!(message.contains("Denied"), "{message}");
    assert!(message.contains("not in allowed_hosts"), "{message}");
    f.assert_good_call_works().await;
}

#[tokio::test]
async fn a_redirect_within_the_allowlist_is_followed_and_one_leaving_it_is_refused() {
    let f = Fixture::new().await;
    let body = f
        .fetched(&[("mode", "http"), ("url", &f.server.url("/to-ok"))])
        .await
        .unwrap();
    assert_eq!(body, "200 hello from upstream");
    let message = upstream_error(
        f.instance(&[("mode", "http"), ("url", &f.server.url("/escape"))])
            .authorize_url(request())
            .await,
    );
    assert!(message.contains("Denied"), "{message}");
    assert!(message.contains("localhost"), "{message}");
    f.assert_good_call_works().await;
}

#[tokio::test]
async fn an_oversized_response_is_cut_off() {
    let f = Fixture::new().await;
    let message = upstream_error(
        f.instance(&[("mode", "http"), ("url", &f.server.url("/big"))])
            .authorize_url(request())
            .await,
    );
    let limit = authhost::runtime::Limits::default().max_response_bytes;
    assert!(BIG_BODY_BYTES > limit);
    assert!(message.contains(&format!("TooLarge({limit})")), "{message}");
    f.assert_good_call_works().await;
}

#[tokio::test]
async fn a_slow_upstream_times_out() {
    let f = Fixture::new().await;
    let mut spec = spec(
        "misbehaving",
        &[("mode", "http"), ("url", &f.server.url("/slow"))],
        &[f.server.origin()],
    );
    spec.limits.http_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let message = upstream_error(
        instance(&f.runtime, &f.component, spec)
            .authorize_url(request())
            .await,
    );
    assert!(message.contains("Timeout"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(3));
    f.assert_good_call_works().await;
}

#[tokio::test]
async fn too_many_requests_in_one_call_abort_it() {
    let f = Fixture::new().await;
    let err = f
        .instance(&[("mode", "many-calls"), ("url", &f.server.url("/ok"))])
        .authorize_url(request())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("more than 16 HTTP requests"),
        "{err}"
    );
    f.assert_good_call_works().await;
}

#[tokio::test]
async fn the_host_attaches_the_client_secret_the_way_the_component_asks() {
    let f = Fixture::new().await;
    let token_url = f.server.url("/token");
    for (auth, expected) in [
        ("basic", "200 authenticated by basic"),
        ("form-post", "200 authenticated by form"),
        ("none", "401 anonymous"),
    ] {
        let body = f
            .fetched(&[("mode", "post"), ("url", &token_url), ("client_auth", auth)])
            .await
            .unwrap();
        assert_eq!(body, expected, "client_auth = {auth}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_call_does_not_stall_other_calls() {
    let f = Arc::new(Fixture::new().await);
    let looping = {
        let f = f.clone();
        tokio::spawn(async move {
            let mut spec = spec("misbehaving", &[("mode", "loop")], &[]);
            spec.limits.cpu_time = Duration::from_millis(1000);
            instance(&f.runtime, &f.component, spec)
                .authorize_url(request())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    for _ in 0..20 {
        f.assert_good_call_works().await;
    }
    let busy = started.elapsed();
    let result = looping.await.unwrap();
    assert!(
        matches!(result, Err(CallError::CpuLimit { .. })),
        "{result:?}"
    );
    assert!(
        busy < Duration::from_millis(1000),
        "good calls waited {busy:?} for the loop"
    );
}

/// What a component returns is checked like what it does: an authorization URL that
/// leaves the allowed hosts, tokens and claims that could split a header or flood the
/// store fail the call with an error naming the provider; non-ASCII names pass.
#[tokio::test]
async fn invalid_outputs_fail_the_call_naming_the_provider() {
    use authhost::runtime::{CodeExchange, TokenSet};
    let f = Fixture::new().await;
    for mode in ["javascript", "offsite", "crlf"] {
        let err = f
            .instance(&[("mode", mode)])
            .authorize_url(request())
            .await
            .unwrap_err();
        assert!(matches!(err, CallError::Invalid { .. }), "{mode}: {err}");
        let text = err.to_string();
        assert!(text.contains("provider `misbehaving`"), "{text}");
        assert!(text.contains("authorization URL"), "{text}");
    }
    let exchange = || CodeExchange {
        code: "c".into(),
        code_verifier: None,
        nonce: "n".into(),
    };
    for mode in ["token-space", "token-huge"] {
        let err = f
            .instance(&[("mode", mode)])
            .exchange_code(exchange())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("access token"), "{mode}: {err}");
    }
    let tokens = f
        .instance(&[("mode", "ok")])
        .exchange_code(exchange())
        .await
        .unwrap();
    for (mode, what) in [
        ("claims-control", "control characters"),
        ("claims-huge", "more than"),
        ("claims-extra", "not a JSON object"),
    ] {
        let err = f
            .instance(&[("mode", mode)])
            .user_claims(TokenSet { ..tokens.clone() })
            .await
            .unwrap_err();
        assert!(err.to_string().contains(what), "{mode}: {err}");
    }
    let claims = f
        .instance(&[("mode", "ok")])
        .user_claims(tokens)
        .await
        .unwrap();
    assert_eq!(claims.name.as_deref(), Some("Zoë Ærø"));
    f.assert_good_call_works().await;
}

/// A component that floods the log gets a few lines through, not ten thousand; the
/// call itself still succeeds.
#[tokio::test]
async fn log_lines_per_call_are_capped() {
    #[derive(Clone, Default)]
    struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    // The test runs on one thread, the component call included.
    let _logs = tracing::subscriber::set_default(subscriber);
    let f = Fixture::new().await;
    let url = f
        .instance(&[("mode", "log-flood")])
        .authorize_url(request())
        .await
        .unwrap();
    assert!(url.starts_with("https://upstream.test/authorize"));
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let kept = text.lines().filter(|l| l.contains(" line ")).count();
    assert!((1..=32).contains(&kept), "{kept} lines kept");
    assert!(text.contains("dropping the rest"), "{text}");
}

//! Prometheus metrics at `/metrics`: HTTP requests and latencies, authorization flows,
//! tokens issued, provider calls and failures, and gateway outcomes.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Labels<const N: usize> = [(&'static str, String); N];
type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

/// The labels of every HTTP request: built without allocating (they are made for
/// each request), and bounded: route patterns, standard methods, status codes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: Arc<str>,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: Arc<str>,
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Timings<RouteLabel>,
    /// Route patterns as shared strings, so labels clone a pointer, not the text.
    routes: std::sync::RwLock<std::collections::HashMap<String, Arc<str>>>,
    flows: Family<Labels<2>, Counter>,
    tokens: Family<Labels<1>, Counter>,
    provider_calls: Family<Labels<3>, Counter>,
    provider_duration: Timings<Labels<2>>,
    gateway_requests: Family<Labels<2>, Counter>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("authhost");
        let http_requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            http_requests.clone(),
        );
        let http_duration: Timings<RouteLabel> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to the response headers, by route",
            http_duration.clone(),
        );
        let flows = Family::default();
        registry.register(
            "authorization_flows",
            "Finished upstream sign-ins by provider and outcome",
            flows.clone(),
        );
        let tokens = Family::default();
        registry.register(
            "tokens_issued",
            "Access tokens issued by grant type",
            tokens.clone(),
        );
        let provider_calls = Family::default();
        registry.register(
            "provider_calls",
            "Provider component calls by provider, function and outcome",
            provider_calls.clone(),
        );
        let provider_duration: Timings<Labels<2>> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "provider_call_duration_seconds",
            "Provider component call time by provider and function",
            provider_duration.clone(),
        );
        let gateway_requests = Family::default();
        registry.register(
            "gateway_requests",
            "Requests to protected MCP servers by server and outcome",
            gateway_requests.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_duration,
            routes: Default::default(),
            flows,
            tokens,
            provider_calls,
            provider_duration,
            gateway_requests,
        }
    }

    pub fn flow(&self, provider: &str, outcome: &'static str) {
        self.flows
            .get_or_create(&[("provider", provider.into()), ("outcome", outcome.into())])
            .inc();
    }

    pub fn token_issued(&self, grant_type: &str) {
        self.tokens
            .get_or_create(&[("grant_type", grant_type.into())])
            .inc();
    }

    pub fn provider_call(&self, provider: &str, function: &str, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.provider_calls
            .get_or_create(&[
                ("provider", provider.into()),
                ("function", function.into()),
                ("outcome", outcome.into()),
            ])
            .inc();
        self.provider_duration
            .get_or_create(&[("provider", provider.into()), ("function", function.into())])
            .observe(took.as_secs_f64());
    }

    /// `outcome`: forwarded, or why the gateway answered instead of the MCP server.
    pub fn gateway(&self, server: &str, outcome: &'static str) {
        self.gateway_requests
            .get_or_create(&[("server", server.into()), ("outcome", outcome.into())])
            .inc();
    }

    fn route(&self, pattern: &str) -> Arc<str> {
        if let Some(route) = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(pattern)
        {
            return route.clone();
        }
        self.routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(pattern.to_string())
            .or_insert_with(|| Arc::from(pattern))
            .clone()
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Counts and times every request by its route pattern (never the raw path, which
/// would make a series per URL).
pub async fn track(metrics: &Metrics, request: Request, next: Next) -> Response {
    let route = metrics.route(
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or("unmatched"),
    );
    // Only standard methods name a series: made-up ones would grow the registry.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .http_duration
        .get_or_create(&RouteLabel {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

pub async fn endpoint(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

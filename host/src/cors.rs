//! CORS for web-based MCP clients (an MCP client whose OAuth runs in a browser page):
//! on discovery, registration, token, revocation and the MCP endpoints, per
//! `server.cors_origins`. Preflights are answered by the layer, never by a handler, so
//! they never meet a 401 or 405. Credentials (cookies) are never allowed: bearer
//! tokens travel in headers.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// Headers MCP clients send (streamable HTTP, 2025-06-18 through 2026-07-28).
const REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "accept",
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];

/// Headers their scripts must be able to read: the challenge that starts discovery.
const EXPOSED_HEADERS: &[&str] = &["www-authenticate", "mcp-session-id", "mcp-protocol-version"];

/// `origins`: exact origins (`https://app.example.com`), or `*` for any.
pub fn layer(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::from(Any)
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    let names = |list: &[&'static str]| -> Vec<HeaderName> {
        list.iter().map(|h| HeaderName::from_static(h)).collect()
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(names(REQUEST_HEADERS))
        .expose_headers(names(EXPOSED_HEADERS))
        .max_age(std::time::Duration::from_secs(600))
        .vary([header::ORIGIN])
}

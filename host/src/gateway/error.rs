//! Every answer the gateway gives instead of the MCP server's, in one place: its HTTP
//! status and body (a `WWW-Authenticate` challenge, or a JSON-RPC error MCP clients
//! show), its metric outcome and its audit event.

use super::Gateway;
use super::caller::Caller;
use super::jsonrpc;
use super::resource::Resource;
use crate::audit::Event;
use crate::config::AuthMode;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Debug)]
pub enum GatewayError {
    /// No credentials, or ones that do not work (the reason, when some were
    /// presented): 401 with the challenge that starts discovery.
    Unauthenticated(Option<String>),
    /// Valid, but lacking scopes: 403 `insufficient_scope` naming every scope needed,
    /// so an OAuth client can ask for them all in one new authorization.
    InsufficientScope(Vec<String>),
    /// The server-wide policy refuses the caller: 403.
    Forbidden(String),
    /// Tools, resources or prompts the policy denies: the JSON-RPC answer to each
    /// request (200), and the reasons.
    Denied { answer: Value, reasons: Vec<String> },
    /// A page on an origin that may not call this server (DNS rebinding): 403.
    ForeignOrigin(String),
    /// Too many failed authentications from this address: 429.
    RateLimited(Duration),
    /// A request authhost will not judge or pass on (encoded, malformed, headers that
    /// disagree with the body, credentials in two places).
    BadRequest {
        status: StatusCode,
        code: i64,
        message: String,
    },
    /// The body is larger than `max_request_bytes`: 413.
    TooLarge(usize),
    /// The store or the identity provider could not answer: 503.
    Unavailable(String),
    /// The MCP server could not be reached (502), did not answer in time (504), or
    /// answered something authhost cannot pass on (502).
    Upstream { status: StatusCode, message: String },
    /// authhost itself failed (what, for the client; the cause, for the log): 500.
    Internal { what: &'static str, cause: String },
}

/// JSON-RPC error code for a request authhost's policy refuses. Outside the range
/// JSON-RPC and MCP reserve (-32768 to -32000), so no client mistakes it for one of
/// theirs (-32001 is the SDKs' request timeout).
pub const POLICY_DENIED: i64 = -31403;

/// JSON-RPC error code HeaderMismatch (MCP 2026-07-28): `Mcp-Method`, `Mcp-Name` or
/// `MCP-Protocol-Version` disagree with the body.
pub const HEADER_MISMATCH: i64 = -32020;

impl GatewayError {
    /// The `outcome` label of `authhost_gateway_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            GatewayError::Unauthenticated(_) => "unauthenticated",
            GatewayError::InsufficientScope(_)
            | GatewayError::Forbidden(_)
            | GatewayError::ForeignOrigin(_) => "forbidden",
            GatewayError::Denied { .. } => "denied",
            GatewayError::RateLimited(_) => "rate_limited",
            GatewayError::BadRequest { .. } | GatewayError::TooLarge(_) => "bad_request",
            GatewayError::Unavailable(_) => "unavailable",
            GatewayError::Upstream { .. } => "upstream_error",
            GatewayError::Internal { .. } => "internal_error",
        }
    }

    /// Count it, audit it, and answer it.
    pub fn respond(
        self,
        state: &Gateway,
        resource: &Resource,
        caller: Option<&Caller>,
    ) -> Response {
        state.metrics.gateway(&resource.name, self.outcome());
        let audit = |event: &'static str, detail: String| {
            state.audit.record(Event {
                event,
                user: caller.map(|c| c.user.sub.as_str()),
                client_id: caller.and_then(|c| c.client_id.as_deref()),
                provider: caller.and_then(|c| c.provider.as_deref()),
                resource: Some(&resource.name),
                detail: Some(detail),
            })
        };
        match self {
            GatewayError::Unauthenticated(why) => {
                if let Some(why) = &why {
                    // Credentials that were presented and did not work; never the
                    // credential itself.
                    audit("authentication_failed", why.clone());
                }
                unauthorized(state, resource, why.as_deref())
            }
            GatewayError::InsufficientScope(needed) => {
                audit(
                    "access_denied",
                    format!("lacks scope `{}`", needed.join(" ")),
                );
                insufficient_scope(state, resource, &needed)
            }
            GatewayError::Forbidden(why) => {
                audit("access_denied", why.clone());
                rpc_error(
                    StatusCode::FORBIDDEN,
                    POLICY_DENIED,
                    &format!("authhost policy: {why}"),
                )
            }
            GatewayError::Denied { answer, reasons } => {
                for reason in reasons {
                    audit("access_denied", reason);
                }
                axum::Json(answer).into_response()
            }
            GatewayError::ForeignOrigin(origin) => {
                tracing::info!(
                    resource = resource.name,
                    origin,
                    "request from an origin not allowed"
                );
                rpc_error(
                    StatusCode::FORBIDDEN,
                    jsonrpc::INVALID_REQUEST,
                    &format!("requests from pages on {origin} are not allowed"),
                )
            }
            GatewayError::RateLimited(wait) => {
                let seconds = wait.as_secs().max(1);
                let mut response = rpc_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    jsonrpc::INTERNAL_ERROR,
                    &format!(
                        "too many failed authentications from your address; try again in {seconds} s"
                    ),
                );
                if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            GatewayError::BadRequest {
                status,
                code,
                message,
            } => rpc_error(status, code, &message),
            GatewayError::TooLarge(limit) => rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                jsonrpc::INVALID_REQUEST,
                &format!("the request is larger than {limit} bytes"),
            ),
            GatewayError::Unavailable(what) => rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                jsonrpc::INTERNAL_ERROR,
                &what,
            ),
            GatewayError::Upstream { status, message } => {
                rpc_error(status, jsonrpc::INTERNAL_ERROR, &message)
            }
            GatewayError::Internal { what, cause } => {
                tracing::error!(resource = resource.name, "{what}: {cause}");
                rpc_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    jsonrpc::INTERNAL_ERROR,
                    &format!("authhost {what}; see its log"),
                )
            }
        }
    }
}

/// An HTTP error whose body is a JSON-RPC error, so MCP clients show the message.
fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(jsonrpc::error(Value::Null, code, message)),
    )
        .into_response()
}

fn unauthorized(state: &Gateway, resource: &Resource, error: Option<&str>) -> Response {
    let mut challenge = match resource.settings.auth {
        AuthMode::OauthProxy | AuthMode::External => format!(
            "Bearer resource_metadata=\"{}\", scope=\"{}\"",
            state.resources.metadata_url(resource),
            resource.scopes.join(" ")
        ),
        // No flow to discover: the client must bring its token.
        AuthMode::ClientToken | AuthMode::StaticToken => {
            format!("Bearer realm=\"{}\"", resource.name)
        }
    };
    if let Some(description) = error {
        challenge.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{}\"",
            description.replace(['"', '\\'], "'")
        ));
    }
    challenged(
        StatusCode::UNAUTHORIZED,
        &challenge,
        error.unwrap_or("authentication required"),
    )
}

fn insufficient_scope(state: &Gateway, resource: &Resource, needed: &[String]) -> Response {
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\", error_description=\"the token lacks a required scope\"",
        needed.join(" "),
        state.resources.metadata_url(resource)
    );
    challenged(StatusCode::FORBIDDEN, &challenge, "insufficient_scope")
}

fn challenged(status: StatusCode, challenge: &str, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "error": message }))).into_response();
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_name_what_happened() {
        assert_eq!(
            GatewayError::Unauthenticated(None).outcome(),
            "unauthenticated"
        );
        assert_eq!(GatewayError::TooLarge(1).outcome(), "bad_request");
        assert_eq!(
            GatewayError::Upstream {
                status: StatusCode::BAD_GATEWAY,
                message: String::new()
            }
            .outcome(),
            "upstream_error"
        );
        assert!(!(-32768..=-32000).contains(&POLICY_DENIED));
    }
}

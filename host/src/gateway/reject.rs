//! The 401 and 403 answers, with the `WWW-Authenticate` challenge MCP clients read:
//! for OAuth servers it points at the protected resource metadata (RFC 9728), from
//! which clients find authhost.

use crate::config::AuthMode;
use crate::state::{AppState, Resource};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub fn unauthorized(state: &AppState, resource: &Resource, error: Option<&str>) -> Response {
    let mut challenge = match resource.settings.auth {
        AuthMode::OauthProxy => format!(
            "Bearer resource_metadata=\"{}\", scope=\"{}\"",
            state.resource_metadata_url(resource),
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
            description.replace('"', "'")
        ));
    }
    respond(
        StatusCode::UNAUTHORIZED,
        &challenge,
        error.unwrap_or("authentication required"),
    )
}

/// 403 naming every scope the operation needs, so the client can ask for them all in
/// one new authorization.
pub fn insufficient_scope(state: &AppState, resource: &Resource, needed: &[String]) -> Response {
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\", error_description=\"the token lacks a required scope\"",
        needed.join(" "),
        state.resource_metadata_url(resource)
    );
    respond(StatusCode::FORBIDDEN, &challenge, "insufficient_scope")
}

fn respond(status: StatusCode, challenge: &str, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "error": message }))).into_response();
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// 429 for an address that failed to authenticate too often, as a JSON-RPC error.
pub fn too_many(wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs().max(1);
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(super::jsonrpc::error(
            serde_json::Value::Null,
            -32603,
            &format!("too many failed authentications from your address; try again in {seconds} s"),
        )),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

//! The gateway in front of an MCP server: bearer validation (signature, expiry,
//! audience = this endpoint, grant not revoked, scopes), then a faithful streaming
//! proxy of streamable HTTP, with the user's identity in headers and never the
//! client's token.

use crate::oauth::jwt::AccessClaims;
use crate::state::{AppState, Resource};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use serde_json::json;

/// Headers authhost sets for the MCP server; anything a client sends under this
/// prefix is dropped so identities cannot be forged.
pub const IDENTITY_PREFIX: &str = "x-authhost-";

/// Hop-by-hop headers (RFC 9110 7.6.1) and those the proxy recomputes.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "content-length",
    "cookie",
];

pub async fn handle(
    State(state): State<AppState>,
    resource: Resource,
    request: Request,
) -> Response {
    let claims = match authenticate(&state, &resource, request.headers()).await {
        Ok(claims) => claims,
        Err(rejection) => return rejection,
    };
    proxy(&state, &resource, &claims, request).await
}

/// 401 with the challenge MCP clients discover the authorization server from.
fn unauthorized(state: &AppState, resource: &Resource, error: Option<&str>) -> Response {
    let mut challenge = format!(
        "Bearer resource_metadata=\"{}\", scope=\"{}\"",
        state.resource_metadata_url(resource),
        resource.scopes.join(" ")
    );
    if let Some(description) = error {
        challenge.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{}\"",
            description.replace('"', "'")
        ));
    }
    challenge_response(
        StatusCode::UNAUTHORIZED,
        &challenge,
        error.unwrap_or("authentication required"),
    )
}

fn challenge_response(status: StatusCode, challenge: &str, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "error": message }))).into_response();
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

async fn authenticate(
    state: &AppState,
    resource: &Resource,
    headers: &HeaderMap,
) -> Result<AccessClaims, Response> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return Err(unauthorized(state, resource, None));
    };
    if !state.signer.knows_key(token) {
        // Another instance may have rotated the signing key.
        if let Err(e) = state.signer.reload(&state.store, &state.sealer).await {
            tracing::error!("reloading signing keys: {e:#}");
        }
    }
    let claims = state
        .signer
        .verify(token, Some(&resource.url))
        .map_err(|why| unauthorized(state, resource, Some(&why)))?;
    match state.store.grant_is_active(&claims.gid).await {
        Ok(true) => {}
        Ok(false) => return Err(unauthorized(state, resource, Some("the grant was revoked"))),
        Err(e) => {
            tracing::error!("checking the grant: {e}");
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "authorization store unavailable",
            )
                .into_response());
        }
    }
    let granted: Vec<&str> = claims.scope.split_whitespace().collect();
    if resource
        .scopes
        .iter()
        .any(|s| !granted.contains(&s.as_str()))
    {
        let challenge = format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\", error_description=\"the token lacks a required scope\"",
            resource.scopes.join(" "),
            state.resource_metadata_url(resource)
        );
        return Err(challenge_response(
            StatusCode::FORBIDDEN,
            &challenge,
            "insufficient_scope",
        ));
    }
    Ok(claims)
}

async fn proxy(
    state: &AppState,
    resource: &Resource,
    claims: &AccessClaims,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let mut url = resource.upstream.clone();
    url.set_query(parts.uri.query());
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        let lower = name.as_str();
        if !NOT_FORWARDED.contains(&lower) && !lower.starts_with(IDENTITY_PREFIX) {
            headers.append(name.clone(), value.clone());
        }
    }
    for (name, value) in identity_headers(claims) {
        headers.insert(name, value);
    }
    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    let upstream = state
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(
                resource = resource.name,
                "MCP server unreachable: {}",
                error.without_url()
            );
            let body = json!({
                "jsonrpc": "2.0", "id": null,
                "error": { "code": -32603, "message": format!("the MCP server behind authhost ({}) is unreachable", resource.name) },
            });
            return (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response();
        }
    };
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    // Streamed as it arrives: SSE events reach the client one by one.
    let stream = upstream.bytes_stream().map_err(std::io::Error::other);
    response
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

fn identity_headers(claims: &AccessClaims) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.push((HeaderName::from_static(name), value));
        }
    };
    add("x-authhost-subject", &claims.sub);
    add("x-authhost-provider", &claims.idp);
    add("x-authhost-client-id", &claims.client_id);
    add("x-authhost-scope", &claims.scope);
    if let Some(email) = &claims.email {
        add("x-authhost-email", email);
    }
    if let Some(name) = &claims.name {
        add("x-authhost-name", name);
    }
    if let Some(username) = &claims.preferred_username {
        add("x-authhost-username", username);
    }
    if !claims.groups.is_empty() {
        add("x-authhost-groups", &claims.groups.join(","));
    }
    out
}

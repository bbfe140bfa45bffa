//! The proxy to the MCP server: the caller's identity in headers and/or a signed
//! identity token, their upstream token where configured, never the client's own
//! credentials; bodies streamed both ways, SSE events passed on as they arrive.

use super::caller::{Caller, UpstreamToken};
use super::upstream_token::{self, Unavailable};
use super::{jsonrpc, reject};
use crate::config::IdentityConfig;
use crate::oauth::jwt::IDENTITY_TOKEN_TYPE;
use crate::state::{AppState, Resource};
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use serde::Serialize;
use std::time::Duration;

/// Headers authhost sets for the MCP server; anything a client sends under this
/// prefix is dropped so identities cannot be forged.
const IDENTITY_PREFIX: &str = "x-authhost-";

/// Hop-by-hop headers (RFC 9110 7.6.1) and those the proxy recomputes or must not pass.
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

/// The identity header names of one MCP server, checked at start.
#[derive(Debug)]
pub struct IdentityHeaders {
    pub send: bool,
    user_id: HeaderName,
    username: HeaderName,
    email: HeaderName,
    name: HeaderName,
    groups: HeaderName,
    roles: HeaderName,
    client_id: HeaderName,
    token: Option<HeaderName>,
    upstream_token: HeaderName,
}

impl IdentityHeaders {
    /// Every problem under `key` (`mcp_servers.<name>`).
    pub fn new(
        identity: &IdentityConfig,
        upstream_token_header: &str,
        key: &str,
    ) -> Result<IdentityHeaders, Vec<String>> {
        let mut problems = Vec::new();
        let mut name = |value: &str, at: &str| match HeaderName::try_from(value) {
            Ok(name) => name,
            Err(_) => {
                problems.push(format!("{key}.{at}: `{value}` is not a valid header name"));
                HeaderName::from_static("x-invalid")
            }
        };
        let headers = IdentityHeaders {
            send: identity.headers,
            user_id: name(&identity.user_id_header, "identity.user_id_header"),
            username: name(&identity.username_header, "identity.username_header"),
            email: name(&identity.email_header, "identity.email_header"),
            name: name(&identity.name_header, "identity.name_header"),
            groups: name(&identity.groups_header, "identity.groups_header"),
            roles: name(&identity.roles_header, "identity.roles_header"),
            client_id: name(&identity.client_id_header, "identity.client_id_header"),
            token: identity
                .token
                .then(|| name(&identity.token_header, "identity.token_header")),
            upstream_token: name(upstream_token_header, "upstream_token_header"),
        };
        if problems.is_empty() {
            Ok(headers)
        } else {
            Err(problems)
        }
    }

    /// Whether a client-sent header must be dropped (it could forge what we set).
    fn is_ours(&self, name: &HeaderName) -> bool {
        name.as_str().starts_with(IDENTITY_PREFIX)
            || [
                &self.user_id,
                &self.username,
                &self.email,
                &self.name,
                &self.groups,
                &self.roles,
                &self.client_id,
                &self.upstream_token,
            ]
            .contains(&name)
            || self.token.as_ref() == Some(name)
    }
}

/// The identity token's claims: who, for which MCP server, briefly.
#[derive(Serialize)]
struct IdentityClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    #[serde(flatten)]
    user: &'a super::caller::User,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idp: Option<&'a str>,
    auth: &'static str,
    scope: String,
}

pub async fn proxy(
    state: &AppState,
    resource: &Resource,
    caller: &Caller,
    parts: Parts,
    body: reqwest::Body,
    filter_tools: Option<jsonrpc::ToolFilter>,
) -> Response {
    let headers = match upstream_headers(state, resource, caller, &parts.headers).await {
        Ok(headers) => headers,
        Err(response) => return response,
    };
    let mut url = resource.upstream.clone();
    url.set_query(parts.uri.query());
    let send = state
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send();
    let timeout = Duration::from_millis(resource.settings.timeout_ms);
    let upstream = match tokio::time::timeout(timeout, send).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            tracing::warn!(
                resource = resource.name,
                "MCP server unreachable: {}",
                error.without_url()
            );
            state.metrics.gateway(&resource.name, "upstream_error");
            return upstream_error(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "the MCP server behind authhost ({}) is unreachable",
                    resource.name
                ),
            );
        }
        Err(_) => {
            tracing::warn!(
                resource = resource.name,
                "MCP server did not answer within {timeout:?}"
            );
            state.metrics.gateway(&resource.name, "upstream_error");
            return upstream_error(
                StatusCode::GATEWAY_TIMEOUT,
                &format!(
                    "the MCP server behind authhost ({}) did not answer within {} ms",
                    resource.name, resource.settings.timeout_ms
                ),
            );
        }
    };
    state.metrics.gateway(&resource.name, "forwarded");
    let mut response = Response::builder().status(upstream.status());
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let keep = filter_tools.filter(|_| upstream.status().is_success());
    for (name, value) in upstream.headers() {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    let body = match keep {
        Some(keep) if content_type.starts_with("application/json") => {
            match upstream.bytes().await {
                Ok(bytes) => Body::from(
                    jsonrpc::filter_json_body(&bytes, &*keep).unwrap_or_else(|| bytes.to_vec()),
                ),
                Err(e) => {
                    tracing::warn!(
                        resource = resource.name,
                        "reading the MCP server's answer: {e}"
                    );
                    return upstream_error(
                        StatusCode::BAD_GATEWAY,
                        "the MCP server's answer broke off",
                    );
                }
            }
        }
        Some(keep) if content_type.starts_with("text/event-stream") => {
            let stream = upstream.bytes_stream().map_err(std::io::Error::other);
            Body::from_stream(jsonrpc::filter_sse(stream, keep))
        }
        // Streamed as it arrives: SSE events reach the client one by one, and a
        // client going away drops the upstream request with it.
        _ => Body::from_stream(upstream.bytes_stream().map_err(std::io::Error::other)),
    };
    response
        .body(body)
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

async fn upstream_headers(
    state: &AppState,
    resource: &Resource,
    caller: &Caller,
    incoming: &HeaderMap,
) -> Result<HeaderMap, Response> {
    let ours = &resource.identity_headers;
    let mut headers = HeaderMap::new();
    for (name, value) in incoming {
        if !NOT_FORWARDED.contains(&name.as_str()) && !ours.is_ours(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let mut set = |name: &HeaderName, value: &str| {
        // Values that cannot be header values (non-visible ASCII) are left out.
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name.clone(), value);
        }
    };
    let user = &caller.user;
    if ours.send {
        set(&ours.user_id, &user.sub);
        for (name, value) in [
            (&ours.username, &user.preferred_username),
            (&ours.email, &user.email),
            (&ours.name, &user.name),
            (&ours.client_id, &caller.client_id),
        ] {
            if let Some(value) = value {
                set(name, value);
            }
        }
        if !user.groups.is_empty() {
            set(&ours.groups, &user.groups.join(","));
        }
        if !user.roles.is_empty() {
            set(&ours.roles, &user.roles.join(","));
        }
        set(
            &HeaderName::from_static("x-authhost-auth"),
            caller.via.as_str(),
        );
        if let Some(provider) = &caller.provider {
            set(&HeaderName::from_static("x-authhost-provider"), provider);
        }
    }
    if let Some(token_header) = &ours.token {
        let now = crate::clock::now();
        let claims = IdentityClaims {
            iss: &state.issuer,
            aud: resource
                .settings
                .identity
                .token_audience
                .as_deref()
                .unwrap_or(resource.upstream.as_str()),
            iat: now,
            exp: now + resource.settings.identity.token_ttl as i64,
            user,
            client_id: caller.client_id.as_deref(),
            idp: caller.provider.as_deref(),
            auth: caller.via.as_str(),
            scope: caller.scopes.join(" "),
        };
        match state.signer.sign_as(IDENTITY_TOKEN_TYPE, &claims) {
            Ok(token) => set(token_header, &token),
            Err(e) => {
                tracing::error!("signing an identity token: {e:#}");
                return Err(upstream_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "authhost could not sign the identity token",
                ));
            }
        }
    }
    if resource.settings.forward_upstream_token
        && let Some(token) = upstream_access_token(state, resource, caller).await?
    {
        let value = if ours.upstream_token == header::AUTHORIZATION {
            format!("Bearer {}", token.expose())
        } else {
            token.expose().to_string()
        };
        set(&ours.upstream_token, &value);
    }
    Ok(headers)
}

async fn upstream_access_token(
    state: &AppState,
    resource: &Resource,
    caller: &Caller,
) -> Result<Option<crate::secret::Secret>, Response> {
    let (grant_id, sealed) = match &caller.upstream {
        UpstreamToken::None => return Ok(None),
        UpstreamToken::Presented(token) => return Ok(Some(token.clone())),
        UpstreamToken::Grant { grant_id, sealed } => (grant_id, sealed),
    };
    let owner = upstream_token::GrantOwner {
        grant_id,
        subject: &caller.user.sub,
        client_id: caller.client_id.as_deref(),
        provider: caller.provider.as_deref().unwrap_or_default(),
    };
    match upstream_token::access_token(state, &owner, sealed.as_deref()).await {
        Ok(token) => Ok(token),
        Err(Unavailable::SignInAgain(why)) => {
            // The grant cannot serve this server any more: end it, so the client's
            // refresh fails too and it signs the user in again.
            if let Err(e) = state
                .store
                .revoke_grant(grant_id, crate::clock::now())
                .await
            {
                tracing::error!("revoking a grant whose upstream token died: {e}");
            }
            state.audit.record(crate::audit::Event {
                event: "upstream_token_expired",
                user: Some(&caller.user.sub),
                client_id: caller.client_id.as_deref(),
                provider: caller.provider.as_deref(),
                resource: Some(&resource.name),
                detail: Some(why.clone()),
            });
            Err(reject::unauthorized(
                state,
                resource,
                Some(&format!("{why}; sign in again")),
            ))
        }
        Err(Unavailable::ProviderFailed(why)) => {
            tracing::warn!(
                provider = caller.provider.as_deref(),
                "refreshing an upstream token: {why}"
            );
            Err(upstream_error(
                StatusCode::BAD_GATEWAY,
                "authhost could not refresh your upstream token; try again shortly",
            ))
        }
    }
}

/// An HTTP error whose body is a JSON-RPC error, so MCP clients show the message.
pub fn upstream_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(jsonrpc::error(serde_json::Value::Null, -32603, message)),
    )
        .into_response()
}

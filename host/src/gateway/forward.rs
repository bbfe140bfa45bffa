//! The proxy to the MCP server: the caller's identity in headers and/or a signed
//! identity token, their upstream token where configured, never the client's own
//! credentials and nothing a client sends that could pose as identity or as a proxy's
//! word; bodies streamed both ways, SSE events passed on as they arrive.

use super::caller::{Caller, UpstreamToken, User};
use super::error::GatewayError;
use super::jsonrpc;
use super::upstream_token::{self, Unavailable};
use crate::config::IdentityConfig;
use crate::oauth::jwt::IDENTITY_TOKEN_TYPE;
use crate::state::{AppState, Resource};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::TryStreamExt;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;

/// Headers authhost sets for the MCP server; anything a client sends under this
/// prefix (in any spelling) is dropped so identities cannot be forged.
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

/// What proxies say about the request: only authhost says it to the MCP server. The
/// browser's `Origin` was authhost's to check; the MCP server's client is authhost.
const PROXY_HEADERS: &[&str] = &["forwarded", "x-real-ip", "origin"];
const PROXY_PREFIXES: &[&str] = &["x-forwarded-", "x-auth-request-"];

/// Characters identity header values carry as they are; every other byte of their
/// UTF-8 is percent-encoded (RFC 3986), `%` and `,` (the list separator) included.
const HEADER_SAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b'%')
    .add(b',')
    .add(b'"')
    .add(b'\\')
    .add(0x7f);

/// A header name as servers behind CGI/WSGI-style stacks read it: case folded, `_`
/// taken for `-` (`X_Authhost_Groups` is `X-Authhost-Groups` there).
fn read_as(name: &HeaderName) -> String {
    name.as_str().replace('_', "-")
}

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

    fn ours(&self) -> impl Iterator<Item = &HeaderName> {
        [
            &self.user_id,
            &self.username,
            &self.email,
            &self.name,
            &self.groups,
            &self.roles,
            &self.client_id,
            &self.upstream_token,
        ]
        .into_iter()
        .chain(&self.token)
    }
}

/// Whether a client-sent header must not reach the MCP server: it could forge what
/// authhost says (identity, proxy headers), carries the client's credentials, or is
/// the proxy's own business.
fn dropped(resource: &Resource, name: &HeaderName) -> bool {
    let read = read_as(name);
    (NOT_FORWARDED.contains(&read.as_str()) && read != "content-length")
        || PROXY_HEADERS.contains(&read.as_str())
        || PROXY_PREFIXES.iter().any(|p| read.starts_with(p))
        || read.starts_with(IDENTITY_PREFIX)
        || resource
            .identity_headers
            .ours()
            .chain(&resource.api_key_headers)
            .any(|ours| read_as(ours) == read)
}

/// The identity token's claims: who, for which MCP server, briefly.
#[derive(Serialize)]
struct IdentityClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    #[serde(flatten)]
    user: &'a User,
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
    streamed: bool,
    filter: Option<jsonrpc::Filter>,
) -> Result<Response, GatewayError> {
    let mut headers = upstream_headers(state, resource, caller, &parts).await?;
    if !streamed {
        // A body re-serialised from what was judged has its own length.
        headers.remove(header::CONTENT_LENGTH);
    }
    if filter.is_some() {
        // A list answer must be read to be filtered: no compression.
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    let mut url = resource.upstream.clone();
    url.set_query(parts.uri.query());
    let send = state
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send();
    let timeout = Duration::from_millis(resource.settings.timeout_ms);
    let unreachable = |status, message: String| GatewayError::Upstream { status, message };
    let upstream = match tokio::time::timeout(timeout, send).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            tracing::warn!(
                resource = resource.name,
                "MCP server unreachable: {}",
                error.without_url()
            );
            return Err(unreachable(
                StatusCode::BAD_GATEWAY,
                format!(
                    "the MCP server behind authhost ({}) is unreachable",
                    resource.name
                ),
            ));
        }
        Err(_) => {
            tracing::warn!(
                resource = resource.name,
                "MCP server did not answer within {timeout:?}"
            );
            return Err(unreachable(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the MCP server behind authhost ({}) did not answer within {} ms",
                    resource.name, resource.settings.timeout_ms
                ),
            ));
        }
    };
    let status = upstream.status();
    // The MCP server's own challenge would send the client to another authorization
    // server than authhost: it is authhost's business, not the client's.
    let challenged = upstream.headers().contains_key(header::WWW_AUTHENTICATE);
    if status == StatusCode::UNAUTHORIZED || (status == StatusCode::FORBIDDEN && challenged) {
        tracing::warn!(
            resource = resource.name,
            status = status.as_u16(),
            "the MCP server refused authhost's request; check that it trusts authhost (identity headers, tokens) instead of asking clients for its own credentials"
        );
        return Err(unreachable(
            StatusCode::BAD_GATEWAY,
            format!(
                "the MCP server behind authhost ({}) refused the request (HTTP {}); its operator must let authhost in",
                resource.name,
                status.as_u16()
            ),
        ));
    }
    let mut response = Response::builder().status(status);
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let filter = filter.filter(|_| status.is_success());
    for (name, value) in upstream.headers() {
        let cookie = *name == header::SET_COOKIE && !resource.settings.relay_cookies;
        // An answer passed on unchanged keeps its length (no re-chunking).
        let length = *name == header::CONTENT_LENGTH && filter.is_none();
        if (!NOT_FORWARDED.contains(&name.as_str()) || length) && !cookie {
            response = response.header(name, value);
        }
    }
    let body = match filter {
        None => Body::from_stream(upstream.bytes_stream().map_err(std::io::Error::other)),
        Some(filter) => filtered(resource, upstream, &content_type, filter).await?,
    };
    Ok(response
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

/// The answer to a request that lists tools, resources or prompts, with what the
/// caller may not use taken out. Anything that cannot be read (compressed, not JSON)
/// is not passed on: it may hold what the policy hides.
async fn filtered(
    resource: &Resource,
    upstream: reqwest::Response,
    content_type: &str,
    filter: jsonrpc::Filter,
) -> Result<Body, GatewayError> {
    let refused = |why: String| {
        tracing::warn!(
            resource = resource.name,
            "a list answer authhost cannot filter: {why}"
        );
        GatewayError::Upstream {
            status: StatusCode::BAD_GATEWAY,
            message: format!("the MCP server's answer cannot be checked by authhost ({why})"),
        }
    };
    if let Some(encoding) = upstream
        .headers()
        .get(header::CONTENT_ENCODING)
        .filter(|e| e.as_bytes() != b"identity")
    {
        return Err(refused(format!("Content-Encoding: {encoding:?}")));
    }
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("text/event-stream") {
        // Streamed as it arrives: each event is filtered as soon as it is complete.
        let stream = upstream.bytes_stream().map_err(std::io::Error::other);
        return Ok(Body::from_stream(jsonrpc::filter_sse(stream, filter)));
    }
    let bytes = upstream
        .bytes()
        .await
        .map_err(|e| refused(format!("it broke off: {}", e.without_url())))?;
    if bytes.is_empty() {
        return Ok(Body::empty());
    }
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(refused(format!("Content-Type `{media}`")));
    }
    match jsonrpc::filter_json_body(&bytes, &*filter) {
        Ok(Some(changed)) => Ok(Body::from(changed)),
        Ok(None) => Ok(Body::from(bytes)),
        Err(why) => Err(refused(why)),
    }
}

async fn upstream_headers(
    state: &AppState,
    resource: &Resource,
    caller: &Caller,
    parts: &Parts,
) -> Result<HeaderMap, GatewayError> {
    let ours = &resource.identity_headers;
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if !dropped(resource, name) {
            headers.append(name.clone(), value.clone());
        }
    }
    set_forwarded(state, parts, &mut headers);
    let mut set = |name: &HeaderName, value: &str| {
        let encoded = percent_encoding::utf8_percent_encode(value, HEADER_SAFE).to_string();
        if let Ok(value) = HeaderValue::from_str(&encoded) {
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
        for (name, list) in [(&ours.groups, &user.groups), (&ours.roles, &user.roles)] {
            if !list.is_empty() {
                // Each entry encoded on its own (a `,` in one becomes `%2C`), then joined.
                let encoded: Vec<String> = list
                    .iter()
                    .map(|v| percent_encoding::utf8_percent_encode(v, HEADER_SAFE).to_string())
                    .collect();
                if let Ok(value) = HeaderValue::from_str(&encoded.join(",")) {
                    headers.insert(name.clone(), value);
                }
            }
        }
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        set("x-authhost-auth", caller.via.as_str());
        if let Some(provider) = &caller.provider {
            set("x-authhost-provider", provider);
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
        let token = state
            .signer
            .sign_as(IDENTITY_TOKEN_TYPE, &claims)
            .map_err(|e| {
                tracing::error!("signing an identity token: {e:#}");
                GatewayError::Upstream {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "authhost could not sign the identity token".into(),
                }
            })?;
        if let Ok(value) = HeaderValue::from_str(&token) {
            headers.insert(token_header.clone(), value);
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
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(ours.upstream_token.clone(), value);
        }
    }
    Ok(headers)
}

/// `X-Forwarded-For`, `-Proto` and `-Host` as authhost knows them: the client address
/// appended to what a trusted proxy in front said (and only then), the public origin
/// from `base_url`.
fn set_forwarded(state: &AppState, parts: &Parts, headers: &mut HeaderMap) {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let mut chain = Vec::new();
    if let Some(peer) = peer {
        if state.trusted_proxies.iter().any(|net| net.contains(&peer)) {
            chain.extend(
                parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(String::from),
            );
        }
        chain.push(peer.to_string());
    }
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    if !chain.is_empty() {
        set("x-forwarded-for", &chain.join(", "));
    }
    if let Ok(base) = url::Url::parse(&state.issuer) {
        set("x-forwarded-proto", base.scheme());
        if let Some(host) = base.host_str() {
            let host = match base.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            };
            set("x-forwarded-host", &host);
        }
    }
}

async fn upstream_access_token(
    state: &AppState,
    resource: &Resource,
    caller: &Caller,
) -> Result<Option<crate::secret::Secret>, GatewayError> {
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
            Err(GatewayError::Unauthenticated(Some(format!(
                "{why}; sign in again"
            ))))
        }
        Err(Unavailable::ProviderFailed(why)) => {
            tracing::warn!(
                provider = caller.provider.as_deref(),
                "refreshing an upstream token: {why}"
            );
            Err(GatewayError::Upstream {
                status: StatusCode::BAD_GATEWAY,
                message: "authhost could not refresh your upstream token; try again shortly".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_values_are_percent_encoded_where_needed() {
        let encode = |v: &str| percent_encoding::utf8_percent_encode(v, HEADER_SAFE).to_string();
        assert_eq!(encode("Alice Example"), "Alice Example");
        assert_eq!(encode("alice@example.com"), "alice@example.com");
        assert_eq!(encode("Zoë"), "Zo%C3%AB");
        assert_eq!(encode("山田"), "%E5%B1%B1%E7%94%B0");
        assert_eq!(encode("a,b"), "a%2Cb");
        assert_eq!(encode("100%"), "100%25");
        assert_eq!(encode("x\r\ny"), "x%0D%0Ay");
    }

    #[test]
    fn header_names_are_read_as_wsgi_does() {
        assert_eq!(
            read_as(&HeaderName::from_static("x_authhost_groups")),
            "x-authhost-groups"
        );
        assert_eq!(
            read_as(&HeaderName::from_static("x-forwarded_user")),
            "x-forwarded-user"
        );
    }
}

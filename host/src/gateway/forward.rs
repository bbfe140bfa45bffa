//! The proxy to the MCP server: the caller's identity in headers and/or a signed
//! identity token, their upstream token where configured, never the client's own
//! credentials and nothing a client sends that could pose as identity or as a proxy's
//! word; bodies streamed both ways, SSE events passed on as they arrive.

use super::Gateway;
use super::caller::{Caller, UpstreamToken};
use super::error::GatewayError;
use super::jsonrpc;
use super::resource::Resource;
use crate::config::IdentityConfig;
use crate::domain::grants::{GrantOwner, Unavailable};
use crate::domain::keys::IDENTITY_TOKEN_TYPE;
use crate::domain::user::User;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
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

/// A value as identity headers carry it.
fn encode(value: &str) -> Option<HeaderValue> {
    HeaderValue::try_from(percent(value)).ok()
}

fn percent(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, HEADER_SAFE).to_string()
}

/// A user's identity as header values, encoded once: UTF-8, percent-encoded where it
/// is not plain ASCII (and `%`, `,`); lists joined with `,`, each entry encoded on its
/// own (a `,` in one becomes `%2C`).
#[derive(Debug, Default)]
pub struct IdentityValues {
    sub: Option<HeaderValue>,
    username: Option<HeaderValue>,
    email: Option<HeaderValue>,
    name: Option<HeaderValue>,
    groups: Option<HeaderValue>,
    roles: Option<HeaderValue>,
}

impl IdentityValues {
    pub fn of(user: &User) -> IdentityValues {
        let list = |items: &[String]| {
            let encoded: Vec<String> = items.iter().map(|v| percent(v)).collect();
            (!items.is_empty())
                .then(|| HeaderValue::try_from(encoded.join(",")).ok())
                .flatten()
        };
        IdentityValues {
            sub: encode(&user.sub),
            username: user.preferred_username.as_deref().and_then(encode),
            email: user.email.as_deref().and_then(encode),
            name: user.name.as_deref().and_then(encode),
            groups: list(&user.groups),
            roles: list(&user.roles),
        }
    }
}

/// Whether two header names are one as servers behind CGI/WSGI-style stacks read
/// them: case folded (names here are lower case already), `_` taken for `-`
/// (`X_Authhost_Groups` is `X-Authhost-Groups` there).
fn same_name(a: &str, b: &str) -> bool {
    let fold = |c: u8| if c == b'_' { b'-' } else { c };
    a.len() == b.len() && a.bytes().map(fold).eq(b.bytes().map(fold))
}

fn starts_with_name(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len() && same_name(&name[..prefix.len()], prefix)
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
    let name = name.as_str();
    let any = |list: &[&str]| list.iter().any(|n| same_name(name, n));
    (any(NOT_FORWARDED) && name != "content-length")
        || any(PROXY_HEADERS)
        || PROXY_PREFIXES.iter().any(|p| starts_with_name(name, p))
        || starts_with_name(name, IDENTITY_PREFIX)
        || resource
            .identity_headers
            .ours()
            .chain(&resource.api_key_headers)
            .any(|ours| same_name(name, ours.as_str()))
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

/// The connection pool to MCP servers: plain HTTP or TLS (web PKI roots), HTTP/1.1,
/// `TCP_NODELAY`.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Body>;

pub fn upstream_client() -> anyhow::Result<UpstreamClient> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.enforce_http(false);
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        // Below common servers' keep-alive (uvicorn closes idle connections after
        // 5 s): a connection the server is closing is not reused.
        .pool_idle_timeout(Duration::from_secs(4))
        .build(https))
}

pub async fn proxy(
    state: &Gateway,
    resource: &Resource,
    caller: &Caller,
    parts: Parts,
    body: Body,
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
    let mut request = axum::http::Request::new(body);
    *request.method_mut() = parts.method;
    *request.uri_mut() = resource.upstream_uri(parts.uri.query());
    *request.headers_mut() = headers;
    let timeout = Duration::from_millis(resource.settings.timeout_ms);
    let unreachable = |status, message: String| GatewayError::Upstream { status, message };
    let upstream = match tokio::time::timeout(timeout, state.http.request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            tracing::warn!(
                resource = resource.name,
                "MCP server unreachable: {}",
                std::error::Error::source(&error)
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| error.to_string())
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
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let filter = filter.filter(|_| status.is_success());
    let (upstream, incoming) = upstream.into_parts();
    let encoded = upstream
        .headers
        .get(header::CONTENT_ENCODING)
        .filter(|e| e.as_bytes() != b"identity")
        .cloned();
    let mut headers = HeaderMap::with_capacity(upstream.headers.len());
    let mut last = None;
    for (name, value) in upstream.headers {
        // A name is given once for its first value; later values of it come without.
        let Some(name) = name.or_else(|| last.clone()) else {
            continue;
        };
        last = Some(name.clone());
        let cookie = name == header::SET_COOKIE && !resource.settings.relay_cookies;
        // An answer passed on unchanged keeps its length (no re-chunking).
        let length = name == header::CONTENT_LENGTH && filter.is_none();
        if (!NOT_FORWARDED.contains(&name.as_str()) || length) && !cookie {
            headers.append(name, value);
        }
    }
    let body = match filter {
        // Streamed as it arrives: SSE events reach the client one by one, and a
        // client going away drops the upstream request with it.
        None => Body::new(incoming),
        Some(filter) => filtered(resource, incoming, encoded, &content_type, filter).await?,
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// The answer to a request that lists tools, resources or prompts, with what the
/// caller may not use taken out. Anything that cannot be read (compressed, not JSON)
/// is not passed on: it may hold what the policy hides.
async fn filtered(
    resource: &Resource,
    incoming: Incoming,
    encoding: Option<HeaderValue>,
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
    if let Some(encoding) = encoding {
        return Err(refused(format!("Content-Encoding: {encoding:?}")));
    }
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("text/event-stream") {
        // Streamed as it arrives: each event is filtered as soon as it is complete.
        return Ok(Body::from_stream(jsonrpc::filter_sse(
            incoming.into_data_stream(),
            filter,
        )));
    }
    let bytes = incoming
        .collect()
        .await
        .map_err(|e| refused(format!("it broke off: {e}")))?
        .to_bytes();
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
    state: &Gateway,
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
    let user = &caller.user;
    if ours.send {
        let identity = &caller.identity;
        for (name, value) in [
            (&ours.user_id, &identity.sub),
            (&ours.username, &identity.username),
            (&ours.email, &identity.email),
            (&ours.name, &identity.name),
            (&ours.groups, &identity.groups),
            (&ours.roles, &identity.roles),
        ] {
            if let Some(value) = value {
                headers.insert(name.clone(), value.clone());
            }
        }
        if let Some(client_id) = caller.client_id.as_deref().and_then(encode) {
            headers.insert(ours.client_id.clone(), client_id);
        }
        headers.insert(
            HeaderName::from_static("x-authhost-auth"),
            HeaderValue::from_static(caller.via.as_str()),
        );
        if let Some(provider) = caller.provider.as_deref().and_then(encode) {
            headers.insert(HeaderName::from_static("x-authhost-provider"), provider);
        }
    }
    if let Some(token_header) = &ours.token {
        let now = state.clock.now();
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
            .map_err(|e| GatewayError::Internal {
                what: "could not sign the identity token",
                cause: format!("{e:#}"),
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
fn set_forwarded(state: &Gateway, parts: &Parts, headers: &mut HeaderMap) {
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
    state: &Gateway,
    resource: &Resource,
    caller: &Caller,
) -> Result<Option<crate::secret::Secret>, GatewayError> {
    let (grant_id, sealed) = match &caller.upstream {
        UpstreamToken::None => return Ok(None),
        UpstreamToken::Presented(token) => return Ok(Some(token.clone())),
        UpstreamToken::Grant { grant_id, sealed } => (grant_id, sealed),
    };
    let owner = GrantOwner {
        grant_id,
        subject: &caller.user.sub,
        client_id: caller.client_id.as_deref(),
        provider: caller.provider.as_deref().unwrap_or_default(),
    };
    match state
        .grants
        .upstream_access_token(&owner, sealed.as_deref())
        .await
    {
        Ok(token) => Ok(token),
        Err(Unavailable::SignInAgain(why)) => {
            // The grant cannot serve this server any more: end it, so the client's
            // refresh fails too and it signs the user in again.
            if let Err(e) = state.store.revoke_grant(grant_id, state.clock.now()).await {
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
        let encode = percent;
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
        assert!(same_name("x_authhost_groups", "x-authhost-groups"));
        assert!(same_name("x-forwarded_user", "x-forwarded-user"));
        assert!(!same_name("x-forwarded-users", "x-forwarded-user"));
        assert!(starts_with_name("x_auth_request_user", "x-auth-request-"));
    }
}

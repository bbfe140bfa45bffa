//! Outbound HTTP for components: the allowlist at every redirect hop, client
//! authentication attached by the host, a time limit and a response size limit.

use super::bindings::{ClientAuth, HttpError, Request, Response};
use super::sandbox::{AllowList, Limits};
use crate::secret::Secret;
use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use url::Url;

const MAX_REDIRECTS: usize = 5;

/// The upstream OAuth client credentials of one provider instance.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Option<Secret>,
}

/// Everything a component's request is checked against.
pub struct Policy<'a> {
    pub allowed: &'a AllowList,
    pub limits: &'a Limits,
    pub credentials: &'a ClientCredentials,
}

/// Send a component's request under `policy`.
pub async fn send(
    client: &reqwest::Client,
    policy: &Policy<'_>,
    request: Request,
) -> Result<Response, HttpError> {
    match tokio::time::timeout(
        policy.limits.http_timeout,
        send_inner(client, policy, request),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout),
    }
}

async fn send_inner(
    client: &reqwest::Client,
    policy: &Policy<'_>,
    request: Request,
) -> Result<Response, HttpError> {
    let mut url = Url::parse(&request.url)
        .map_err(|e| HttpError::InvalidRequest(format!("invalid URL `{}`: {e}", request.url)))?;
    let mut method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| HttpError::InvalidRequest(format!("invalid method `{}`", request.method)))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("invalid header name `{name}`")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| HttpError::InvalidRequest(format!("invalid value for header `{name}`")))?;
        headers.append(name, value);
    }
    let mut body = request.body;
    let authenticated = attach_client_auth(
        request.client_auth,
        policy.credentials,
        &mut headers,
        &mut body,
    )?;

    for _ in 0..=MAX_REDIRECTS {
        policy.allowed.check(&url).map_err(HttpError::Denied)?;
        let mut builder = client
            .request(method.clone(), url.clone())
            .headers(headers.clone());
        if let Some(body) = &body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await.map_err(network_error)?;
        // A request carrying the client secret is never replayed elsewhere.
        let next = match authenticated {
            true => None,
            false => redirect_target(&response, &url)?,
        };
        let Some(next) = next else {
            return read_response(response, policy.limits.max_response_bytes).await;
        };
        if next.origin() != url.origin() {
            headers.remove(AUTHORIZATION);
        }
        // RFC 9110 15.4: 303, and 301/302 after POST, continue as GET without a body.
        let status = response.status();
        if status == StatusCode::SEE_OTHER
            || (method == Method::POST
                && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND))
        {
            method = Method::GET;
            body = None;
        }
        url = next;
    }
    Err(HttpError::Network(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// Where a 3xx response sends the request next, if anywhere.
fn redirect_target(response: &reqwest::Response, url: &Url) -> Result<Option<Url>, HttpError> {
    if !response.status().is_redirection() {
        return Ok(None);
    }
    let Some(location) = response.headers().get(LOCATION) else {
        return Ok(None);
    };
    location
        .to_str()
        .ok()
        .and_then(|l| url.join(l).ok())
        .map(Some)
        .ok_or_else(|| HttpError::Network("redirect with an invalid Location".into()))
}

/// Add the client secret the way the component asked. Returns whether it did.
fn attach_client_auth(
    auth: ClientAuth,
    credentials: &ClientCredentials,
    headers: &mut HeaderMap,
    body: &mut Option<Vec<u8>>,
) -> Result<bool, HttpError> {
    let Some(secret) = &credentials.client_secret else {
        return Ok(false);
    };
    match auth {
        ClientAuth::None => Ok(false),
        ClientAuth::Basic => {
            // RFC 6749 2.3.1: both parts form-encoded before base64.
            let pair = format!(
                "{}:{}",
                form_encode(&credentials.client_id),
                form_encode(secret.expose())
            );
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                HttpError::InvalidRequest("client credentials not encodable".into())
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
            Ok(true)
        }
        ClientAuth::FormPost => {
            let mut form = body.take().unwrap_or_default();
            let mut extra = url::form_urlencoded::Serializer::new(String::new());
            // Most providers send client_id themselves; a second copy is refused.
            if !url::form_urlencoded::parse(&form).any(|(k, _)| k == "client_id") {
                extra.append_pair("client_id", &credentials.client_id);
            }
            let extra = extra.append_pair("client_secret", secret.expose()).finish();
            if !form.is_empty() {
                form.push(b'&');
            }
            form.extend_from_slice(extra.as_bytes());
            *body = Some(form);
            Ok(true)
        }
    }
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn read_response(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Response, HttpError> {
    if response.content_length().unwrap_or(0) > max_bytes as u64 {
        return Err(HttpError::TooLarge(max_bytes as u64));
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network_error)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(HttpError::TooLarge(max_bytes as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn network_error(error: reqwest::Error) -> HttpError {
    if error.is_timeout() {
        return HttpError::Timeout;
    }
    // The URL is ours to show; reqwest's chain names the cause (refused, DNS, TLS).
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    HttpError::Network(message)
}

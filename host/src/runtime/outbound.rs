//! Outbound HTTP for components: the allowlist at every redirect hop, client
//! authentication attached by the host, a time limit and a response size limit.

use super::bindings::{ClientAuth, HttpError, Request, Response};
use super::sandbox::{AllowList, Limits};
use crate::secret::Secret;
use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use url::Url;

/// IdP APIs redirect once or twice (a regional host, a trailing slash); more is a loop
/// or a walk off the allowed hosts, each hop of which is checked anyway.
const MAX_REDIRECTS: usize = 5;

/// The upstream OAuth client credentials of one provider instance.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Option<Secret>,
}

/// Everything a component's request is checked against.
pub struct OutboundPolicy<'a> {
    pub allowed: &'a AllowList,
    pub limits: &'a Limits,
    pub credentials: &'a ClientCredentials,
}

/// Send a component's request under `policy`.
pub async fn send(
    client: &reqwest::Client,
    policy: &OutboundPolicy<'_>,
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
    policy: &OutboundPolicy<'_>,
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
    match (auth, &credentials.client_secret) {
        (ClientAuth::None, _) => Ok(false),
        // A public client (no secret) still names itself in the form (RFC 6749 4.1.3);
        // Basic has nothing to send without a secret.
        (ClientAuth::FormPost, None) => {
            add_to_form(body, &credentials.client_id, None);
            Ok(false)
        }
        (ClientAuth::Basic, None) => Ok(false),
        (ClientAuth::Basic, Some(secret)) => {
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
        (ClientAuth::FormPost, Some(secret)) => {
            add_to_form(body, &credentials.client_id, Some(secret.expose()));
            Ok(true)
        }
    }
}

/// Append `client_id` (unless the form has it) and the secret, if any, to a form body.
fn add_to_form(body: &mut Option<Vec<u8>>, client_id: &str, secret: Option<&str>) {
    let mut form = body.take().unwrap_or_default();
    let mut extra = url::form_urlencoded::Serializer::new(String::new());
    // Most providers send client_id themselves; a second copy is refused.
    if !url::form_urlencoded::parse(&form).any(|(k, _)| k == "client_id") {
        extra.append_pair("client_id", client_id);
    }
    if let Some(secret) = secret {
        extra.append_pair("client_secret", secret);
    }
    let extra = extra.finish();
    if !extra.is_empty() {
        if !form.is_empty() {
            form.push(b'&');
        }
        form.extend_from_slice(extra.as_bytes());
    }
    *body = Some(form);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(secret: Option<&str>) -> ClientCredentials {
        ClientCredentials {
            client_id: "app id".into(),
            client_secret: secret.map(|s| Secret::new(s.to_string())),
        }
    }

    fn attach(auth: ClientAuth, secret: Option<&str>, form: &str) -> (bool, HeaderMap, String) {
        let mut headers = HeaderMap::new();
        let mut body = Some(form.as_bytes().to_vec());
        let added = attach_client_auth(auth, &credentials(secret), &mut headers, &mut body)
            .expect("attach");
        (
            added,
            headers,
            String::from_utf8(body.unwrap_or_default()).expect("utf-8"),
        )
    }

    #[test]
    fn form_post_without_a_secret_still_sends_the_client_id() {
        let (added, _, body) = attach(ClientAuth::FormPost, None, "grant_type=x");
        assert!(!added);
        assert_eq!(body, "grant_type=x&client_id=app+id");
    }

    #[test]
    fn form_post_with_a_secret_sends_both_once() {
        let (added, _, body) = attach(ClientAuth::FormPost, Some("s&1"), "client_id=app+id");
        assert!(added);
        assert_eq!(body, "client_id=app+id&client_secret=s%261");
    }

    #[test]
    fn basic_without_a_secret_adds_nothing() {
        let (added, headers, body) = attach(ClientAuth::Basic, None, "a=b");
        assert!(!added);
        assert!(headers.get(AUTHORIZATION).is_none());
        assert_eq!(body, "a=b");
    }

    #[test]
    fn none_leaves_the_request_alone() {
        let (added, headers, body) = attach(ClientAuth::None, Some("s"), "a=b");
        assert!(!added);
        assert!(headers.is_empty());
        assert_eq!(body, "a=b");
    }
}

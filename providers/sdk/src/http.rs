//! Outbound HTTP through the host: the component's only way to the network.

use crate::transport::{self, HttpError};
use crate::{ClientAuth, ProviderError};

pub use crate::transport::{Request, Response};

/// Send a request; transport failures become [`ProviderError`]s with the reason.
pub fn send(request: Request) -> Result<Response, ProviderError> {
    let url = request.url.clone();
    transport::send(&request).map_err(|e| match e {
        HttpError::Denied(why) => ProviderError::InvalidConfig(format!(
            "the host refused the request to {url}: {why} (check allowed_hosts)"
        )),
        HttpError::Timeout => ProviderError::UpstreamUnavailable(format!("{url} timed out")),
        HttpError::TooLarge(limit) => ProviderError::UpstreamError(format!(
            "the response from {url} is larger than {limit} bytes"
        )),
        HttpError::InvalidRequest(why) => {
            ProviderError::InvalidConfig(format!("bad request to {url}: {why}"))
        }
        HttpError::Network(why) => ProviderError::UpstreamUnavailable(format!("{url}: {why}")),
    })
}

/// `GET url` with `Accept: application/json` and an optional bearer token.
pub fn get(url: &str, bearer: Option<&str>) -> Result<Response, ProviderError> {
    let mut headers = vec![("accept".to_string(), "application/json".to_string())];
    if let Some(token) = bearer {
        headers.push(("authorization".to_string(), format!("Bearer {token}")));
    }
    send(Request {
        method: "GET".into(),
        url: url.into(),
        headers,
        body: None,
        client_auth: ClientAuth::None,
    })
}

/// `GET url` and parse a 2xx JSON body; other statuses become errors that name the URL.
pub fn get_json(url: &str, bearer: Option<&str>) -> Result<serde_json::Value, ProviderError> {
    let response = get(url, bearer)?;
    json_body(url, &response)
}

/// `POST url` with a form body; the host adds client authentication as `auth` says.
pub fn post_form(
    url: &str,
    params: &[(&str, &str)],
    auth: ClientAuth,
) -> Result<Response, ProviderError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    send(Request {
        method: "POST".into(),
        url: url.into(),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "application/json".into()),
        ],
        body: Some(body.into_bytes()),
        client_auth: auth,
    })
}

/// The first value of a response header, by case-insensitive name.
pub fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The JSON body of a 2xx response.
pub fn json_body(url: &str, response: &Response) -> Result<serde_json::Value, ProviderError> {
    match response.status {
        200..=299 => serde_json::from_slice(&response.body).map_err(|e| {
            ProviderError::UpstreamError(format!("{url} answered with invalid JSON: {e}"))
        }),
        401 | 403 => Err(ProviderError::InvalidGrant(format!(
            "{url} refused the token (HTTP {})",
            response.status
        ))),
        status if status >= 500 => Err(ProviderError::UpstreamUnavailable(format!(
            "{url} answered HTTP {status}"
        ))),
        status => Err(ProviderError::UpstreamError(format!(
            "{url} answered HTTP {status}"
        ))),
    }
}

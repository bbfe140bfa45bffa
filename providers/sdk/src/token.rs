//! Token endpoint responses, tolerant of what upstreams really send: JSON or
//! form-encoded bodies, `expires_in` as a number or a string or missing, `bearer` in
//! any case, errors with 200 status (GitHub), extra fields worth keeping.

use crate::http::Response;
use crate::{CodeExchange, ProviderConfig, ProviderError, TokenSet};
use serde_json::{Map, Value};

const KNOWN_FIELDS: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "id_token",
    "scope",
];

/// The form that redeems an authorization code (RFC 6749 4.1.3), with the PKCE verifier.
/// Add `client_id` where the upstream wants it in the body.
pub fn code_grant<'a>(
    config: &'a ProviderConfig,
    exchange: &'a CodeExchange,
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", exchange.code.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
    ];
    if let Some(verifier) = &exchange.code_verifier {
        params.push(("code_verifier", verifier));
    }
    params
}

/// The form that uses a refresh token (RFC 6749 6).
pub fn refresh_grant(refresh_token: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ]
}

/// Parse a token endpoint response into a [`TokenSet`], or the upstream's error.
pub fn parse_response(url: &str, response: &Response) -> Result<TokenSet, ProviderError> {
    let fields = body_fields(&response.body);
    if let Some(error) = fields.get("error").and_then(Value::as_str) {
        return Err(oauth_error(error, fields.get("error_description")));
    }
    if response.status >= 500 {
        return Err(ProviderError::UpstreamUnavailable(format!(
            "{url} answered HTTP {}",
            response.status
        )));
    }
    if !(200..300).contains(&response.status) {
        return Err(ProviderError::UpstreamError(format!(
            "{url} answered HTTP {} without an OAuth error",
            response.status
        )));
    }
    parse_fields(fields)
        .map_err(|why| ProviderError::UpstreamError(format!("{url} token response {why}")))
}

/// The body as a JSON object, whether it came as JSON or as a form.
fn body_fields(body: &[u8]) -> Map<String, Value> {
    if let Ok(Value::Object(map)) = serde_json::from_slice(body) {
        return map;
    }
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

fn parse_fields(fields: Map<String, Value>) -> Result<TokenSet, &'static str> {
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(value_text)
            .filter(|v| !v.is_empty())
    };
    let access_token = text("access_token").ok_or("has no access_token")?;
    let token_type = match text("token_type") {
        Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_string(),
        Some(t) => t,
        None => "Bearer".to_string(),
    };
    let expires_in = match text("expires_in") {
        Some(v) => Some(
            v.parse::<f64>()
                .map_err(|_| "has a non-numeric expires_in")?
                .max(0.0) as u64,
        ),
        None => None,
    };
    let extra = fields
        .iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .filter_map(|(k, v)| value_text(v).map(|v| (k.clone(), v)))
        .collect();
    Ok(TokenSet {
        access_token,
        token_type,
        expires_in,
        refresh_token: text("refresh_token"),
        id_token: text("id_token"),
        scope: text("scope"),
        extra,
    })
}

/// A scalar JSON value as text; objects and arrays as compact JSON.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// An OAuth error response (RFC 6749 5.2) as a [`ProviderError`].
pub fn oauth_error(code: &str, description: Option<&Value>) -> ProviderError {
    let message = match description.and_then(Value::as_str) {
        Some(d) => format!("{code}: {d}"),
        None => code.to_string(),
    };
    match code {
        "invalid_grant" | "bad_verification_code" | "invalid_token" => {
            ProviderError::InvalidGrant(message)
        }
        "access_denied" => ProviderError::AccessDenied(message),
        "invalid_client"
        | "unauthorized_client"
        | "incorrect_client_credentials"
        | "redirect_uri_mismatch" => ProviderError::InvalidConfig(message),
        "temporarily_unavailable" | "server_error" => ProviderError::UpstreamUnavailable(message),
        _ => ProviderError::UpstreamError(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn json_with_string_expiry_and_extras() {
        let set = parse_response(
            "t",
            &response(
                200,
                r#"{"access_token":"a","token_type":"bearer","expires_in":"3600","instance_url":"https://x","issued_at":1}"#,
            ),
        )
        .unwrap();
        assert_eq!(set.token_type, "Bearer");
        assert_eq!(set.expires_in, Some(3600));
        assert!(
            set.extra
                .contains(&("instance_url".into(), "https://x".into()))
        );
        assert!(set.extra.contains(&("issued_at".into(), "1".into())));
    }

    #[test]
    fn form_encoded_without_expiry() {
        let set = parse_response(
            "t",
            &response(
                200,
                "access_token=gho_x&scope=user%3Aemail&token_type=bearer",
            ),
        )
        .unwrap();
        assert_eq!(set.access_token, "gho_x");
        assert_eq!(set.scope.as_deref(), Some("user:email"));
        assert_eq!(set.expires_in, None);
    }

    #[test]
    fn error_in_a_200_response_is_an_error() {
        let err = parse_response(
            "t",
            &response(
                200,
                r#"{"error":"bad_verification_code","error_description":"expired"}"#,
            ),
        )
        .unwrap_err();
        assert!(matches!(err, ProviderError::InvalidGrant(m) if m.contains("expired")));
    }

    #[test]
    fn missing_access_token_is_an_upstream_error() {
        let err = parse_response("t", &response(200, r#"{"token_type":"bearer"}"#)).unwrap_err();
        assert!(matches!(err, ProviderError::UpstreamError(m) if m.contains("no access_token")));
    }
}

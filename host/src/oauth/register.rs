//! Dynamic client registration (RFC 7591). Redirect URIs must match the configured
//! patterns (loopback and native-app schemes by default). The response never carries
//! anything of the upstream's.

use super::error::OAuthError;
use super::redirect_patterns;
use crate::domain::clients::check_redirect_uri;
use crate::domain::clients::{self, ClientSource, ClientSpec};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    application_type: Option<String>,
    scope: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
}

/// Registration is open to anyone: every field is bounded, and the whole body is
/// bounded by [`MAX_BODY_BYTES`] (see `server.rs`).
/// Real registrations (Claude, Cursor, the Inspector, the SDKs) are under 2 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Clients register one or two (a loopback and a custom scheme); ten leaves room.
const MAX_REDIRECT_URIS: usize = 10;
/// Browsers and proxies handle URLs up to about 2 KiB everywhere.
const MAX_URI: usize = 2048;
/// Shown on the consent page: a name, not a paragraph.
const MAX_NAME: usize = 200;
const MAX_SCOPE: usize = 1024;
/// Grant types, response types, contacts: a handful each.
const MAX_LIST: usize = 8;

impl RegistrationRequest {
    fn check_sizes(&self) -> Result<(), OAuthError> {
        let too_long = |what: &str, max: usize| {
            OAuthError::invalid_client_metadata(format!("{what} is longer than {max}"))
        };
        if self.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(OAuthError::invalid_redirect_uri(format!(
                "at most {MAX_REDIRECT_URIS} redirect_uris"
            )));
        }
        if self.redirect_uris.iter().any(|u| u.len() > MAX_URI) {
            return Err(OAuthError::invalid_redirect_uri(format!(
                "a redirect URI is longer than {MAX_URI} bytes"
            )));
        }
        for (what, value, max) in [
            ("client_name", &self.client_name, MAX_NAME),
            ("client_uri", &self.client_uri, MAX_URI),
            ("logo_uri", &self.logo_uri, MAX_URI),
            ("scope", &self.scope, MAX_SCOPE),
            (
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
                MAX_NAME,
            ),
            ("application_type", &self.application_type, MAX_NAME),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > max) {
                return Err(too_long(what, max));
            }
        }
        for (what, list) in [
            ("grant_types", &self.grant_types),
            ("response_types", &self.response_types),
        ] {
            if list.as_ref().is_some_and(|l| l.len() > MAX_LIST) {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "{what} has more than {MAX_LIST} entries"
                )));
            }
        }
        Ok(())
    }
}

pub async fn register(
    State(state): State<AppState>,
    body: Result<Json<RegistrationRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, OAuthError> {
    if !state.config.registration.enabled {
        return Err(OAuthError::access_denied(
            "dynamic client registration is disabled",
        ));
    }
    let Json(request) = body.map_err(|e| {
        let mut error = OAuthError::invalid_client_metadata(format!(
            "the body is not valid registration JSON: {}",
            e.body_text()
        ));
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            error.description = format!("the registration is larger than {MAX_BODY_BYTES} bytes");
            error = error.with_status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        error
    })?;
    // Said first: a machine registering itself usually has no redirect URIs either.
    if request
        .grant_types
        .iter()
        .flatten()
        .any(|g| g == "client_credentials")
    {
        return Err(OAuthError::invalid_client_metadata(
            "machine clients (client_credentials) are registered by the operator: \
             `authhost clients add --machine`",
        ));
    }
    if request.redirect_uris.is_empty() {
        return Err(OAuthError::invalid_redirect_uri(
            "redirect_uris is required",
        ));
    }
    request.check_sizes()?;
    let allowed = &state.config.registration.allowed_redirect_uris;
    for uri in &request.redirect_uris {
        check_redirect_uri(uri).map_err(OAuthError::invalid_redirect_uri)?;
        // A client returning to authhost itself could replay its upstream callbacks.
        if uri.starts_with(&format!("{}/", state.issuer)) {
            return Err(OAuthError::invalid_redirect_uri(format!(
                "`{uri}` points at authhost itself"
            )));
        }
        if !allowed
            .iter()
            .any(|pattern| redirect_patterns::matches(pattern, uri))
        {
            return Err(OAuthError::invalid_redirect_uri(format!(
                "`{uri}` is not allowed by this server's registration policy"
            )));
        }
    }
    let auth_method = request
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| "client_secret_basic".into());
    if !matches!(
        auth_method.as_str(),
        "none" | "client_secret_basic" | "client_secret_post"
    ) {
        return Err(OAuthError::invalid_client_metadata(format!(
            "token_endpoint_auth_method `{auth_method}` is not supported"
        )));
    }
    let grant_types = request
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if let Some(bad) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(OAuthError::invalid_client_metadata(format!(
            "grant type `{bad}` is not supported"
        )));
    }
    if let Some(bad) = request
        .response_types
        .iter()
        .flatten()
        .find(|r| *r != "code")
    {
        return Err(OAuthError::invalid_client_metadata(format!(
            "response type `{bad}` is not supported"
        )));
    }
    let application_type = request
        .application_type
        .clone()
        .unwrap_or_else(|| "web".into());
    let name = request
        .client_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "Unnamed client".into());
    let mut extra = serde_json::Map::new();
    for (key, value) in [
        ("scope", &request.scope),
        ("client_uri", &request.client_uri),
        ("logo_uri", &request.logo_uri),
    ] {
        if let Some(value) = value {
            extra.insert(key.into(), json!(value));
        }
    }
    let spec = ClientSpec {
        name,
        redirect_uris: request.redirect_uris.clone(),
        grant_types,
        auth_method,
        application_type,
        extra,
        source: ClientSource::Dcr,
        machine: None,
        jwks: None,
    };
    let created = clients::create(&state.store, spec, state.clock.now()).await?;
    let client_id = &created.client_id;
    let mut response = created.metadata;
    if let Some(secret) = &created.secret {
        response["client_secret"] = json!(secret);
        response["client_secret_expires_at"] = json!(0);
    }
    tracing::info!(client_id, "client registered");
    Ok((
        StatusCode::CREATED,
        [("cache-control", "no-store")],
        Json::<Value>(response),
    ))
}

//! The authoring kit for authhost provider components.
//!
//! A provider is a `cdylib` crate built with `cargo build --target wasm32-wasip2`. It
//! implements [`Provider`] and registers it with [`export!`](crate::export):
//!
//! ```ignore
//! use authhost_provider_sdk::*;
//! struct MyProvider;
//! impl Provider for MyProvider { /* info, authorize_url, exchange_code, ... */ }
//! impl TokenAudience for MyProvider { /* can_check, issued_to_client */ }
//! authhost_provider_sdk::export!(MyProvider);
//! ```
//!
//! The helpers cover what every upstream needs: settings lookup ([`settings`]),
//! outbound HTTP through the host ([`http`]), token responses in the shapes upstreams
//! really send ([`token`]), ID token payloads and OIDC claims ([`oidc`]).

/// The generated WIT bindings (`wit/provider.wit`).
pub mod bindings {
    wit_bindgen::generate!({
        world: "provider",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "authhost_provider_sdk::bindings",
    });
}

pub mod http;
pub mod oidc;
pub mod settings;
pub mod token;

pub use bindings::authhost::provider::http_client::ClientAuth;
pub use bindings::authhost::provider::types::{
    AuthorizeRequest, Claims, CodeExchange, ProviderConfig, ProviderError, ProviderInfo,
    SettingKind, SettingSpec, TokenKind, TokenSet,
};
pub use bindings::export;
pub use bindings::exports::authhost::provider::oauth_provider::Guest as Provider;
/// Telling whose token it is (`client_token` mode); since contract 0.1.1.
pub use bindings::exports::authhost::provider::token_audience::Guest as TokenAudience;

/// Write a line to the host's log, attributed to this provider. Never log tokens.
pub fn log_info(message: &str) {
    use bindings::authhost::provider::log;
    log::write(log::Level::Info, message);
}

/// Short-lived values shared between calls of one provider instance.
pub mod cache {
    pub use crate::bindings::authhost::provider::cache::{get, set};
}

/// A URL with query parameters appended, form-encoded.
pub fn url_with_query(base: &str, params: &[(&str, &str)]) -> Result<String, ProviderError> {
    let mut url = url::Url::parse(base)
        .map_err(|e| ProviderError::InvalidConfig(format!("`{base}` is not a valid URL: {e}")))?;
    url.query_pairs_mut().extend_pairs(params);
    Ok(url.into())
}

/// The authorization request URL of the code flow (RFC 6749 4.1.1) at `endpoint`:
/// `response_type=code`, client id, redirect URI, scopes and state, the PKCE challenge
/// (S256) when the host sent one, then `extra` and the host's own extra parameters.
pub fn code_authorize_url(
    endpoint: &str,
    config: &ProviderConfig,
    request: &AuthorizeRequest,
    extra: &[(&str, &str)],
) -> Result<String, ProviderError> {
    let scope = config.scopes.join(" ");
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", config.client_id.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("scope", scope.as_str()),
        ("state", request.state.as_str()),
    ];
    if let Some(challenge) = &request.code_challenge {
        params.push(("code_challenge", challenge));
        params.push(("code_challenge_method", "S256"));
    }
    params.extend_from_slice(extra);
    params.extend(request.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    url_with_query(endpoint, &params)
}

/// Pairs from a form-encoded string such as `prompt=consent&access_type=offline`.
pub fn url_form_pairs(form: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(form.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

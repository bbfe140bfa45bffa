//! The authoring kit for authhost provider components.
//!
//! A provider is a `cdylib` crate built with `cargo build --target wasm32-wasip2`. It
//! implements [`Provider`] (only what differs from plain OAuth: the defaults run the
//! [`CodeFlow`] it describes) and registers it with [`export!`](crate::export):
//!
//! ```ignore
//! use authhost_provider_sdk::*;
//! struct MyProvider;
//! impl Provider for MyProvider { /* info, code_flow, user_claims */ }
//! authhost_provider_sdk::export!(MyProvider);
//! ```
//!
//! The helpers cover what every upstream needs: typed settings ([`settings`]), outbound
//! HTTP through the host ([`http`]), the plain code flow ([`flow`]), token responses in
//! the shapes upstreams really send ([`token`]), ID tokens and OIDC claims ([`oidc`]).
//! Provider crates also build natively, so their unit tests run with `cargo test`
//! against fixtures ([`testing`]).

/// The generated WIT bindings (`wit/provider.wit`).
pub mod bindings {
    wit_bindgen::generate!({
        world: "provider",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "authhost_provider_sdk::bindings",
    });
}

pub mod cache;
mod claims;
mod error;
mod export;
pub mod flow;
pub mod http;
pub mod oidc;
mod provider;
pub mod settings;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod token;
pub mod transport;

pub use bindings::authhost::provider::http_client::ClientAuth;
pub use bindings::authhost::provider::types::{
    AuthorizeRequest, CodeExchange, ProviderConfig, ProviderError, ProviderInfo, SettingKind,
    SettingSpec, TokenKind, TokenSet,
};
pub use claims::Claims;
pub use export::Exported;
pub use flow::CodeFlow;
pub use provider::Provider;
pub use settings::Setting;

/// Write a line to the host's log, attributed to this provider. Never log tokens.
pub fn log_info(message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use bindings::authhost::provider::log;
        log::write(log::Level::Info, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("provider: {message}");
}

/// A URL with query parameters appended, form-encoded.
pub fn url_with_query(base: &str, params: &[(&str, &str)]) -> Result<String, ProviderError> {
    let mut url = url::Url::parse(base)
        .map_err(|e| ProviderError::InvalidConfig(format!("`{base}` is not a valid URL: {e}")))?;
    url.query_pairs_mut().extend_pairs(params);
    Ok(url.into())
}

/// The authorization request URL of the code flow (RFC 6749 4.1.1) at `endpoint`:
/// `response_type=code`, client id, redirect URI, scopes (when there are any) and
/// state, the PKCE challenge (S256) when the host sent one, then `extra` and the host's
/// own extra parameters.
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
    ];
    // Some upstreams (Mattermost) have no scopes; an empty `scope=` confuses them.
    if !scope.is_empty() {
        params.push(("scope", scope.as_str()));
    }
    params.push(("state", request.state.as_str()));
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

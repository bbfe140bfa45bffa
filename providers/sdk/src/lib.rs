//! The authoring kit for authhost provider components.
//!
//! A provider is a `cdylib` crate built with `cargo build --target wasm32-wasip2`. It
//! implements [`Provider`] and registers it with [`export!`](crate::export):
//!
//! ```ignore
//! use authhost_provider_sdk::*;
//! struct MyProvider;
//! impl Provider for MyProvider { /* info, authorize_url, exchange_code, ... */ }
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

/// Pairs from a form-encoded string such as `prompt=consent&access_type=offline`.
pub fn url_form_pairs(form: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(form.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

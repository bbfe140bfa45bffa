//! `?` on the errors providers meet most (JSON, URLs) inside functions returning
//! [`ProviderError`].

use crate::ProviderError;

/// JSON that does not parse, or does not have the expected shape, came from upstream.
impl From<serde_json::Error> for ProviderError {
    fn from(error: serde_json::Error) -> Self {
        ProviderError::UpstreamError(format!("unexpected JSON from the upstream: {error}"))
    }
}

/// URLs are built from the operator's settings, so a bad one is a configuration error.
impl From<url::ParseError> for ProviderError {
    fn from(error: url::ParseError) -> Self {
        ProviderError::InvalidConfig(format!("invalid URL: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<serde_json::Value, ProviderError> {
        Ok(serde_json::from_str(text)?)
    }

    fn base(text: &str) -> Result<url::Url, ProviderError> {
        Ok(url::Url::parse(text)?)
    }

    #[test]
    fn bad_json_is_an_upstream_error() {
        assert!(matches!(parse("{"), Err(ProviderError::UpstreamError(_))));
    }

    #[test]
    fn a_bad_url_is_a_config_error() {
        assert!(matches!(
            base("not a url"),
            Err(ProviderError::InvalidConfig(_))
        ));
    }
}

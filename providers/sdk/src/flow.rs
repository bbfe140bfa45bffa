//! The OAuth 2.0 authorization code flow (RFC 6749 4.1) for upstreams that are not
//! OpenID Connect: a provider names the endpoints and its quirks, and [`CodeFlow`]
//! builds the authorize URL, sends the code and refresh grants as the client, parses
//! the answers and revokes (RFC 7009).

use crate::{
    AuthorizeRequest, ClientAuth, CodeExchange, ProviderConfig, ProviderError, TokenKind, TokenSet,
    code_authorize_url, http, token,
};

/// One upstream's code flow, for one configuration.
#[derive(Debug, Clone)]
pub struct CodeFlow<'a> {
    pub config: &'a ProviderConfig,
    pub authorize_endpoint: String,
    pub token_endpoint: String,
    /// Where tokens are revoked; `revoke` is unsupported without one.
    pub revocation_endpoint: Option<String>,
    /// How the host authenticates token requests when it holds a client secret
    /// (form-post by default: the most widely accepted).
    pub client_auth: ClientAuth,
    /// Whether to send the host's PKCE challenge (off for upstreams that refuse it).
    pub pkce: bool,
    /// Extra authorization parameters (`audience`, `prompt`, ...).
    pub authorize_params: Vec<(&'a str, &'a str)>,
}

impl<'a> CodeFlow<'a> {
    pub fn new(
        config: &'a ProviderConfig,
        authorize_endpoint: impl Into<String>,
        token_endpoint: impl Into<String>,
    ) -> Self {
        CodeFlow {
            config,
            authorize_endpoint: authorize_endpoint.into(),
            token_endpoint: token_endpoint.into(),
            revocation_endpoint: None,
            client_auth: ClientAuth::FormPost,
            pkce: true,
            authorize_params: Vec::new(),
        }
    }

    pub fn revocation_endpoint(mut self, url: impl Into<String>) -> Self {
        self.revocation_endpoint = Some(url.into());
        self
    }

    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    pub fn without_pkce(mut self) -> Self {
        self.pkce = false;
        self
    }

    pub fn authorize_param(mut self, key: &'a str, value: &'a str) -> Self {
        self.authorize_params.push((key, value));
        self
    }

    /// The URL the user's browser is sent to.
    pub fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, ProviderError> {
        let without_challenge;
        let request = if self.pkce {
            request
        } else {
            without_challenge = AuthorizeRequest {
                code_challenge: None,
                ..request.clone()
            };
            &without_challenge
        };
        code_authorize_url(
            &self.authorize_endpoint,
            self.config,
            request,
            &self.authorize_params,
        )
    }

    /// Redeem the code (with the PKCE verifier when the host has one).
    pub fn exchange_code(&self, exchange: &CodeExchange) -> Result<TokenSet, ProviderError> {
        let response = self.post_token(token::code_grant(self.config, exchange))?;
        self.parse_tokens(&response)
    }

    /// Use a refresh token; the answer may carry the next one (rotation).
    pub fn refresh(&self, refresh_token: &str) -> Result<TokenSet, ProviderError> {
        let response = self.post_token(token::refresh_grant(refresh_token))?;
        self.parse_tokens(&response)
    }

    /// POST a grant to the token endpoint as the client, for upstreams whose answers
    /// need a look before [`CodeFlow::parse_tokens`].
    pub fn post_token<'p>(
        &self,
        params: Vec<(&'p str, &'p str)>,
    ) -> Result<http::Response, ProviderError>
    where
        'a: 'p,
    {
        self.post_as_client(&self.token_endpoint, params)
    }

    /// A token endpoint answer (JSON or form, errors even with 200) as a [`TokenSet`].
    pub fn parse_tokens(&self, response: &http::Response) -> Result<TokenSet, ProviderError> {
        token::parse_response(&self.token_endpoint, response)
    }

    /// The client authentication the host attaches: none without a secret.
    pub fn effective_client_auth(&self) -> ClientAuth {
        if self.config.has_client_secret {
            self.client_auth
        } else {
            ClientAuth::None
        }
    }

    /// POST a form to `url` as this client. `client_id` goes in the form, as public
    /// clients must send it, except with Basic, where strict servers refuse a second copy.
    pub fn post_as_client<'p>(
        &self,
        url: &str,
        mut params: Vec<(&'p str, &'p str)>,
    ) -> Result<http::Response, ProviderError>
    where
        'a: 'p,
    {
        let auth = self.effective_client_auth();
        if auth != ClientAuth::Basic {
            params.push(("client_id", &self.config.client_id));
        }
        http::post_form(url, &params, auth)
    }

    /// RFC 7009 revocation at the revocation endpoint.
    pub fn revoke(&self, token: &str, kind: TokenKind) -> Result<(), ProviderError> {
        let url = self
            .revocation_endpoint
            .as_deref()
            .ok_or(ProviderError::Unsupported)?;
        let hint = match kind {
            TokenKind::AccessToken => "access_token",
            TokenKind::RefreshToken => "refresh_token",
        };
        let response =
            self.post_as_client(url, vec![("token", token), ("token_type_hint", hint)])?;
        // RFC 7009 2.2: 200 whether or not the token was valid.
        if (200..300).contains(&response.status) {
            return Ok(());
        }
        Err(match token::parse_response(url, &response) {
            Err(error) => error,
            Ok(_) => {
                ProviderError::UpstreamError(format!("{url} answered HTTP {}", response.status))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Upstream, config};

    fn flow(config: &ProviderConfig) -> CodeFlow<'_> {
        CodeFlow::new(config, "https://idp/authorize", "https://idp/token")
            .revocation_endpoint("https://idp/revoke")
    }

    #[test]
    fn the_code_grant_names_the_client_and_parses_the_answer() {
        let upstream = Upstream::new().form(
            "POST",
            "https://idp/token",
            200,
            "access_token=a&expires_in=60",
        );
        let _on = upstream.install();
        let config = config(&[]);
        let exchange = CodeExchange {
            code: "c".into(),
            code_verifier: Some("v".into()),
            nonce: "n".into(),
        };
        let tokens = flow(&config).exchange_code(&exchange).unwrap();
        assert_eq!(
            (tokens.access_token.as_str(), tokens.expires_in),
            ("a", Some(60))
        );
        let sent = upstream.only_request();
        assert_eq!(
            sent.form(),
            [
                ("grant_type", "authorization_code"),
                ("code", "c"),
                ("redirect_uri", "https://authhost.test/callback"),
                ("code_verifier", "v"),
                ("client_id", "test-client"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(sent.client_auth, ClientAuth::FormPost);
    }

    #[test]
    fn without_pkce_no_challenge_is_sent() {
        let config = config(&[]);
        let request = AuthorizeRequest {
            state: "s".into(),
            code_challenge: Some("ch".into()),
            nonce: "n".into(),
            extra: vec![],
        };
        let url = flow(&config)
            .without_pkce()
            .authorize_url(&request)
            .unwrap();
        assert!(!url.contains("code_challenge"), "{url}");
        assert!(
            flow(&config)
                .authorize_url(&request)
                .unwrap()
                .contains("code_challenge=ch")
        );
    }

    #[test]
    fn revocation_errors_come_from_the_answer() {
        let upstream = Upstream::new().json(
            "POST",
            "https://idp/revoke",
            400,
            serde_json::json!({"error": "invalid_grant"}),
        );
        let _on = upstream.install();
        let config = config(&[]);
        let err = flow(&config)
            .revoke("t", TokenKind::AccessToken)
            .unwrap_err();
        assert!(matches!(err, ProviderError::InvalidGrant(_)));
        let no_endpoint = CodeFlow::new(&config, "https://idp/a", "https://idp/t");
        assert!(matches!(
            no_endpoint.revoke("t", TokenKind::AccessToken),
            Err(ProviderError::Unsupported)
        ));
    }
}

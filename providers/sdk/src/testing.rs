//! Native unit tests for providers, without wasm or a network: a fixture [`Upstream`]
//! answers the SDK's HTTP requests, and [`config`] / [`tokens`] build the host's inputs.
//!
//! ```ignore
//! let upstream = Upstream::new().json("GET", "https://gitlab.com/api/v4/user", 200, json!({"id": 7}));
//! let _on = upstream.install();
//! let claims = GitLab::user_claims(config(&[]), tokens("at"))?;
//! assert_eq!(claims.subject, "7");
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test kit reports a broken fixture by panicking, as the test would"
)]

use crate::transport::{self, HttpError, Installed, Request, Response, Transport};
use crate::{ClientAuth, ProviderConfig, TokenSet};
use std::cell::RefCell;
use std::rc::Rc;

/// A configuration as the host passes it: client `test-client` with a secret, the
/// callback `https://authhost.test/callback`, no scopes, and `settings`.
pub fn config(settings: &[(&str, &str)]) -> ProviderConfig {
    ProviderConfig {
        client_id: "test-client".into(),
        redirect_uri: "https://authhost.test/callback".into(),
        scopes: Vec::new(),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        has_client_secret: true,
    }
}

/// A bearer token set holding only `access_token`.
pub fn tokens(access_token: &str) -> TokenSet {
    TokenSet {
        access_token: access_token.into(),
        token_type: "Bearer".into(),
        expires_in: None,
        refresh_token: None,
        id_token: None,
        scope: None,
        extra: Vec::new(),
    }
}

/// A request the provider sent, as the upstream saw it (before the host's client
/// authentication, which `client_auth` names).
#[derive(Debug, Clone)]
pub struct SentRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub client_auth: ClientAuth,
}

impl SentRequest {
    /// The body's form fields, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        crate::url_form_pairs(&String::from_utf8_lossy(&self.body))
    }

    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Fixture {
    method: String,
    url: String,
    response: Response,
}

#[derive(Default)]
struct State {
    fixtures: Vec<Fixture>,
    sent: Vec<SentRequest>,
}

/// A stand-in upstream with canned answers by method and URL (the query is ignored
/// unless the fixture's URL has one). Unknown requests get 404. Cloning shares it.
#[derive(Clone, Default)]
pub struct Upstream {
    state: Rc<RefCell<State>>,
}

impl Upstream {
    pub fn new() -> Self {
        Upstream::default()
    }

    /// Answer `method url` with `status`, `content_type` and `body`.
    pub fn respond(
        self,
        method: &str,
        url: &str,
        status: u16,
        content_type: &str,
        body: &str,
    ) -> Self {
        self.state.borrow_mut().fixtures.push(Fixture {
            method: method.to_ascii_uppercase(),
            url: url.into(),
            response: Response {
                status,
                headers: vec![("content-type".into(), content_type.into())],
                body: body.as_bytes().to_vec(),
            },
        });
        self
    }

    /// Answer with a JSON body.
    pub fn json(self, method: &str, url: &str, status: u16, body: serde_json::Value) -> Self {
        self.respond(method, url, status, "application/json", &body.to_string())
    }

    /// Answer with a form-encoded body (GitHub's token endpoint by default).
    pub fn form(self, method: &str, url: &str, status: u16, body: &str) -> Self {
        self.respond(
            method,
            url,
            status,
            "application/x-www-form-urlencoded",
            body,
        )
    }

    /// Route this thread's SDK requests here until the guard is dropped.
    pub fn install(&self) -> Installed {
        transport::install(Rc::new(self.clone()))
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<SentRequest> {
        self.state.borrow().sent.clone()
    }

    /// The one request sent; panics when there were none or several.
    pub fn only_request(&self) -> SentRequest {
        let sent = self.requests();
        assert_eq!(sent.len(), 1, "expected one request, got {sent:?}");
        sent.into_iter().next().expect("one request")
    }
}

impl Transport for Upstream {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let mut state = self.state.borrow_mut();
        state.sent.push(SentRequest {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone().unwrap_or_default(),
            client_auth: request.client_auth,
        });
        let without_query = request.url.split('?').next().unwrap_or_default();
        let fixture = state.fixtures.iter().find(|f| {
            f.method.eq_ignore_ascii_case(&request.method)
                && (f.url == request.url || f.url == without_query)
        });
        Ok(match fixture {
            Some(fixture) => fixture.response.clone(),
            None => Response {
                status: 404,
                headers: Vec::new(),
                body: format!("no fixture for {} {}", request.method, request.url).into_bytes(),
            },
        })
    }
}

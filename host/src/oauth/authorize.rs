//! The authorization endpoint: check the request, ask the user's consent for this
//! client, then send the browser to the upstream provider.
//!
//! Errors before the client and its redirect URI are trusted are shown as a page;
//! after that they go back to the client (RFC 6749 4.1.2.1), always with `iss`.

use super::clients::{Client, ClientKind, is_loopback_host};
use super::error::{ErrorPage, OAuthError};
use crate::audit::Event;
use crate::crypto;
use crate::pages;
use crate::runtime::AuthorizeRequest;
use crate::state::AppState;
use crate::store::Authorization;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::HashMap;
use url::Url;

const BROWSER_COOKIE: &str = "authhost_browser";

#[derive(Debug, Deserialize)]
pub struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

/// The way back to the client once it and its redirect URI are trusted: every answer
/// carries the client's `state` and authhost's `iss` (RFC 9207).
pub struct ClientRedirect<'a> {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub issuer: &'a str,
}

impl ClientRedirect<'_> {
    pub fn code(&self, code: String) -> Response {
        self.with(vec![("code", code)])
    }

    pub fn error(&self, error: OAuthError) -> Response {
        self.with(vec![
            ("error", error.code.to_string()),
            ("error_description", error.description),
        ])
    }

    fn with(&self, mut params: Vec<(&str, String)>) -> Response {
        if let Some(state) = &self.state {
            params.push(("state", state.clone()));
        }
        params.push(("iss", self.issuer.to_string()));
        redirect_with(&self.redirect_uri, &params)
    }
}

/// A 302 to `uri` with `params` added to its query.
fn redirect_with(uri: &str, params: &[(&str, String)]) -> Response {
    match Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            Redirect::to(url.as_str()).into_response()
        }
        Err(_) => ErrorPage::new(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "The application's redirect URI is invalid.",
        )
        .into_response(),
    }
}

pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<AuthorizeParams>,
) -> Result<Response, ErrorPage> {
    let bad = |message: &str| {
        ErrorPage::new(
            StatusCode::BAD_REQUEST,
            "Invalid authorization request",
            message,
        )
    };
    let client_id = params
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("The request has no client_id."))?;
    let client = state
        .clients
        .find(&state.store, client_id)
        .await?
        .ok_or_else(|| {
            bad("This application is not registered with this server. Ask it to register again.")
        })?;
    let redirect_uri = match &params.redirect_uri {
        Some(uri) if client.allows_redirect(uri) => uri.clone(),
        Some(_) => {
            return Err(bad(
                "The redirect URI does not match any URI registered for this application.",
            ));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(bad("The request has no redirect_uri.")),
    };
    let back = ClientRedirect {
        redirect_uri: redirect_uri.clone(),
        state: params.state.clone(),
        issuer: &state.issuer,
    };
    match check_request(&state, &params) {
        Ok((resource, scope, challenge)) => {
            let (browser, new_cookie) = browser_id(&headers);
            let now = crate::clock::now();
            let authorization = Authorization {
                id: crypto::random_token(),
                client_id: client.client_id.clone(),
                redirect_uri,
                client_state: params.state.clone(),
                code_challenge: challenge,
                scope,
                resource: resource.url.clone(),
                provider: resource.provider.clone(),
                browser_hash: crypto::hash_token(&browser),
                status: "consent".into(),
                upstream_state: None,
                upstream_nonce: None,
                upstream_verifier: None,
                created_at: now,
                expires_at: now + state.config.tokens.authorization_request_ttl as i64,
            };
            state.store.insert_authorization(&authorization).await?;
            let remembered = state.config.consent.remember
                && state
                    .store
                    .has_consent(&authorization.browser_hash, &client.client_id)
                    .await?;
            let mut response = if remembered {
                start_upstream(&state, &authorization).await?
            } else {
                consent_page(&state, &client, &authorization)
            };
            if new_cookie {
                set_browser_cookie(&state, &mut response, &browser);
            }
            Ok(response)
        }
        Err(error) => Ok(back.error(error)),
    }
}

/// Validate what goes into the grant: response type, PKCE, resource and scope.
fn check_request<'s>(
    state: &'s AppState,
    params: &AuthorizeParams,
) -> Result<(&'s crate::state::Resource, String, String), OAuthError> {
    if params.response_type.as_deref() != Some("code") {
        return Err(OAuthError::unsupported_response_type(
            "response_type must be `code`",
        ));
    }
    let challenge = params.code_challenge.clone().ok_or_else(|| {
        OAuthError::invalid_request("code_challenge is required (PKCE with S256)")
    })?;
    match params.code_challenge_method.as_deref() {
        Some("S256") => {}
        Some("plain") | None => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256; plain is not accepted",
            ));
        }
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "unknown code_challenge_method `{other}`"
            )));
        }
    }
    let well_formed = (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(OAuthError::invalid_request(
            "code_challenge is not a base64url S256 challenge",
        ));
    }
    let resource =
        state
            .resource(params.resource.as_deref())
            .ok_or_else(|| match &params.resource {
                Some(r) => OAuthError::invalid_target(format!(
                    "`{r}` is not a resource this server protects"
                )),
                None => {
                    OAuthError::invalid_target("resource is required: this server protects several")
                }
            })?;
    let requested: Vec<&str> = params
        .scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .filter(|s| *s != "offline_access")
        .collect();
    if let Some(unknown) = requested.iter().find(|s| !resource.offers_scope(s)) {
        return Err(OAuthError::invalid_scope(format!(
            "scope `{unknown}` is not offered by {}",
            resource.url
        )));
    }
    let scope = if requested.is_empty() {
        resource.scopes.join(" ")
    } else {
        requested.join(" ")
    };
    Ok((resource, scope, challenge))
}

fn consent_page(state: &AppState, client: &Client, authorization: &Authorization) -> Response {
    let redirect = Url::parse(&authorization.redirect_uri).ok();
    let redirect_host = redirect
        .as_ref()
        .map(|u| match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => format!("{}:", u.scheme()),
        })
        .unwrap_or_default();
    let local_redirect = redirect
        .as_ref()
        .is_some_and(|u| u.host_str().is_some_and(is_loopback_host));
    let instance = state.registry.instances.get(&authorization.provider);
    let resource = state.resource(Some(&authorization.resource));
    let html = pages::render(
        "consent.html",
        minijinja::context! {
            client_name => client.name,
            client_id => client.client_id,
            redirect_host,
            local_redirect,
            unverified => client.kind == ClientKind::Registered,
            resource => authorization.resource,
            resource_name => resource.map(|r| r.display_name.clone()).unwrap_or_default(),
            scope => authorization.scope,
            provider_name => instance.map(|i| i.component.info.display_name.clone()).unwrap_or_default(),
            upstream_scopes => instance.map(|i| i.scopes().join(" ")).unwrap_or_default(),
            action => format!("{}/authorize/consent", state.issuer),
            request_id => authorization.id,
            csrf_token => csrf_token(state, authorization),
        },
    );
    (pages::secure_headers(), Html(html)).into_response()
}

/// Stable for one authorization and browser, so reloading the page keeps it valid.
fn csrf_token(state: &AppState, authorization: &Authorization) -> String {
    state.sealer.mac(
        "consent",
        &format!("{}:{}", authorization.id, authorization.browser_hash),
    )
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    request_id: String,
    csrf_token: String,
    decision: String,
}

pub async fn consent_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Result<Response, ErrorPage> {
    let now = crate::clock::now();
    let authorization = state
        .store
        .pending_authorization(&form.request_id, now)
        .await?
        .ok_or_else(expired_page)?;
    let browser = cookie(&headers, BROWSER_COOKIE).map(|b| crypto::hash_token(&b));
    let genuine = browser.as_deref() == Some(authorization.browser_hash.as_str())
        && crypto::same(&form.csrf_token, &csrf_token(&state, &authorization));
    if !genuine {
        return Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "Request could not be verified",
            "This approval did not come from the page authhost showed in this browser.",
        ));
    }
    let back = ClientRedirect {
        redirect_uri: authorization.redirect_uri.clone(),
        state: authorization.client_state.clone(),
        issuer: &state.issuer,
    };
    if form.decision != "approve" {
        state.store.close_authorization(&authorization.id).await?;
        state.audit.record(Event {
            event: "consent_denied",
            client_id: Some(&authorization.client_id),
            provider: Some(&authorization.provider),
            resource: Some(&authorization.resource),
            ..Event::default()
        });
        return Ok(back.error(OAuthError::access_denied("the user denied access")));
    }
    if state.config.consent.remember {
        state
            .store
            .record_consent(&authorization.browser_hash, &authorization.client_id, now)
            .await?;
    }
    state.audit.record(Event {
        event: "consent",
        client_id: Some(&authorization.client_id),
        provider: Some(&authorization.provider),
        resource: Some(&authorization.resource),
        ..Event::default()
    });
    start_upstream(&state, &authorization).await
}

pub fn expired_page() -> ErrorPage {
    ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired",
        "It took too long, or it was already used. Start again from your application.",
    )
}

/// Remember the upstream state, nonce and PKCE verifier, then send the browser upstream.
async fn start_upstream(
    state: &AppState,
    authorization: &Authorization,
) -> Result<Response, ErrorPage> {
    let instance = state
        .registry
        .instances
        .get(&authorization.provider)
        .ok_or_else(|| {
            ErrorPage::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in is misconfigured",
                "The identity provider of this server is not configured.",
            )
        })?;
    let upstream_state = crypto::random_token();
    let nonce = crypto::random_token();
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let supports_pkce = instance.component.info.supports_pkce;
    let approved = state
        .store
        .approve_authorization(
            &authorization.id,
            &upstream_state,
            &nonce,
            &state.sealer.seal(verifier.secret().as_bytes()),
            crate::clock::now(),
        )
        .await?;
    if !approved {
        return Err(expired_page());
    }
    let url = instance
        .authorize_url(AuthorizeRequest {
            state: upstream_state,
            code_challenge: supports_pkce.then(|| challenge.as_str().to_string()),
            nonce,
            extra: vec![],
        })
        .await
        .map_err(|e| {
            tracing::error!("{e}");
            ErrorPage::new(
                StatusCode::BAD_GATEWAY,
                "Sign-in is unavailable",
                "The identity provider could not be reached. Try again in a moment.",
            )
        })?;
    Ok(Redirect::to(&url).into_response())
}

/// The browser's id from its cookie, or a new one (and whether it is new).
fn browser_id(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, BROWSER_COOKIE) {
        Some(id) if id.len() >= 32 => (id, false),
        _ => (crypto::random_token(), true),
    }
}

fn set_browser_cookie(state: &AppState, response: &mut Response, value: &str) {
    let secure = if state.is_https() { "; Secure" } else { "" };
    let cookie = format!(
        "{BROWSER_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Query parameters as a map (for the callback).
pub type QueryMap = Query<HashMap<String, String>>;

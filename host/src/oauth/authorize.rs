//! The authorization endpoint: check the request, ask the user's consent for this
//! client, then send the browser to the upstream provider.
//!
//! Errors before the client and its redirect URI are trusted are shown as a page;
//! after that they go back to the client (RFC 6749 4.1.2.1), always with `iss`.

use super::error::{ErrorPage, OAuthError};
use crate::audit::Event;
use crate::crypto;
use crate::domain::clients::{Client, ClientKind, is_loopback_host};
use crate::domain::pkce;
use crate::domain::resources::{ProtectedResource, Resources};
use crate::domain::sign_in::{Approved, RoundTrip};
use crate::pages;
use crate::runtime::AuthorizeRequest;
use crate::state::AppState;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
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
            ("error", error.code.as_str().to_string()),
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
    let (resource, scope, code_challenge) = match check_request(&state.resources, &params) {
        Ok(checked) => checked,
        Err(error) => return Ok(back.error(error)),
    };
    let (browser, new_cookie) = browser_id(&headers);
    let now = state.clock.now();
    // Nothing is stored until the user acts on the consent page: the request travels
    // in it, sealed.
    let request = ConsentRequest {
        id: crypto::random_token(),
        client_id: client.client_id.clone(),
        redirect_uri,
        client_state: params.state.clone(),
        code_challenge,
        scope,
        resource: resource.url.clone(),
        provider: resource.provider.clone(),
        browser_hash: crypto::hash_token(&browser),
        expires_at: now + state.config.tokens.authorization_request_ttl as i64,
    };
    let remembered = match remembered_consent(&state, &headers, &request).await? {
        Some(subject) => Some(start_upstream(&state, &request, Some(subject)).await?),
        None => None,
    };
    let mut response =
        remembered.unwrap_or_else(|| consent_page(&state, &client, &request, resource));
    if new_cookie {
        set_cookie(&state, &mut response, BROWSER_COOKIE, &browser, 31_536_000);
    }
    Ok(response)
}

/// The user who approved this client and redirect URI in this browser before, when
/// consent is remembered. Never for a request another site started (`Sec-Fetch-Site:
/// cross-site`): a remembered approval must not let a page elsewhere sign the user in
/// silently.
async fn remembered_consent(
    state: &AppState,
    headers: &HeaderMap,
    request: &ConsentRequest,
) -> Result<Option<String>, ErrorPage> {
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if !state.config.consent.remember || cross_site {
        return Ok(None);
    }
    Ok(state
        .store
        .remembered_consent(
            &request.browser_hash,
            &request.client_id,
            &request.redirect_uri,
        )
        .await?)
}

/// Validate what goes into the grant: response type, PKCE, resource and scope.
fn check_request<'r>(
    resources: &'r Resources,
    params: &AuthorizeParams,
) -> Result<(&'r ProtectedResource, String, String), OAuthError> {
    if params.response_type.as_deref() != Some("code") {
        return Err(OAuthError::unsupported_response_type(
            "response_type must be `code`",
        ));
    }
    let challenge = pkce::challenge(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;
    let resource = resources
        .requested(params.resource.as_deref())
        .ok_or_else(|| match &params.resource {
            Some(r) => {
                OAuthError::invalid_target(format!("`{r}` is not a resource this server protects"))
            }
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

/// An authorization request waiting for the user's consent. It is not stored: it
/// travels sealed in the consent page, so unauthenticated requests write nothing.
#[derive(Serialize, Deserialize)]
struct ConsentRequest {
    id: String,
    client_id: String,
    redirect_uri: String,
    client_state: Option<String>,
    code_challenge: String,
    scope: String,
    resource: String,
    provider: String,
    browser_hash: String,
    expires_at: i64,
}

fn consent_page(
    state: &AppState,
    client: &Client,
    request: &ConsentRequest,
    resource: &ProtectedResource,
) -> Response {
    let redirect = Url::parse(&request.redirect_uri).ok();
    let local_redirect = redirect
        .as_ref()
        .is_some_and(|u| u.host_str().is_some_and(is_loopback_host));
    // For a client ID metadata document: the host that vouches for the client.
    let document_host = (client.kind == ClientKind::MetadataDocument)
        .then(|| Url::parse(&client.client_id).ok())
        .flatten()
        .and_then(|u| u.host_str().map(String::from));
    let instance = state.registry.instances.get(&request.provider);
    let sealed = state
        .sealer
        .seal(&serde_json::to_vec(request).unwrap_or_default());
    let html = pages::render(
        "consent.html",
        minijinja::context! {
            client_name => client.name,
            client_id => client.client_id,
            redirect_uri => request.redirect_uri,
            local_redirect,
            document_host,
            unverified => client.kind == ClientKind::Registered,
            resource => request.resource,
            resource_name => resource.display_name,
            scope => request.scope,
            provider_name => instance.map(|i| i.component.info.display_name.clone()).unwrap_or_default(),
            upstream_scopes => instance.map(|i| i.scopes().join(" ")).unwrap_or_default(),
            action => format!("{}/authorize/consent", state.issuer),
            request => sealed,
            csrf_token => csrf_token(state, &request.id, &request.browser_hash),
        },
    );
    (pages::secure_headers(), Html(html)).into_response()
}

/// Stable for one request and browser, so reloading the page keeps it valid.
fn csrf_token(state: &AppState, request_id: &str, browser_hash: &str) -> String {
    state
        .sealer
        .mac("consent", &format!("{request_id}:{browser_hash}"))
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    request: String,
    csrf_token: String,
    decision: String,
}

pub async fn consent_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Result<Response, ErrorPage> {
    let now = state.clock.now();
    let request: ConsentRequest = state
        .sealer
        .open(&form.request)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|r: &ConsentRequest| r.expires_at > now)
        .ok_or_else(expired_page)?;
    let browser = cookie(&headers, BROWSER_COOKIE).map(|b| crypto::hash_token(&b));
    let genuine = browser.as_deref() == Some(request.browser_hash.as_str())
        && crypto::same(
            &form.csrf_token,
            &csrf_token(&state, &request.id, &request.browser_hash),
        );
    if !genuine {
        return Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "Request could not be verified",
            "This approval did not come from the page authhost showed in this browser.",
        ));
    }
    let event = |event| Event {
        event,
        client_id: Some(&request.client_id),
        provider: Some(&request.provider),
        resource: Some(&request.resource),
        ..Event::default()
    };
    if form.decision != "approve" {
        state.audit.record(event("consent_denied"));
        let back = ClientRedirect {
            redirect_uri: request.redirect_uri.clone(),
            state: request.client_state.clone(),
            issuer: &state.issuer,
        };
        return Ok(back.error(OAuthError::access_denied("the user denied access")));
    }
    state.audit.record(event("consent"));
    start_upstream(&state, &request, None).await
}

pub fn expired_page() -> ErrorPage {
    ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired",
        "It took too long, or it was already used. Start again from your application.",
    )
}

/// Store the approved authorization with a fresh upstream state, nonce and PKCE
/// verifier, then send the browser upstream with a flow cookie: the upstream's answer
/// is only accepted in this browser (see `callback.rs`).
async fn start_upstream(
    state: &AppState,
    request: &ConsentRequest,
    remembered_subject: Option<String>,
) -> Result<Response, ErrorPage> {
    let instance = state
        .registry
        .instances
        .get(&request.provider)
        .ok_or_else(|| {
            ErrorPage::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in is misconfigured",
                "The identity provider of this server is not configured.",
            )
        })?;
    let trip = RoundTrip::new();
    let supports_pkce = instance.component.info.supports_pkce;
    let url = instance
        .authorize_url(AuthorizeRequest {
            state: trip.state.clone(),
            code_challenge: supports_pkce.then(|| trip.code_challenge.clone()),
            nonce: trip.nonce.clone(),
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
    let approved = Approved {
        id: request.id.clone(),
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        client_state: request.client_state.clone(),
        code_challenge: request.code_challenge.clone(),
        scope: request.scope.clone(),
        resource: request.resource.clone(),
        provider: request.provider.clone(),
        browser_hash: request.browser_hash.clone(),
        expires_at: request.expires_at,
        remembered_subject,
    };
    if !state.sign_ins.depart(approved, &trip).await? {
        return Err(expired_page());
    }
    let mut response = Redirect::to(&url).into_response();
    let (name, value) = flow_cookie(state, &trip.state);
    let ttl = (request.expires_at - state.clock.now()).max(1) as u64;
    set_cookie(state, &mut response, &name, &value, ttl);
    Ok(response)
}

/// The cookie that binds an upstream round trip to the browser that started it: its
/// name is derived from the upstream state (several flows may run in one browser),
/// its value is a MAC of it. `__Host-` where the origin is https, so no other host can
/// plant it.
pub fn flow_cookie(state: &AppState, upstream_state: &str) -> (String, String) {
    let prefix = if state.is_https() { "__Host-" } else { "" };
    let name = format!(
        "{prefix}authhost-flow-{}",
        &crypto::hash_token(upstream_state)[..16]
    );
    (name, state.sealer.mac("flow", upstream_state))
}

/// The browser's id from its cookie, or a new one (and whether it is new).
fn browser_id(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, BROWSER_COOKIE) {
        Some(id) if id.len() >= 32 => (id, false),
        _ => (crypto::random_token(), true),
    }
}

/// Add a cookie for the whole origin, never readable by scripts, sent on top-level
/// navigations from other sites (the upstream's redirect back) but not on their
/// subrequests. `max_age` 0 deletes it.
pub fn set_cookie(
    state: &AppState,
    response: &mut Response,
    name: &str,
    value: &str,
    max_age: u64,
) {
    let secure = if state.is_https() { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthMode;
    use crate::domain::oauth_error::ErrorCode;
    use std::sync::Arc;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn resources(names: &[&str]) -> Resources {
        let all = names
            .iter()
            .map(|name| {
                Arc::new(ProtectedResource {
                    name: name.to_string(),
                    display_name: name.to_string(),
                    path: format!("/{name}"),
                    url: format!("https://auth.example/{name}"),
                    provider: "up".into(),
                    scopes: vec!["mcp".into()],
                    offered_scopes: vec!["mcp".into(), "admin".into()],
                    auth: AuthMode::OauthProxy,
                    identity_token_ttl: 60,
                    delegation: None,
                    authorization_server: "https://auth.example".into(),
                })
            })
            .collect();
        Resources::new("https://auth.example", all)
    }

    fn params(scope: Option<&str>, resource: Option<&str>) -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some("client".into()),
            redirect_uri: Some("http://127.0.0.1:9/cb".into()),
            state: None,
            code_challenge: Some(CHALLENGE.into()),
            code_challenge_method: Some("S256".into()),
            scope: scope.map(Into::into),
            resource: resource.map(Into::into),
        }
    }

    fn refused(resources: &Resources, params: &AuthorizeParams) -> (ErrorCode, String) {
        let e = check_request(resources, params).expect_err("refused");
        (e.code, e.description)
    }

    #[test]
    fn a_request_names_its_resource_and_scopes_it_offers() {
        let one = resources(&["mcp"]);
        let (resource, scope, challenge) = check_request(&one, &params(None, None)).unwrap();
        assert_eq!(
            (resource.name.as_str(), scope.as_str(), challenge.as_str()),
            ("mcp", "mcp", CHALLENGE)
        );
        // offline_access is how clients ask for refresh tokens; it is not a resource scope.
        let (_, scope, _) = check_request(
            &one,
            &params(
                Some("admin offline_access"),
                Some("https://auth.example/mcp"),
            ),
        )
        .unwrap();
        assert_eq!(scope, "admin");
        assert_eq!(
            refused(&one, &params(Some("mcp root"), None)),
            (
                ErrorCode::InvalidScope,
                "scope `root` is not offered by https://auth.example/mcp".into()
            )
        );
        assert_eq!(
            refused(&one, &params(None, Some("https://elsewhere.example/mcp"))).0,
            ErrorCode::InvalidTarget
        );
        let two = resources(&["a", "b"]);
        assert_eq!(
            refused(&two, &params(None, None)),
            (
                ErrorCode::InvalidTarget,
                "resource is required: this server protects several".into()
            )
        );
    }

    #[test]
    fn only_the_code_flow_with_pkce_s256_is_accepted() {
        let one = resources(&["mcp"]);
        let implicit = AuthorizeParams {
            response_type: Some("token".into()),
            ..params(None, None)
        };
        assert_eq!(
            refused(&one, &implicit).0,
            ErrorCode::UnsupportedResponseType
        );
        let plain = AuthorizeParams {
            code_challenge_method: Some("plain".into()),
            ..params(None, None)
        };
        assert_eq!(refused(&one, &plain).0, ErrorCode::InvalidRequest);
        let without = AuthorizeParams {
            code_challenge: None,
            ..params(None, None)
        };
        assert_eq!(refused(&one, &without).0, ErrorCode::InvalidRequest);
    }
}

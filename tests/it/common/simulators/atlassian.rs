//! Atlassian Cloud OAuth 2.0 (3LO) as documented, both hosts on one origin: the
//! authorization server under `/auth` (`/authorize`, `/oauth/token`) and the platform
//! API under `/api` (`/me`, `/oauth/token/accessible-resources`). Kept: `/authorize`
//! refuses a request without `audience=api.atlassian.com`; the token endpoint takes the
//! client credentials from the form and answers RFC 6749 errors (403 `invalid_grant`);
//! a refresh token only with `offline_access`. Quirks kept: refresh tokens rotate, and
//! reusing a rotated-out one (past the leeway, always here) fails and kills the whole
//! family, the newest token included; `/me` answers 403 without `read:me`;
//! `accessible-resources` lists the sites picked at consent with fields the provider
//! drops.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "atl-client";
pub const CLIENT_SECRET: &str = "atl-secret";
pub const ACCOUNT_ID: &str = "557058:3f1c0c3e-0000-4000-8000-000000000001";
pub const SITE_IDS: [&str; 2] = [
    "1324a887-45db-1bf4-1e99-ef0ff456d421",
    "9f8e7d6c-5b4a-3f2e-1d0c-b9a887766554",
];

#[derive(Default)]
struct Sim {
    /// code → (redirect_uri, granted scopes)
    codes: HashMap<String, (String, String)>,
    /// access token → granted scopes
    access_tokens: HashMap<String, String>,
    /// refresh token → (family, scopes, still the current one)
    refresh_tokens: HashMap<String, (u64, String, bool)>,
    /// The last token request: its form and its Authorization header.
    last_token_request: Option<(HashMap<String, String>, Option<String>)>,
    counter: u64,
}

type Shared = Arc<Mutex<Sim>>;

pub struct AtlassianSim {
    pub origin: String,
    state: Shared,
}

impl AtlassianSim {
    pub async fn start() -> AtlassianSim {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/auth/authorize", get(authorize))
            .route("/auth/oauth/token", post(token))
            .route("/api/me", get(me))
            .route("/api/oauth/token/accessible-resources", get(resources))
            .with_state(state.clone());
        let origin = crate::common::serve(app).await;
        AtlassianSim { origin, state }
    }

    pub fn auth_url(&self) -> String {
        format!("{}/auth", self.origin)
    }

    pub fn api_url(&self) -> String {
        format!("{}/api", self.origin)
    }

    pub fn last_token_request(&self) -> (HashMap<String, String>, Option<String>) {
        self.state
            .lock()
            .unwrap()
            .last_token_request
            .clone()
            .expect("a token request")
    }
}

async fn authorize(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("audience") != "api.atlassian.com"
        || get("client_id") != CLIENT_ID
        || get("response_type") != "code"
    {
        return (StatusCode::BAD_REQUEST, "Something went wrong").into_response();
    }
    let redirect = get("redirect_uri").to_string();
    let mut sim = state.lock().unwrap();
    sim.counter += 1;
    let code = format!("atl-code-{}", sim.counter);
    sim.codes
        .insert(code.clone(), (redirect.clone(), get("scope").to_string()));
    let mut url = url::Url::parse(&redirect).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", get("state"));
    Redirect::to(url.as_str()).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut sim = state.lock().unwrap();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    sim.last_token_request = Some((form.clone(), authorization));
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
    }
    let (family, scopes) = match get("grant_type") {
        "authorization_code" => {
            let Some((redirect, scopes)) = sim.codes.remove(get("code")) else {
                return oauth_error(
                    StatusCode::FORBIDDEN,
                    "invalid_grant",
                    "Invalid authorization code",
                );
            };
            if redirect != get("redirect_uri") {
                return oauth_error(
                    StatusCode::FORBIDDEN,
                    "invalid_grant",
                    "redirect_uri mismatch",
                );
            }
            sim.counter += 1;
            (sim.counter, scopes)
        }
        "refresh_token" => {
            let sent = get("refresh_token").to_string();
            match sim.refresh_tokens.get(&sent).cloned() {
                Some((family, scopes, true)) => {
                    sim.refresh_tokens
                        .insert(sent, (family, scopes.clone(), false));
                    (family, scopes)
                }
                Some((family, _, false)) => {
                    // Reuse past the leeway: the whole family dies.
                    sim.refresh_tokens.retain(|_, (f, _, _)| *f != family);
                    return oauth_error(
                        StatusCode::FORBIDDEN,
                        "invalid_grant",
                        "Unknown or invalid refresh token.",
                    );
                }
                None => {
                    return oauth_error(
                        StatusCode::FORBIDDEN,
                        "invalid_grant",
                        "Unknown or invalid refresh token.",
                    );
                }
            }
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", ""),
    };
    sim.counter += 1;
    let n = sim.counter;
    let access = format!("eyJhbGciOiJSUzI1NiJ9.atl-{n}.sig");
    sim.access_tokens.insert(access.clone(), scopes.clone());
    let mut body = json!({"access_token": access, "token_type": "Bearer",
        "expires_in": 3600, "scope": scopes});
    if scopes.split(' ').any(|s| s == "offline_access") {
        let refresh = format!("atl-rt-{n}");
        sim.refresh_tokens
            .insert(refresh.clone(), (family, scopes.clone(), true));
        body["refresh_token"] = json!(refresh);
    }
    Json(body).into_response()
}

/// The scopes of the bearer token, if it is live.
fn scopes_of(state: &Shared, headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| state.lock().unwrap().access_tokens.get(t).cloned())
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"code": 401, "message": "Unauthorized"})),
    )
        .into_response()
}

async fn me(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(scopes) = scopes_of(&state, &headers) else {
        return unauthorized();
    };
    if !scopes.split(' ').any(|s| s == "read:me") {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"code": 403, "message": "The token does not have the required scope"})),
        )
            .into_response();
    }
    Json(
        json!({"account_type": "atlassian", "account_id": ACCOUNT_ID,
        "email": "alice@example.com", "email_verified": true, "name": "Alice Liddell",
        "picture": "https://avatars.example/alice", "account_status": "active",
        "nickname": "alice", "zoneinfo": "Europe/Berlin", "locale": "en-US",
        "extended_profile": {"job_title": "Engineer", "department": "R&D"}}),
    )
    .into_response()
}

async fn resources(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if scopes_of(&state, &headers).is_none() {
        return unauthorized();
    }
    Json(json!([
        {"id": SITE_IDS[0], "name": "acme", "url": "https://acme.atlassian.net",
         "scopes": ["read:jira-work"], "avatarUrl": "https://avatars.example/acme"},
        {"id": SITE_IDS[1], "name": "acme-sandbox", "url": "https://acme-sandbox.atlassian.net",
         "scopes": ["read:jira-work"], "avatarUrl": "https://avatars.example/sandbox"},
    ]))
    .into_response()
}

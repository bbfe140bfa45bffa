//! GitHub's OAuth and REST API as documented: `/login/oauth/authorize` and
//! `/login/oauth/access_token` on the web host, the REST API under `/api/v3` (the
//! Enterprise Server layout). Quirks kept: the token endpoint answers form-encoded
//! unless the request accepts JSON, and reports errors with status 200; OAuth-App
//! tokens have no expiry and no refresh token; GitHub-App tokens expire in 8 h and
//! their refresh token is single-use; `/user` hides the private email.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "Iv1.test-client";
pub const CLIENT_SECRET: &str = "github-secret";

#[derive(Clone, Copy, PartialEq)]
pub enum AppKind {
    /// Classic OAuth App: tokens never expire, no refresh token.
    OAuthApp,
    /// GitHub App with expiring user tokens: 8 h, rotating refresh tokens.
    GitHubApp,
}

#[derive(Default)]
struct Sim {
    codes: HashMap<String, (String, Option<String>)>,
    access_tokens: HashSet<String>,
    /// Live tokens that are not this app's: personal access tokens, other apps'.
    other_tokens: HashSet<String>,
    refresh_tokens: HashSet<String>,
    counter: u64,
}

pub struct GitHubSim {
    pub origin: String,
    state: Arc<(AppKind, Mutex<Sim>)>,
}

type Shared = Arc<(AppKind, Mutex<Sim>)>;

impl GitHubSim {
    pub async fn start(kind: AppKind) -> GitHubSim {
        let state: Shared = Arc::new((kind, Mutex::new(Sim::default())));
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/api/v3/user", get(user))
            .route("/api/v3/user/emails", get(emails))
            .route("/api/v3/user/memberships/orgs/{org}", get(membership))
            .route("/api/v3/user/teams", get(teams))
            .route(
                "/api/v3/applications/{client_id}/grant",
                delete(delete_grant),
            )
            .route("/api/v3/applications/{client_id}/token", post(check_token))
            .with_state(state.clone());
        let origin = crate::common::serve(app).await;
        GitHubSim { origin, state }
    }

    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.origin)
    }

    /// Every access token that still works.
    pub fn live_tokens(&self) -> Vec<String> {
        self.state
            .1
            .lock()
            .unwrap()
            .access_tokens
            .iter()
            .cloned()
            .collect()
    }

    /// A personal access token of the same user: the API takes it, the app did not
    /// issue it.
    pub fn personal_access_token(&self) -> String {
        let token = "ghp_personal0123456789".to_string();
        self.state
            .1
            .lock()
            .unwrap()
            .other_tokens
            .insert(token.clone());
        token
    }

    pub fn is_live(&self, access_token: &str) -> bool {
        self.state
            .1
            .lock()
            .unwrap()
            .access_tokens
            .contains(access_token)
    }
}

/// Signs the user in at once (the test user is always octocat) and returns the code.
async fn authorize(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::NOT_FOUND, "unknown client").into_response();
    }
    let mut sim = state.1.lock().unwrap();
    sim.counter += 1;
    let code = format!("code{}", sim.counter);
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    sim.codes.insert(
        code.clone(),
        (redirect.clone(), q.get("code_challenge").cloned()),
    );
    let mut url = url::Url::parse(&redirect).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", q.get("state").map(String::as_str).unwrap_or(""));
    Redirect::to(url.as_str()).into_response()
}

async fn access_token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let json_wanted = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    // GitHub answers 200 even for errors.
    let answer = |body: Value| -> Response {
        if json_wanted {
            return Json(body).into_response();
        }
        let form: String = body
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    url::form_urlencoded::byte_serialize(
                        v.as_str()
                            .map(String::from)
                            .unwrap_or(v.to_string())
                            .as_bytes()
                    )
                    .collect::<String>()
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        (
            [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
            form,
        )
            .into_response()
    };
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return answer(
            json!({"error": "incorrect_client_credentials", "error_description": "The client_id and/or client_secret passed are incorrect."}),
        );
    }
    let (kind, sim) = &*state;
    let mut sim = sim.lock().unwrap();
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            if *kind != AppKind::GitHubApp || !sim.refresh_tokens.remove(&rt) {
                return answer(
                    json!({"error": "bad_refresh_token", "error_description": "The refresh token passed is incorrect or expired."}),
                );
            }
        }
        _ => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((redirect, challenge)) = sim.codes.remove(&code) else {
                return answer(
                    json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
                );
            };
            if form.get("redirect_uri").is_some_and(|r| *r != redirect) {
                return answer(json!({"error": "redirect_uri_mismatch"}));
            }
            if let Some(challenge) = challenge {
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if computed != challenge {
                    return answer(
                        json!({"error": "bad_verification_code", "error_description": "PKCE verification failed"}),
                    );
                }
            }
        }
    }
    sim.counter += 1;
    let n = sim.counter;
    match kind {
        AppKind::OAuthApp => {
            let token = format!("gho_{n}");
            sim.access_tokens.insert(token.clone());
            answer(
                json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}),
            )
        }
        AppKind::GitHubApp => {
            let (token, refresh) = (format!("ghu_{n}"), format!("ghr_{n}"));
            sim.access_tokens.insert(token.clone());
            sim.refresh_tokens.insert(refresh.clone());
            answer(
                json!({"access_token": token, "expires_in": "28800", "refresh_token": refresh,
                "refresh_token_expires_in": "15811200", "token_type": "bearer", "scope": ""}),
            )
        }
    }
}

fn authorized(state: &Shared, headers: &HeaderMap) -> bool {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        });
    // The REST API refuses requests without a User-Agent.
    let sim = state.1.lock().unwrap();
    headers.contains_key(header::USER_AGENT)
        && token.is_some_and(|t| sim.access_tokens.contains(t) || sim.other_tokens.contains(t))
}

fn bad_credentials() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}))).into_response()
}

async fn user(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return bad_credentials();
    }
    // The email is private, so /user shows none.
    Json(json!({"login": "octocat", "id": 583231, "name": "The Octocat", "email": null, "type": "User",
        "avatar_url": "https://avatars.example/u/583231", "html_url": "https://github.example/octocat"})).into_response()
}

async fn emails(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return bad_credentials();
    }
    Json(json!([
        {"email": "octocat@old.example", "primary": false, "verified": true, "visibility": null},
        {"email": "octocat@github.example", "primary": true, "verified": true, "visibility": "private"},
    ]))
    .into_response()
}

async fn membership(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Response {
    if !authorized(&state, &headers) {
        return bad_credentials();
    }
    match org.as_str() {
        "acme" => {
            Json(json!({"state": "active", "role": "admin", "organization": {"login": "acme"}}))
                .into_response()
        }
        "pending-org" => Json(
            json!({"state": "pending", "role": "member", "organization": {"login": "pending-org"}}),
        )
        .into_response(),
        _ => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response(),
    }
}

async fn teams(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return bad_credentials();
    }
    Json(json!([
        {"slug": "platform", "organization": {"login": "acme"}},
        {"slug": "elsewhere", "organization": {"login": "other"}},
    ]))
    .into_response()
}

/// The app's Basic credentials, or none.
fn app_authenticated(headers: &HeaderMap, client_id: &str) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    client_id == CLIENT_ID
        && headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(expected.as_str())
}

/// The access token in a JSON body (`{"access_token": ...}`).
fn body_token(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|b| b["access_token"].as_str().map(String::from))
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response()
}

/// `POST /applications/{client_id}/token`: the app's Basic credentials, the token in a
/// JSON body; 200 with the app for its own live tokens, 404 for anything else.
async fn check_token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: String,
) -> Response {
    if !app_authenticated(&headers, &client_id) {
        return not_found();
    }
    match body_token(&body) {
        Some(t) if state.1.lock().unwrap().access_tokens.contains(&t) => Json(json!({
            "id": 1, "token": t, "app": {"client_id": CLIENT_ID, "name": "authhost test"},
            "user": {"login": "octocat", "id": 583231}, "scopes": ["read:user"],
        }))
        .into_response(),
        _ => not_found(),
    }
}

/// `DELETE /applications/{client_id}/grant`: the app's Basic credentials, the token in
/// a JSON body; every token of the authorization dies.
async fn delete_grant(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: String,
) -> Response {
    if !app_authenticated(&headers, &client_id) {
        return not_found();
    }
    let mut sim = state.1.lock().unwrap();
    match body_token(&body) {
        Some(t) if sim.access_tokens.remove(&t) => {
            sim.refresh_tokens.clear();
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(),
    }
}

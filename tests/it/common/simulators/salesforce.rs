//! Salesforce's OAuth 2.0 web server flow as documented, under `/services/oauth2/`
//! (`authorize`, `token`, `userinfo`, `revoke`) on one login host; start two to stand
//! for production and a sandbox or My Domain. Kept: codes look like base64 with `=`;
//! the token endpoint takes the client credentials from the form, checks PKCE and
//! answers 400 RFC 6749 errors; the user is picked with `login_hint` (alice of org 1,
//! bob of org 2). Quirks kept: token answers carry no `expires_in` but `instance_url`
//! (another origin, never called), `id`, `issued_at` (ms, a string) and `signature`;
//! refresh answers carry no refresh token; revoking a refresh token kills its access
//! tokens; revoking an unknown token answers 400 `invalid_token`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "3MVG9-sim-consumer-key";
pub const CLIENT_SECRET: &str = "sf-secret";
pub const INSTANCE_URL: &str = "https://na1.salesforce.example";
pub const ORG_1: &str = "00D000000000001AAA";
pub const ORG_2: &str = "00D000000000002AAA";

#[derive(Default)]
struct Sim {
    /// code → (user, redirect_uri, challenge)
    codes: HashMap<String, (&'static str, String, Option<String>)>,
    /// access token → (user, the refresh token it came with)
    access_tokens: HashMap<String, (&'static str, String)>,
    /// refresh token → user
    refresh_tokens: HashMap<String, &'static str>,
    /// The last token request's form.
    last_token_form: Option<HashMap<String, String>>,
    requests: usize,
    counter: u64,
}

type Shared = Arc<Mutex<Sim>>;

pub struct SalesforceSim {
    pub origin: String,
    state: Shared,
}

impl SalesforceSim {
    pub async fn start() -> SalesforceSim {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/services/oauth2/authorize", get(authorize))
            .route("/services/oauth2/token", post(token))
            .route("/services/oauth2/userinfo", get(userinfo))
            .route("/services/oauth2/revoke", post(revoke))
            .with_state(state.clone());
        let origin = crate::common::serve(app).await;
        SalesforceSim { origin, state }
    }

    /// How many requests this login host has answered.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    pub fn last_token_form(&self) -> HashMap<String, String> {
        self.state
            .lock()
            .unwrap()
            .last_token_form
            .clone()
            .expect("a token request")
    }

    pub fn is_live(&self, access_token: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .access_tokens
            .contains_key(access_token)
    }
}

fn user_of(hint: Option<&String>) -> &'static str {
    match hint.map(String::as_str) {
        Some("bob@other.example") => "bob",
        _ => "alice",
    }
}

async fn authorize(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut sim = state.lock().unwrap();
    sim.requests += 1;
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "error=invalid_client_id").into_response();
    }
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    sim.counter += 1;
    let code = format!("aPrx{}GvS1Q==", sim.counter);
    let user = user_of(q.get("login_hint"));
    sim.codes.insert(
        code.clone(),
        (user, redirect.clone(), q.get("code_challenge").cloned()),
    );
    let mut url = url::Url::parse(&redirect).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", q.get("state").map(String::as_str).unwrap_or(""));
    Redirect::to(url.as_str()).into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn identity(origin: &str, user: &str) -> String {
    let (org, id) = ids(user);
    format!("{origin}/id/{org}/{id}")
}

fn ids(user: &str) -> (&'static str, &'static str) {
    match user {
        "bob" => (ORG_2, "005000000000002AAA"),
        _ => (ORG_1, "005000000000001AAA"),
    }
}

async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut sim = state.lock().unwrap();
    sim.requests += 1;
    sim.last_token_form = Some(form.clone());
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if headers.contains_key(header::AUTHORIZATION)
        || get("client_id") != CLIENT_ID
        || get("client_secret") != CLIENT_SECRET
    {
        return oauth_error("invalid_client", "invalid client credentials");
    }
    let origin = format!(
        "http://{}",
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
    );
    sim.counter += 1;
    let n = sim.counter;
    let access = format!("00D000000000001!AQ0AQ-{n}");
    match get("grant_type") {
        "authorization_code" => {
            let Some((user, redirect, challenge)) = sim.codes.remove(get("code")) else {
                return oauth_error("invalid_grant", "expired authorization code");
            };
            if redirect != get("redirect_uri") {
                return oauth_error("invalid_grant", "redirect_uri mismatch");
            }
            if let Some(challenge) = challenge {
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(get("code_verifier").as_bytes()));
                if computed != challenge {
                    return oauth_error("invalid_grant", "invalid code verifier");
                }
            }
            let refresh = format!("5Aep861-{n}");
            sim.refresh_tokens.insert(refresh.clone(), user);
            sim.access_tokens
                .insert(access.clone(), (user, refresh.clone()));
            Json(json!({"access_token": access, "refresh_token": refresh,
                "signature": "c2lnbmF0dXJl=", "scope": "openid api refresh_token",
                "id_token": "e30.e30.sig", "instance_url": INSTANCE_URL,
                "id": identity(&origin, user), "token_type": "Bearer",
                "issued_at": "1732000000000"}))
            .into_response()
        }
        "refresh_token" => {
            let refresh = get("refresh_token").to_string();
            let Some(user) = sim.refresh_tokens.get(&refresh).copied() else {
                return oauth_error("invalid_grant", "expired access/refresh token");
            };
            sim.access_tokens.insert(access.clone(), (user, refresh));
            Json(
                json!({"access_token": access, "signature": "c2lnbmF0dXJlMg=",
                "scope": "openid api refresh_token", "instance_url": INSTANCE_URL,
                "id": identity(&origin, user), "token_type": "Bearer",
                "issued_at": "1732000360000"}),
            )
            .into_response()
        }
        _ => oauth_error("unsupported_grant_type", "grant type not supported"),
    }
}

async fn userinfo(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut sim = state.lock().unwrap();
    sim.requests += 1;
    let user = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| sim.access_tokens.get(t))
        .map(|(user, _)| *user);
    let Some(user) = user else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])),
        )
            .into_response();
    };
    let origin = format!(
        "http://{}",
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
    );
    let (org, id) = ids(user);
    let (name, email) = match user {
        "bob" => ("Bob Other", "bob@other.example"),
        _ => ("Alice Liddell", "alice@acme.example"),
    };
    Json(
        json!({"sub": identity(&origin, user), "user_id": id, "organization_id": org,
        "preferred_username": email, "nickname": user, "name": name,
        "email": email, "email_verified": true, "zoneinfo": "Europe/Berlin",
        "locale": "en_US", "active": true, "user_type": "STANDARD",
        "urls": {"rest": format!("{INSTANCE_URL}/services/data/v{{version}}/")}}),
    )
    .into_response()
}

async fn revoke(
    State(state): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut sim = state.lock().unwrap();
    sim.requests += 1;
    let token = form.get("token").cloned().unwrap_or_default();
    if sim.refresh_tokens.remove(&token).is_some() {
        // The refresh token takes its access tokens with it.
        sim.access_tokens.retain(|_, (_, rt)| *rt != token);
        return StatusCode::OK.into_response();
    }
    if sim.access_tokens.remove(&token).is_some() {
        return StatusCode::OK.into_response();
    }
    oauth_error("invalid_token", "")
}

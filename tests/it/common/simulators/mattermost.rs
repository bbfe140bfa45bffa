//! Mattermost as an OAuth 2.0 service provider, as documented: `/oauth/authorize`,
//! `/oauth/access_token` and `/api/v4/users/me`, one trusted app and one signed-in user.
//! Kept: app ids are 26 characters (`bad_client_id` otherwise); the token endpoint reads
//! `client_id` and `client_secret` from the form only, and fails with Mattermost error
//! objects (`{"id": "api.oauth...", ...}`), not RFC 6749 errors; codes are single-use
//! and checked against the redirect URI and the PKCE challenge; public apps need PKCE
//! and must send no secret. Quirks kept: a second sign-in while the grant is live
//! returns the same tokens with `expires_in` = the remaining lifetime, which is
//! negative for non-expiring sessions (switchable: any value, or none); a refresh
//! starts a new session and kills the old refresh and access tokens.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "mattermostappid00000000001";
pub const CLIENT_SECRET: &str = "mm-secret";
pub const REDIRECT_URI: &str = "http://127.0.0.1/oauth/callback/test";
pub const USER_ID: &str = "u1a2b3c4d5e6f7g8h9i0j1k2l3";

struct Sim {
    public: bool,
    codes: HashMap<String, (String, Option<String>)>,
    access_tokens: HashSet<String>,
    refresh_tokens: HashSet<String>,
    /// The user's live grant: (access token, refresh token).
    grant: Option<(String, String)>,
    /// `expires_in` answered for a reused grant; `None` leaves it out.
    reuse_expires_in: Option<i64>,
    /// The last token request: its form and its Authorization header.
    last_token_request: Option<(HashMap<String, String>, Option<String>)>,
    counter: u64,
}

type Shared = Arc<Mutex<Sim>>;

pub struct MattermostSim {
    pub origin: String,
    state: Shared,
}

impl MattermostSim {
    /// `public`: the app is marked "Is Public Client" (no secret, PKCE required).
    pub async fn start(public: bool) -> MattermostSim {
        let state: Shared = Arc::new(Mutex::new(Sim {
            public,
            codes: HashMap::new(),
            access_tokens: HashSet::new(),
            refresh_tokens: HashSet::new(),
            grant: None,
            reuse_expires_in: Some(-1_700_000_000),
            last_token_request: None,
            counter: 0,
        }));
        let app = Router::new()
            .route("/oauth/authorize", get(authorize))
            .route("/oauth/access_token", post(access_token))
            .route("/api/v4/users/me", get(me))
            .with_state(state.clone());
        let origin = crate::common::serve(app).await;
        MattermostSim { origin, state }
    }

    /// What a reused grant answers as `expires_in` (`None`: the field is left out).
    pub fn set_reuse_expires_in(&self, value: Option<i64>) {
        self.state.lock().unwrap().reuse_expires_in = value;
    }

    /// The last token request's form and Authorization header.
    pub fn last_token_request(&self) -> (HashMap<String, String>, Option<String>) {
        self.state
            .lock()
            .unwrap()
            .last_token_request
            .clone()
            .expect("a token request")
    }

    pub fn is_live(&self, access_token: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .access_tokens
            .contains(access_token)
    }
}

fn page(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html")],
        format!("<html><body>{text}</body></html>"),
    )
        .into_response()
}

/// The user is logged in and the app is trusted: straight back with a code.
async fn authorize(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return page(StatusCode::NOT_FOUND, "OAuth app not found");
    }
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    if redirect != REDIRECT_URI {
        return page(StatusCode::BAD_REQUEST, "invalid redirect URL");
    }
    let mut sim = state.lock().unwrap();
    let challenge = q.get("code_challenge").cloned();
    if sim.public && challenge.is_none() {
        return page(
            StatusCode::BAD_REQUEST,
            "PKCE is required for public clients",
        );
    }
    sim.counter += 1;
    let code = format!("mmcode{:020}", sim.counter);
    sim.codes
        .insert(code.clone(), (redirect.clone(), challenge));
    let mut url = url::Url::parse(&redirect).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", q.get("state").map(String::as_str).unwrap_or(""));
    Redirect::to(url.as_str()).into_response()
}

fn app_error(status: StatusCode, id: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"id": id, "message": message, "detailed_error": "",
            "request_id": "r0000000000000000000000000", "status_code": status.as_u16()})),
    )
        .into_response()
}

fn new_token(sim: &mut Sim, prefix: &str) -> String {
    sim.counter += 1;
    format!("{prefix}{:024}", sim.counter)
}

async fn access_token(
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
    let field = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    const P: &str = "api.oauth.get_access_token";
    let grant_type = field("grant_type");
    if !matches!(grant_type, Some("authorization_code" | "refresh_token")) {
        return app_error(
            StatusCode::BAD_REQUEST,
            &format!("{P}.bad_grant.app_error"),
            "invalid grant type",
        );
    }
    let refresh = grant_type == Some("refresh_token");
    if !refresh && field("code").is_none() {
        return app_error(
            StatusCode::BAD_REQUEST,
            &format!("{P}.missing_code.app_error"),
            "missing code",
        );
    }
    if refresh && field("refresh_token").is_none() {
        return app_error(
            StatusCode::BAD_REQUEST,
            &format!("{P}.missing_refresh_token.app_error"),
            "missing refresh token",
        );
    }
    let client_id = field("client_id").unwrap_or("");
    if client_id.len() != 26 {
        return app_error(
            StatusCode::BAD_REQUEST,
            &format!("{P}.bad_client_id.app_error"),
            "invalid client id",
        );
    }
    if client_id != CLIENT_ID {
        return app_error(
            StatusCode::NOT_FOUND,
            &format!("{P}.credentials.app_error"),
            "invalid client credentials",
        );
    }
    if sim.public {
        if field("client_secret").is_some() || (!refresh && field("code_verifier").is_none()) {
            return app_error(
                StatusCode::BAD_REQUEST,
                &format!("{P}.public_client_pkce.app_error"),
                "public clients must use PKCE and no secret",
            );
        }
    } else if field("client_secret") != Some(CLIENT_SECRET) {
        return app_error(
            StatusCode::FORBIDDEN,
            &format!("{P}.credentials.app_error"),
            "invalid client credentials",
        );
    }
    if refresh {
        let old = field("refresh_token").unwrap().to_string();
        if !sim.refresh_tokens.remove(&old) {
            return app_error(
                StatusCode::NOT_FOUND,
                &format!("{P}.refresh_token.app_error"),
                "refresh token not found",
            );
        }
        // A new session: the old one's access token dies with it.
        if let Some((access, _)) = sim.grant.take() {
            sim.access_tokens.remove(&access);
        }
    } else {
        let code = field("code").unwrap().to_string();
        let Some((redirect, challenge)) = sim.codes.remove(&code) else {
            return app_error(
                StatusCode::BAD_REQUEST,
                &format!("{P}.expired_code.app_error"),
                "invalid or expired authorization code",
            );
        };
        if field("redirect_uri") != Some(redirect.as_str()) {
            return app_error(
                StatusCode::BAD_REQUEST,
                &format!("{P}.redirect_uri.app_error"),
                "redirect_uri does not match",
            );
        }
        if let Some(challenge) = challenge {
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(
                field("code_verifier").unwrap_or("").as_bytes(),
            ));
            if computed != challenge {
                return app_error(
                    StatusCode::BAD_REQUEST,
                    &format!("{P}.pkce_verifier.app_error"),
                    "invalid code verifier",
                );
            }
        }
        // Reused grant: the same tokens, expires_in = the remaining lifetime.
        if let Some((access, refresh_token)) = sim.grant.clone()
            && sim.access_tokens.contains(&access)
        {
            let mut body = json!({"access_token": access, "token_type": "bearer",
                "refresh_token": refresh_token, "scope": "user"});
            if let Some(expires_in) = sim.reuse_expires_in {
                body["expires_in"] = json!(expires_in);
            }
            return token_answer(body);
        }
    }
    let access = new_token(&mut sim, "at");
    let refresh_token = new_token(&mut sim, "rt");
    sim.access_tokens.insert(access.clone());
    sim.refresh_tokens.insert(refresh_token.clone());
    sim.grant = Some((access.clone(), refresh_token.clone()));
    token_answer(json!({"access_token": access, "token_type": "bearer",
        "expires_in": 2_592_000, "refresh_token": refresh_token, "scope": "user"}))
}

fn token_answer(body: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

async fn me(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| state.lock().unwrap().access_tokens.contains(t)) {
        return app_error(
            StatusCode::UNAUTHORIZED,
            "api.context.session_expired.app_error",
            "Invalid or expired session, please login again.",
        );
    }
    Json(
        json!({"id": USER_ID, "create_at": 1_700_000_000_000u64, "update_at": 1_700_000_000_000u64,
        "delete_at": 0, "username": "alice", "auth_data": "", "auth_service": "",
        "email": "alice@example.com", "email_verified": true, "nickname": "Al",
        "first_name": "Alice", "last_name": "Liddell", "position": "",
        "roles": "system_user system_admin", "locale": "en", "timezone": {}}),
    )
    .into_response()
}

//! A development OpenID provider at `/dev-idp` with two users. In memory, plain, and
//! only mounted by `serve --dev`.

use crate::crypto;
use crate::pages;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const PATH: &str = "/dev-idp";
pub const CLIENT_ID: &str = "authhost-dev";

#[derive(Debug, Clone, Serialize)]
pub struct DevUser {
    pub username: &'static str,
    pub password: &'static str,
    pub sub: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub groups: &'static [&'static str],
}

pub const USERS: &[DevUser] = &[
    DevUser {
        username: "alice",
        password: "alice",
        sub: "dev-alice",
        name: "Alice Developer",
        email: "alice@example.com",
        groups: &["engineering", "admins"],
    },
    DevUser {
        username: "bob",
        password: "bob",
        sub: "dev-bob",
        name: "Bob Tester",
        email: "bob@example.com",
        groups: &["sales"],
    },
];

struct Issued {
    user: &'static DevUser,
    nonce: Option<String>,
    challenge: Option<String>,
    redirect_uri: String,
}

pub struct DevIdp {
    issuer: String,
    client_secret: String,
    codes: Mutex<HashMap<String, Issued>>,
    access_tokens: Mutex<HashMap<String, &'static DevUser>>,
    refresh_tokens: Mutex<HashMap<String, &'static DevUser>>,
}

impl DevIdp {
    pub fn new(base_url: &str, client_secret: &str) -> Arc<DevIdp> {
        Arc::new(DevIdp {
            issuer: format!("{base_url}{PATH}"),
            client_secret: client_secret.to_string(),
            codes: Mutex::default(),
            access_tokens: Mutex::default(),
            refresh_tokens: Mutex::default(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route(
                &format!("{PATH}/.well-known/openid-configuration"),
                get(discovery),
            )
            .route(&format!("{PATH}/authorize"), get(login_page).post(login))
            .route(&format!("{PATH}/token"), post(token))
            .route(&format!("{PATH}/userinfo"), get(userinfo))
            .with_state(self)
    }

    fn claims(&self, user: &DevUser) -> Value {
        json!({
            "sub": user.sub, "preferred_username": user.username, "name": user.name,
            "email": user.email, "email_verified": true, "groups": user.groups,
        })
    }
}

async fn discovery(State(idp): State<Arc<DevIdp>>) -> Json<Value> {
    let i = &idp.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["none"],
    }))
}

fn render_login(params: &HashMap<String, String>, error: Option<&str>) -> Response {
    let hidden: Vec<(String, String)> = [
        "client_id",
        "redirect_uri",
        "state",
        "nonce",
        "code_challenge",
        "scope",
    ]
    .iter()
    .filter_map(|k| params.get(*k).map(|v| (k.to_string(), v.clone())))
    .collect();
    let html = pages::render(
        "dev_login.html",
        minijinja::context! { action => format!("{PATH}/authorize"), hidden, users => USERS, error },
    );
    (pages::secure_headers(), Html(html)).into_response()
}

async fn login_page(Query(params): Query<HashMap<String, String>>) -> Response {
    render_login(&params, None)
}

async fn login(
    State(idp): State<Arc<DevIdp>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let user = USERS.iter().find(|u| {
        Some(u.username) == form.get("username").map(String::as_str)
            && Some(u.password) == form.get("password").map(String::as_str)
    });
    let Some(user) = user else {
        return render_login(&form, Some("Wrong username or password."));
    };
    let Some(redirect_uri) = form.get("redirect_uri") else {
        return (StatusCode::BAD_REQUEST, "redirect_uri missing").into_response();
    };
    let code = crypto::random_token();
    idp.codes.lock().unwrap_or_else(|p| p.into_inner()).insert(
        code.clone(),
        Issued {
            user,
            nonce: form.get("nonce").cloned(),
            challenge: form.get("code_challenge").cloned(),
            redirect_uri: redirect_uri.clone(),
        },
    );
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response(),
    };
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("iss", &idp.issuer);
    if let Some(state) = form.get("state") {
        url.query_pairs_mut().append_pair("state", state);
    }
    Redirect::to(url.as_str()).into_response()
}

async fn token(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let error =
        |code: &str| (StatusCode::BAD_REQUEST, Json(json!({ "error": code }))).into_response();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{CLIENT_ID}:{}", idp.client_secret))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    let (user, nonce) = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(issued) = form.get("code").and_then(|c| {
                idp.codes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(c)
            }) else {
                return error("invalid_grant");
            };
            let verifier_ok = match (&issued.challenge, form.get("code_verifier")) {
                (Some(challenge), Some(verifier)) => {
                    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge
                }
                (None, _) => true,
                (Some(_), None) => false,
            };
            if !verifier_ok || form.get("redirect_uri") != Some(&issued.redirect_uri) {
                return error("invalid_grant");
            }
            (issued.user, issued.nonce)
        }
        Some("refresh_token") => {
            let removed = form.get("refresh_token").and_then(|t| {
                idp.refresh_tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(t)
            });
            match removed {
                Some(user) => (user, None),
                None => return error("invalid_grant"),
            }
        }
        _ => return error("unsupported_grant_type"),
    };
    let access = crypto::random_token();
    let refresh = crypto::random_token();
    idp.access_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(access.clone(), user);
    idp.refresh_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(refresh.clone(), user);
    let now = crate::clock::now();
    let mut id_claims = idp.claims(user);
    id_claims["iss"] = json!(idp.issuer);
    id_claims["aud"] = json!(CLIENT_ID);
    id_claims["iat"] = json!(now);
    id_claims["exp"] = json!(now + 3600);
    if let Some(nonce) = nonce {
        id_claims["nonce"] = json!(nonce);
    }
    // Unsigned (alg none): the component receives it straight from this token endpoint.
    let id_token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(id_claims.to_string())
    );
    Json(json!({
        "access_token": access, "token_type": "Bearer", "expires_in": 3600,
        "refresh_token": refresh, "id_token": id_token, "scope": "openid profile email",
    }))
    .into_response()
}

async fn userinfo(State(idp): State<Arc<DevIdp>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let user = token.and_then(|t| {
        idp.access_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(t)
            .copied()
    });
    match user {
        Some(user) => Json(idp.claims(user)).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_token" })),
        )
            .into_response(),
    }
}

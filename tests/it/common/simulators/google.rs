//! Google's OpenID Connect endpoints as documented, on one origin that is also the
//! issuer: discovery at `/.well-known/openid-configuration`, authorization at
//! `/o/oauth2/v2/auth`, `/token`, `/v1/userinfo`, `/revoke`, `/tokeninfo`. The account is picked with
//! `login_hint` (alice and dave of example.com, bob of other.example, carol a personal
//! account without `hd`), whatever `hd` the request carried. Kept: the token endpoint
//! takes the client credentials from the form and checks PKCE; a refresh token only with
//! `access_type=offline` and `prompt=consent`; ID tokens with `iss`, `aud`, `nonce`,
//! `exp`, `sub`, `email`, `email_verified`, `hd` (any signature); refresh answers carry
//! no refresh token and no ID token; revocation of either token ends the grant, an
//! unknown token answers 400 `invalid_token`; token info names a live access token's
//! client in `aud` and `azp` and answers 400 `invalid_token` for any other. Quirks kept: `hd` in the request is only
//! a hint; `iss` in the ID token can be switched to the bare form (the issuer without
//! its scheme) or to a foreign issuer.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "123-sim.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "g-secret";

#[derive(Clone, Copy, PartialEq)]
pub enum IssuerForm {
    /// `http://127.0.0.1:<port>`, the issuer as discovery says.
    Full,
    /// `127.0.0.1:<port>`, the legacy form without the scheme.
    Bare,
    /// Someone else's issuer.
    Foreign,
}

struct Code {
    account: &'static str,
    redirect: String,
    challenge: Option<String>,
    nonce: String,
    offline: bool,
}

struct Sim {
    origin: String,
    issuer_form: IssuerForm,
    codes: HashMap<String, Code>,
    /// access token → (account, grant)
    access_tokens: HashMap<String, (&'static str, u64)>,
    /// refresh token → (account, grant)
    refresh_tokens: HashMap<String, (&'static str, u64)>,
    /// Access tokens issued to another application (userinfo takes them too).
    other_app_tokens: HashMap<String, &'static str>,
    counter: u64,
}

type Shared = Arc<Mutex<Sim>>;

pub struct GoogleSim {
    pub origin: String,
    state: Shared,
}

impl GoogleSim {
    pub async fn start() -> GoogleSim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let state: Shared = Arc::new(Mutex::new(Sim {
            origin: origin.clone(),
            issuer_form: IssuerForm::Full,
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            other_app_tokens: HashMap::new(),
            counter: 0,
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/o/oauth2/v2/auth", get(authorize))
            .route("/token", post(token))
            .route("/v1/userinfo", get(userinfo))
            .route("/revoke", post(revoke))
            .route("/tokeninfo", post(tokeninfo))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        GoogleSim { origin, state }
    }

    pub fn set_issuer_form(&self, form: IssuerForm) {
        self.state.lock().unwrap().issuer_form = form;
    }

    /// A live access token of `account` that another application obtained.
    pub fn token_of_another_app(&self, account: &'static str) -> String {
        let mut sim = self.state.lock().unwrap();
        sim.counter += 1;
        let token = format!("ya29.other-{}", sim.counter);
        sim.access_tokens.insert(token.clone(), (account, 0));
        sim.other_app_tokens.insert(token.clone(), account);
        token
    }

    pub fn is_live(&self, access_token: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .access_tokens
            .contains_key(access_token)
    }
}

async fn discovery(State(state): State<Shared>) -> Json<Value> {
    let o = state.lock().unwrap().origin.clone();
    Json(json!({
        "issuer": o,
        "authorization_endpoint": format!("{o}/o/oauth2/v2/auth"),
        "token_endpoint": format!("{o}/token"),
        "userinfo_endpoint": format!("{o}/v1/userinfo"),
        "revocation_endpoint": format!("{o}/revoke"),
        "jwks_uri": format!("{o}/oauth2/v3/certs"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
    }))
}

/// The account's claims: sub, email, email_verified, name, hd when a Workspace account.
fn account(name: &str) -> Value {
    let (sub, email, verified, full, hd) = match name {
        "bob" => (
            "110169484474386276335",
            "bob@other.example",
            true,
            "Bob Other",
            Some("other.example"),
        ),
        "carol" => (
            "110169484474386276336",
            "carol@gmail.com",
            true,
            "Carol Personal",
            None,
        ),
        "dave" => (
            "110169484474386276337",
            "dave@example.com",
            false,
            "Dave Unverified",
            Some("example.com"),
        ),
        _ => (
            "110169484474386276334",
            "alice@example.com",
            true,
            "Alice Liddell",
            Some("example.com"),
        ),
    };
    let mut claims = json!({"sub": sub, "email": email, "email_verified": verified,
        "name": full, "given_name": full.split(' ').next().unwrap(),
        "picture": format!("https://lh3.example/{sub}")});
    if let Some(hd) = hd {
        claims["hd"] = json!(hd);
    }
    claims
}

async fn authorize(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != CLIENT_ID || get("response_type") != "code" {
        return (StatusCode::BAD_REQUEST, "Error 400: invalid_request").into_response();
    }
    // `hd` only filters the account chooser: the user picks whichever account.
    let account = match get("login_hint") {
        "bob@other.example" => "bob",
        "carol@gmail.com" => "carol",
        "dave@example.com" => "dave",
        _ => "alice",
    };
    let mut sim = state.lock().unwrap();
    sim.counter += 1;
    let code = format!("4/0A{}", sim.counter);
    sim.codes.insert(
        code.clone(),
        Code {
            account,
            redirect: get("redirect_uri").into(),
            challenge: q.get("code_challenge").cloned(),
            nonce: get("nonce").into(),
            offline: get("access_type") == "offline"
                && get("prompt").split(' ').any(|p| p == "consent"),
        },
    );
    let mut url = url::Url::parse(get("redirect_uri")).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("scope", "email profile openid")
        .append_pair("authuser", "0")
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

fn id_token(sim: &Sim, account_name: &str, nonce: &str) -> String {
    let iss = match sim.issuer_form {
        IssuerForm::Full => sim.origin.clone(),
        IssuerForm::Bare => sim.origin.trim_start_matches("http://").to_string(),
        IssuerForm::Foreign => "https://accounts.evil.example".into(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = account(account_name);
    for (k, v) in [
        ("iss", json!(iss)),
        ("azp", json!(CLIENT_ID)),
        ("aud", json!(CLIENT_ID)),
        ("nonce", json!(nonce)),
        ("at_hash", json!("HK6E_P6Dh8Y93mRNtsDB1Q")),
        ("iat", json!(now)),
        ("exp", json!(now + 3600)),
    ] {
        claims[k] = v;
    }
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(&json!({"alg": "RS256", "kid": "sim", "typ": "JWT"})),
        b64(&claims)
    )
}

async fn token(State(state): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    let mut sim = state.lock().unwrap();
    sim.counter += 1;
    let n = sim.counter;
    let access = format!("ya29.a0-{n}");
    match get("grant_type") {
        "authorization_code" => {
            let Some(code) = sim.codes.remove(get("code")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
            };
            let verified = code.challenge.as_ref().is_none_or(|c| {
                *c == base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(get("code_verifier").as_bytes()))
            });
            if code.redirect != get("redirect_uri") || !verified {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
            }
            sim.access_tokens.insert(access.clone(), (code.account, n));
            let mut body = json!({"access_token": access, "expires_in": 3599,
                "token_type": "Bearer", "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
                "id_token": id_token(&sim, code.account, &code.nonce)});
            if code.offline {
                let refresh = format!("1//0g-{n}");
                sim.refresh_tokens
                    .insert(refresh.clone(), (code.account, n));
                body["refresh_token"] = json!(refresh);
            }
            Json(body).into_response()
        }
        "refresh_token" => {
            let Some((account, grant)) = sim.refresh_tokens.get(get("refresh_token")).copied()
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Token has been expired or revoked.",
                );
            };
            sim.access_tokens.insert(access.clone(), (account, grant));
            // No refresh token, and (this variant) no ID token.
            Json(
                json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer",
                "scope": "openid https://www.googleapis.com/auth/userinfo.email"}),
            )
            .into_response()
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", ""),
    }
}

async fn userinfo(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| state.lock().unwrap().access_tokens.get(t).copied());
    match bearer {
        Some((name, _)) => Json(account(name)).into_response(),
        None => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "Invalid Credentials",
        ),
    }
}

async fn revoke(
    State(state): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut sim = state.lock().unwrap();
    let token = form.get("token").cloned().unwrap_or_default();
    let grant = sim
        .access_tokens
        .get(&token)
        .or_else(|| sim.refresh_tokens.get(&token))
        .map(|(_, g)| *g);
    match grant {
        Some(g) => {
            // Either token ends the whole grant.
            sim.access_tokens.retain(|_, (_, x)| *x != g);
            sim.refresh_tokens.retain(|_, (_, x)| *x != g);
            Json(json!({})).into_response()
        }
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        ),
    }
}

async fn tokeninfo(
    State(state): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sim = state.lock().unwrap();
    let token = form.get("access_token").cloned().unwrap_or_default();
    let Some((name, _)) = sim.access_tokens.get(&token) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_token", "Invalid Value");
    };
    let client = if sim.other_app_tokens.contains_key(&token) {
        "999-other.apps.googleusercontent.com"
    } else {
        CLIENT_ID
    };
    Json(json!({
        "azp": client, "aud": client, "sub": account(name)["sub"],
        "scope": "openid email profile", "expires_in": "3599",
    }))
    .into_response()
}

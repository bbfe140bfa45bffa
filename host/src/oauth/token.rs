//! The token endpoint: authorization codes (with PKCE) and rotating refresh tokens,
//! answered with a signed access token for the grant's resource.

use super::clients::Client;
use super::error::OAuthError;
use super::jwt::AccessClaims;
use crate::audit::Event;
use crate::crypto;
use crate::state::AppState;
use crate::store::{Grant, RedeemError};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The client of a token, revocation or introspection request, authenticated.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Client, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(|b64| {
            let decoded = STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let (id, secret) = decoded
                .as_deref()
                .and_then(|d| d.split_once(':'))
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Ok::<_, OAuthError>((decode(id), decode(secret)))
        })
        .transpose()?;
    let (client_id, secret) = match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        (Some((id, secret)), None) => (id, Some(secret)),
        (None, secret) => (
            form.get("client_id")
                .cloned()
                .ok_or_else(|| OAuthError::invalid_client("client_id is required"))?,
            secret.cloned(),
        ),
    };
    if let Some(form_id) = form.get("client_id")
        && *form_id != client_id
    {
        return Err(OAuthError::invalid_client(
            "client_id does not match the credentials",
        ));
    }
    let client = state
        .clients
        .find(&state.store, &client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    client.authenticate(secret.as_deref())?;
    Ok(client)
}

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form.map_err(|e| {
        OAuthError::invalid_request(format!("the body must be a form: {}", e.body_text()))
    })?;
    let client = authenticate_client(&state, &headers, &form).await?;
    let now = crate::clock::now();
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let grant = match param("grant_type") {
        Some("authorization_code") => {
            let code =
                param("code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
            let grant = state
                .store
                .redeem_code(&crypto::hash_token(code), now)
                .await?
                .map_err(|e| redeem_error(&state, "authorization code", e, &client))?;
            // From here the code is spent, whatever happens: a wrong verifier burns it.
            if grant.client_id != client.client_id {
                state.store.revoke_grant(&grant.id, now).await?;
                return Err(OAuthError::invalid_grant(
                    "the code was issued to another client",
                ));
            }
            if param("redirect_uri").is_some_and(|uri| uri != grant.redirect_uri) {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri differs from the authorization request",
                ));
            }
            let verifier = param("code_verifier")
                .ok_or_else(|| OAuthError::invalid_grant("code_verifier is required (PKCE)"))?;
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if !crypto::same(&computed, &grant.code_challenge) {
                state.store.revoke_grant(&grant.id, now).await?;
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            check_resource(param("resource"), &grant)?;
            grant
        }
        Some("refresh_token") => {
            let token = param("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
            let grant = state
                .store
                .use_refresh_token(&crypto::hash_token(token), now)
                .await?
                .map_err(|e| redeem_error(&state, "refresh token", e, &client))?;
            if grant.client_id != client.client_id {
                state.store.revoke_grant(&grant.id, now).await?;
                return Err(OAuthError::invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            check_resource(param("resource"), &grant)?;
            if let Some(scope) = param("scope") {
                let granted: Vec<&str> = grant.scope.split_whitespace().collect();
                if let Some(extra) = scope
                    .split_whitespace()
                    .find(|s| *s != "offline_access" && !granted.contains(s))
                {
                    return Err(OAuthError::invalid_scope(format!(
                        "scope `{extra}` was not granted"
                    )));
                }
            }
            grant
        }
        Some(other) => {
            return Err(OAuthError::unsupported_grant_type(format!(
                "grant_type `{other}` is not supported"
            )));
        }
        None => return Err(OAuthError::invalid_request("grant_type is required")),
    };
    let response = issue_tokens(&state, &grant, now).await?;
    let grant_type = param("grant_type").unwrap_or_default();
    state.metrics.token_issued(grant_type);
    state.audit.record(Event {
        event: if grant_type == "refresh_token" {
            "token_refreshed"
        } else {
            "token_issued"
        },
        user: Some(&grant.subject),
        client_id: Some(&client.client_id),
        provider: Some(&grant.provider),
        resource: Some(&grant.resource),
        detail: None,
    });
    Ok(response)
}

/// Why a code or refresh token was refused, in words; a replay is logged, since the
/// grant was revoked because of it.
fn redeem_error(state: &AppState, what: &str, error: RedeemError, client: &Client) -> OAuthError {
    match error {
        RedeemError::Replayed { grant_id } => {
            tracing::warn!(
                client_id = client.client_id,
                grant_id,
                "{what} replayed; grant revoked"
            );
            state.audit.record(Event {
                event: if what == "refresh token" {
                    "refresh_reuse"
                } else {
                    "code_replay"
                },
                client_id: Some(&client.client_id),
                detail: Some(format!("{what} used twice; the grant is revoked")),
                ..Event::default()
            });
            OAuthError::invalid_grant(format!(
                "the {what} was already used; all tokens of this grant are revoked"
            ))
        }
        RedeemError::Expired => OAuthError::invalid_grant(format!("the {what} has expired")),
        RedeemError::Revoked => OAuthError::invalid_grant("the grant was revoked"),
        RedeemError::Unknown => OAuthError::invalid_grant(format!("unknown {what}")),
    }
}

fn check_resource(requested: Option<&str>, grant: &Grant) -> Result<(), OAuthError> {
    match requested {
        Some(r) if r.trim_end_matches('/') != grant.resource => Err(OAuthError::invalid_target(
            format!("this grant is for {}, not {r}", grant.resource),
        )),
        _ => Ok(()),
    }
}

async fn issue_tokens(state: &AppState, grant: &Grant, now: i64) -> Result<Response, OAuthError> {
    let ttl = &state.config.tokens;
    let user: Value = serde_json::from_str(&grant.claims).unwrap_or_default();
    let text = |k: &str| user[k].as_str().map(String::from);
    let list = |k: &str| {
        user[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: grant.subject.clone(),
        aud: grant.resource.clone(),
        exp: now + ttl.access_token_ttl as i64,
        iat: now,
        jti: crypto::random_token(),
        client_id: grant.client_id.clone(),
        scope: grant.scope.clone(),
        gid: grant.id.clone(),
        idp: grant.provider.clone(),
        email: text("email"),
        name: text("name"),
        preferred_username: text("preferred_username"),
        groups: list("groups"),
        roles: list("roles"),
    };
    let access_token = state
        .signer
        .sign(&claims)
        .map_err(|e| OAuthError::internal("signing the access token", e))?;
    let refresh_token = crypto::random_token();
    state
        .store
        .insert_refresh_token(
            &crypto::hash_token(&refresh_token),
            &grant.id,
            now,
            now + ttl.refresh_token_ttl as i64,
        )
        .await?;
    let body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.access_token_ttl,
        "refresh_token": refresh_token,
        "scope": grant.scope,
    });
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response())
}

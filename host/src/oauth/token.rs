//! The token endpoint: authorization codes (with PKCE) and rotating refresh tokens,
//! answered with a signed access token for the grant's resource; the other grants
//! each in a file of their own (client_credentials, jwt_bearer, token_exchange).

use super::client_auth::authenticate_client;
use super::client_credentials::client_credentials;
use super::error::OAuthError;
use super::{jwt_bearer, token_exchange};
use crate::audit::Event;
use crate::crypto;
use crate::domain::clients::Client;
use crate::domain::grants::{Grants, RefreshRefused};
use crate::domain::id_jag;
use crate::domain::keys::{AccessClaims, TokenFor};
use crate::domain::pkce;
use crate::state::AppState;
use crate::store::{Grant, RedeemError};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;
use std::collections::HashMap;

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form.map_err(|e| {
        OAuthError::invalid_request(format!("the body must be a form: {}", e.body_text()))
    })?;
    let client = authenticate_client(&state, &headers, &form).await?;
    let now = state.clock.now();
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let grant_type =
        param("grant_type").ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let (grant, scope, spend) = match grant_type {
        "authorization_code" => {
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
            if !pkce::verifies(verifier, &grant.code_challenge) {
                state.store.revoke_grant(&grant.id, now).await?;
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            check_resource(param("resource"), &grant)?;
            let scope = grant.scope.clone();
            (grant, scope, Spend::Nothing)
        }
        "refresh_token" => {
            let token = param("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
            let token_hash = crypto::hash_token(token);
            // Everything is checked before the token is spent: a refused request leaves
            // it valid, so the client's corrected retry is not taken for reuse.
            let grant = state
                .store
                .refresh_token_grant_live(&token_hash, now)
                .await?
                .map_err(|e| redeem_error(&state, "refresh token", e, &client))?;
            if grant.client_id != client.client_id {
                return Err(OAuthError::invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            check_resource(param("resource"), &grant)?;
            let scope = narrowed_scope(&grant.scope, param("scope"))?;
            let grant = state
                .grants
                .confirm_for_refresh(grant)
                .await
                .map_err(refresh_refused)?;
            (grant, scope, Spend::RefreshToken(token_hash))
        }
        "client_credentials" => {
            let (resource, scope) = (param("resource"), param("scope"));
            return client_credentials(&state, &client, resource, scope, now).await;
        }
        token_exchange::GRANT_TYPE => {
            return token_exchange::token_exchange(&state, &client, &form, now).await;
        }
        id_jag::GRANT_TYPE => {
            let assertion = param("assertion")
                .ok_or_else(|| OAuthError::invalid_request("assertion is required"))?;
            return jwt_bearer::identity_assertion(
                &state,
                &client,
                assertion,
                param("resource"),
                param("scope"),
                now,
            )
            .await;
        }
        other => {
            return Err(OAuthError::unsupported_grant_type(format!(
                "grant_type `{other}` is not supported"
            )));
        }
    };
    let response = issue_tokens(&state, &grant, &scope, spend, now).await?;
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

/// Sign an access token.
pub(super) fn sign(state: &AppState, claims: &AccessClaims) -> Result<String, OAuthError> {
    state
        .signer
        .sign(claims)
        .map_err(|e| OAuthError::internal("signing the access token", e))
}

/// A token response: never cached (RFC 6749 5.1).
pub(super) fn token_response(body: serde_json::Value) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response()
}

/// The scope of a refreshed access token: the grant's, or the narrower one asked for
/// (RFC 6749 6). The grant itself, and so the next refresh token, keeps its scope.
fn narrowed_scope(granted: &str, requested: Option<&str>) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(granted.to_string());
    };
    let granted: Vec<&str> = granted.split_whitespace().collect();
    let mut scope: Vec<&str> = Vec::new();
    for s in requested.split_whitespace() {
        if s == "offline_access" || scope.contains(&s) {
            continue;
        }
        if !granted.contains(&s) {
            return Err(OAuthError::invalid_scope(format!(
                "scope `{s}` was not granted"
            )));
        }
        scope.push(s);
    }
    Ok(scope.join(" "))
}

/// Why the grant cannot be refreshed, for the client.
fn refresh_refused(refused: RefreshRefused) -> OAuthError {
    match refused {
        RefreshRefused::Ended(why) => OAuthError::invalid_grant(format!("{why}; sign in again")),
        RefreshRefused::Unavailable(why) => OAuthError {
            cause: Some(format!("confirming a user's claims: {why}")),
            ..OAuthError::temporarily_unavailable(
                "the identity provider could not confirm the sign-in; try again shortly",
            )
        },
        RefreshRefused::Store(e) => e.into(),
    }
}

/// What issuing tokens uses up.
enum Spend {
    /// A code, already redeemed.
    Nothing,
    /// The refresh token presented (its hash), spent as its successor is issued.
    RefreshToken(String),
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

/// A `resource` given at the token endpoint must name the grant's (in canonical form).
fn check_resource(requested: Option<&str>, grant: &Grant) -> Result<(), OAuthError> {
    match requested {
        Some(r) if crate::config::canonical_url(r).as_deref() != Some(grant.resource.as_str()) => {
            Err(OAuthError::invalid_target(format!(
                "this grant is for {}, not {r}",
                grant.resource
            )))
        }
        _ => Ok(()),
    }
}

async fn issue_tokens(
    state: &AppState,
    grant: &Grant,
    scope: &str,
    spend: Spend,
    now: i64,
) -> Result<Response, OAuthError> {
    let ttl = &state.config.tokens;
    // Nothing issued outlives the session.
    let session_end = state.grants.session_end(grant.created_at);
    let access_expires = (now + ttl.access_token_ttl as i64).min(session_end);
    let claims = AccessClaims {
        gid: Some(grant.id.clone()),
        idp: Some(grant.provider.clone()),
        ..AccessClaims::naming(
            Grants::user(grant),
            TokenFor {
                issuer: &state.issuer,
                audience: &grant.resource,
                client_id: &grant.client_id,
                scope,
                issued_at: now,
                expires_at: access_expires,
            },
        )
    };
    let access_token = sign(state, &claims)?;
    let refresh_token = crypto::random_token();
    let refresh_hash = crypto::hash_token(&refresh_token);
    let refresh_expires = (now + ttl.refresh_token_ttl as i64).min(session_end);
    match spend {
        Spend::Nothing => {
            state
                .store
                .insert_refresh_token(&refresh_hash, &grant.id, now, refresh_expires)
                .await?
        }
        Spend::RefreshToken(presented) => {
            let rotated = state
                .store
                .rotate_refresh_token(&presented, &refresh_hash, &grant.id, now, refresh_expires)
                .await?;
            if !rotated {
                // Spent by a concurrent request since it was checked: a reuse.
                state.store.revoke_grant(&grant.id, now).await?;
                return Err(OAuthError::invalid_grant(
                    "the refresh token was already used; all tokens of this grant are revoked",
                ));
            }
        }
    }
    Ok(token_response(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": access_expires - now,
        "refresh_token": refresh_token,
        "scope": scope,
    })))
}

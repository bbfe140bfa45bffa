//! Revocation (RFC 7009) and introspection (RFC 7662).

use super::client_auth::authenticate_client;
use super::error::OAuthError;
use crate::crypto;
use crate::domain::keys::AccessClaims;
use crate::runtime::{ProviderError, TokenKind};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::{Value, json};
use std::collections::HashMap;

type FormResult = Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>;

/// Revoke a refresh or access token: its whole grant ends, and the upstream tokens are
/// revoked at the provider where it supports that. Always 200 for unknown tokens.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult,
) -> Result<Response, OAuthError> {
    let Form(form) = form.map_err(|e| OAuthError::invalid_request(e.body_text()))?;
    let client = authenticate_client(&state, &headers, &form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let grant_id = match state
        .store
        .refresh_token_grant(&crypto::hash_token(token))
        .await?
    {
        Some(id) => Some(id),
        // A machine client's access token has no grant: it lives out its short life.
        None => state
            .signer
            .verify(token, None)
            .ok()
            .and_then(|(c, _)| c.gid),
    };
    let Some(grant) = (match grant_id {
        Some(id) => state.store.grant(&id).await?,
        None => None,
    }) else {
        return Ok(StatusCode::OK.into_response());
    };
    if grant.client_id != client.client_id {
        // RFC 7009 2.1: a client may only revoke its own tokens; say nothing more.
        return Ok(StatusCode::OK.into_response());
    }
    let already = grant.revoked_at.is_some();
    state
        .store
        .revoke_grant(&grant.id, state.clock.now())
        .await?;
    state.audit.record(crate::audit::Event {
        event: "revoked",
        user: Some(&grant.subject),
        client_id: Some(&client.client_id),
        provider: Some(&grant.provider),
        resource: Some(&grant.resource),
        detail: None,
    });
    if !already {
        revoke_upstream(&state, &grant).await;
    }
    Ok(StatusCode::OK.into_response())
}

/// Best effort: the upstream may not support revocation, or be down; our grant is
/// already dead either way.
async fn revoke_upstream(state: &AppState, grant: &crate::store::Grant) {
    let Some(instance) = state.registry.instances.get(&grant.provider) else {
        return;
    };
    if !instance.component.info.supports_revoke {
        return;
    }
    let Some(tokens) = grant
        .upstream_tokens
        .as_deref()
        .and_then(|sealed| state.sealer.open(sealed).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    else {
        return;
    };
    // The refresh token first (it ends the whole upstream grant where supported), else
    // the access token.
    let candidates = [
        (tokens["refresh_token"].as_str(), TokenKind::RefreshToken),
        (tokens["access_token"].as_str(), TokenKind::AccessToken),
    ];
    for (token, kind) in candidates {
        let Some(token) = token else { continue };
        match instance.revoke(token.to_string(), kind).await {
            Ok(()) => return,
            Err(e) if matches!(e.provider_error(), Some(ProviderError::Unsupported)) => continue,
            Err(e) => {
                tracing::warn!("upstream revocation failed: {e}");
                return;
            }
        }
    }
}

/// Whether a token whose signature and expiry checked out still stands: its grant not
/// revoked, its machine client still one; a vouched-for user's lives out its short life.
pub async fn is_active(state: &AppState, claims: &AccessClaims) -> Result<bool, OAuthError> {
    Ok(match (&claims.gid, claims.auth.as_deref()) {
        (Some(grant_id), _) => state.store.grant_is_active(grant_id).await?,
        (None, Some("id_jag")) => true,
        (None, _) => state
            .clients
            .find(&state.store, &claims.client_id)
            .await?
            .is_some_and(|c| c.machine.is_some()),
    })
}

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult,
) -> Result<Json<Value>, OAuthError> {
    let Form(form) = form.map_err(|e| OAuthError::invalid_request(e.body_text()))?;
    let client = authenticate_client(&state, &headers, &form).await?;
    // Introspection tells whose a token is: only for the operator's own confidential
    // clients (resource servers), never for one that registered itself.
    if client.secret_hash.is_none() || !client.operator_made() {
        return Err(OAuthError::forbidden_client(
            "introspection is for confidential clients the operator registered",
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let Ok((claims, _)) = state.signer.verify(token, None) else {
        return Ok(Json(json!({ "active": false })));
    };
    if !is_active(&state, &claims).await? {
        return Ok(Json(json!({ "active": false })));
    }
    Ok(Json(json!({
        "active": true,
        "scope": claims.scope,
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
        "token_type": "Bearer",
        "username": claims.preferred_username,
        "act": claims.act,
    })))
}

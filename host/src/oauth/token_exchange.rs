//! Token exchange for delegation (RFC 8693): an MCP server trades the user's token it
//! received for a short-lived token to another API the operator allowed it.

use super::error::OAuthError;
use super::token::{sign, token_response};
use crate::audit::Event;
use crate::crypto;
use crate::domain::clients::Client;
use crate::domain::keys::{AccessClaims, Actor};
use crate::state::AppState;
use axum::response::Response;
use serde_json::json;
use std::collections::HashMap;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The exchange, for the client a server's `delegation` names: the new token has
/// narrowed scopes and names the server as the actor. Refused unless the user's token
/// is for that server and still stands, and the audience is one the operator allowed.
pub async fn token_exchange(
    state: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
    now: i64,
) -> Result<Response, OAuthError> {
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let server = state
        .resources
        .oauth()
        .find(|r| {
            r.delegation
                .as_ref()
                .is_some_and(|d| d.client_id == client.client_id)
        })
        .filter(|_| client.is_confidential())
        .ok_or_else(|| {
            OAuthError::unauthorized_client(
                "this client is not the delegating client of any MCP server \
                 ([mcp_servers.<name>.delegation] client_id)",
            )
        })?;
    let Some(delegation) = &server.delegation else {
        return Err(OAuthError::unauthorized_client("no delegation configured"));
    };
    if param("actor_token").is_some() {
        return Err(OAuthError::invalid_request(
            "actor tokens are not supported: the authenticated client is the actor",
        ));
    }
    for (name, expected) in [
        ("subject_token_type", Some(ACCESS_TOKEN_TYPE)),
        ("requested_token_type", None),
    ] {
        match (param(name), expected) {
            (Some(ACCESS_TOKEN_TYPE), _) | (None, None) => {}
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(format!("{name} is required")));
            }
            (Some(other), _) => {
                return Err(OAuthError::invalid_request(format!(
                    "{name} `{other}` is not supported; use {ACCESS_TOKEN_TYPE}"
                )));
            }
        }
    }
    let subject_token = param("subject_token")
        .ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
    let (subject, _) = state
        .signer
        .verify(subject_token, Some(&server.url))
        .map_err(|why| OAuthError::invalid_grant(format!("subject_token: {why}")))?;
    if subject.gid.is_none() && subject.auth.as_deref() != Some("id_jag") {
        return Err(OAuthError::invalid_grant(
            "subject_token names no user (a machine client's token)",
        ));
    }
    if !crate::oauth::revoke::is_active(state, &subject).await? {
        return Err(OAuthError::invalid_grant("subject_token was revoked"));
    }
    let audience = param("audience")
        .or(param("resource"))
        .ok_or_else(|| OAuthError::invalid_target("audience is required"))?;
    if !delegation.audiences.iter().any(|a| a == audience) {
        return Err(OAuthError::invalid_target(format!(
            "{} may not get tokens for `{audience}`",
            server.name
        )));
    }
    let held: Vec<&str> = subject.scope.split_whitespace().collect();
    let allowed = |s: &&str| {
        held.contains(s)
            && (delegation.scopes.is_empty() || delegation.scopes.iter().any(|d| d == s))
    };
    let scope: Vec<&str> = match param("scope") {
        None => held.iter().copied().filter(allowed).collect(),
        Some(requested) => {
            let requested: Vec<&str> = requested.split_whitespace().collect();
            if let Some(refused) = requested.iter().find(|s| !allowed(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope `{refused}` is not held by the user's token or not allowed for {audience}"
                )));
            }
            requested
        }
    };
    let scope = scope.join(" ");
    // Short-lived, and never beyond the token it was made from.
    let expires = (now + delegation.token_ttl as i64).min(subject.exp);
    let claims = AccessClaims {
        aud: audience.to_string(),
        exp: expires,
        iat: now,
        jti: crypto::random_token(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        act: Some(Actor {
            sub: client.client_id.clone(),
        }),
        ..subject
    };
    let access_token = sign(state, &claims)?;
    state.metrics.token_issued("token_exchange");
    state.audit.record(Event {
        event: "token_exchanged",
        user: Some(&claims.sub),
        client_id: Some(&client.client_id),
        provider: claims.idp.as_deref(),
        resource: Some(&server.name),
        detail: Some(format!("for {audience}")),
    });
    Ok(token_response(json!({
        "access_token": access_token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": expires - now,
        "scope": scope,
    })))
}

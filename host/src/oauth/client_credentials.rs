//! The client_credentials grant (the MCP client-credentials extension): machine
//! clients, which only the operator makes, get tokens for the servers and scopes it
//! allowed them, as themselves.

use super::error::OAuthError;
use super::token::{sign, token_response};
use crate::audit::Event;
use crate::domain::clients::Client;
use crate::domain::keys::{AccessClaims, TokenFor};
use crate::domain::resources::ProtectedResource;
use crate::domain::user::User;
use crate::state::AppState;
use axum::response::Response;
use serde_json::json;

/// A machine client's token (the MCP client-credentials extension): for one server
/// the operator allowed it, with scopes it was allowed, its identity the client itself.
/// No refresh token: it can always ask again.
pub async fn client_credentials(
    state: &AppState,
    client: &Client,
    resource: Option<&str>,
    scope: Option<&str>,
    now: i64,
) -> Result<Response, OAuthError> {
    let access = client
        .machine
        .as_ref()
        .filter(|_| client.is_confidential())
        .ok_or_else(|| {
            OAuthError::unauthorized_client(
                "only machine clients use client_credentials; the operator registers them \
                 with `authhost clients add --machine`",
            )
        })?;
    let allowed = |r: &&ProtectedResource| access.servers.contains(&r.name);
    let resource = match resource {
        Some(requested) => state
            .resources
            .requested(Some(requested))
            .filter(allowed)
            .ok_or_else(|| {
                OAuthError::invalid_target(format!(
                    "this client may not get tokens for `{requested}`"
                ))
            })?,
        None => {
            let mut servers = state.resources.oauth().map(|r| r.as_ref()).filter(allowed);
            match (servers.next(), servers.next()) {
                (Some(only), None) => only,
                _ => {
                    return Err(OAuthError::invalid_target(
                        "resource is required: name the MCP server the token is for",
                    ));
                }
            }
        }
    };
    let allowed_scopes = if access.scopes.is_empty() {
        &resource.scopes
    } else {
        &access.scopes
    };
    let scope: Vec<&str> = match scope {
        None => allowed_scopes
            .iter()
            .map(String::as_str)
            .filter(|s| resource.offers_scope(s))
            .collect(),
        Some(requested) => {
            let requested: Vec<&str> = requested.split_whitespace().collect();
            if let Some(refused) = requested
                .iter()
                .find(|s| !allowed_scopes.iter().any(|a| a == *s) || !resource.offers_scope(s))
            {
                return Err(OAuthError::invalid_scope(format!(
                    "scope `{refused}` is not allowed for this client at {}",
                    resource.url
                )));
            }
            requested
        }
    };
    let scope = scope.join(" ");
    let expires = now + state.config.tokens.access_token_ttl as i64;
    let machine = User {
        sub: client.client_id.clone(),
        name: Some(client.name.clone()),
        groups: access.groups.clone(),
        ..User::default()
    };
    let claims = AccessClaims {
        auth: Some("client_credentials".into()),
        ..AccessClaims::naming(
            machine,
            TokenFor {
                issuer: &state.issuer,
                audience: &resource.url,
                client_id: &client.client_id,
                scope: &scope,
                issued_at: now,
                expires_at: expires,
            },
        )
    };
    let access_token = sign(state, &claims)?;
    state.metrics.token_issued("client_credentials");
    state.audit.record(Event {
        event: "token_issued",
        user: Some(&client.client_id),
        client_id: Some(&client.client_id),
        resource: Some(&resource.name),
        detail: Some("client_credentials".into()),
        ..Event::default()
    });
    Ok(token_response(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires - now,
        "scope": scope,
    })))
}

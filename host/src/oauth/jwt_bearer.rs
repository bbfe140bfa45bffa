//! The jwt-bearer grant with an ID-JAG (the MCP Enterprise-Managed Authorization
//! extension): a user an enterprise identity provider vouches for gets a token for the
//! MCP server the ID-JAG names, without signing in here.

use super::error::OAuthError;
use super::token::{sign, token_response};
use crate::audit::Event;
use crate::domain::clients::Client;
use crate::domain::keys::{AccessClaims, TokenFor};
use crate::state::AppState;
use axum::response::Response;
use serde_json::json;

/// An enterprise identity provider's ID-JAG redeemed (the MCP Enterprise-Managed
/// Authorization extension): the user it names gets an access token for the resource
/// it names, without a sign-in here; no refresh token (the client asks the identity
/// provider for a new ID-JAG, which is where access is decided).
pub async fn identity_assertion(
    state: &AppState,
    client: &Client,
    assertion: &str,
    resource: Option<&str>,
    scope: Option<&str>,
    now: i64,
) -> Result<Response, OAuthError> {
    if state.trusted_issuers.is_empty() {
        return Err(OAuthError::unsupported_grant_type(
            "no enterprise identity provider is configured ([[enterprise.issuers]])",
        ));
    }
    // The identity provider knows clients by the ids the operator gave them here.
    if !client.operator_made() || !client.is_confidential() {
        return Err(OAuthError::unauthorized_client(
            "ID-JAGs are redeemed by confidential clients the operator registered",
        ));
    }
    let refused = |why: String| {
        state.metrics.flow("id_jag", "failed");
        state.audit.record(Event {
            event: "sign_in_failed",
            client_id: Some(&client.client_id),
            detail: Some(format!("ID-JAG refused: {why}")),
            ..Event::default()
        });
        OAuthError::invalid_grant(why)
    };
    let grant = state
        .trusted_issuers
        .verify(assertion, &state.issuer, &client.client_id, now)
        .await
        .map_err(refused)?;
    // The resource the ID-JAG names, which the request may repeat but not change.
    let named = grant
        .resource
        .as_deref()
        .ok_or_else(|| refused("the ID-JAG names no resource".into()))?;
    let target = state
        .resources
        .requested(Some(named))
        .ok_or_else(|| refused(format!("`{named}` is not an MCP server authhost protects")))?;
    if let Some(requested) = resource
        && crate::config::canonical_url(requested).as_deref() != Some(target.url.as_str())
    {
        return Err(OAuthError::invalid_target(format!(
            "the ID-JAG is for {}, not {requested}",
            target.url
        )));
    }
    // Scopes: those asked for (or the ID-JAG's, or the server's own), each offered by
    // the server and, when the ID-JAG lists scopes, among them.
    let vouched: Option<Vec<&str>> = grant
        .scope
        .as_deref()
        .map(|s| s.split_whitespace().collect());
    let wanted: Vec<&str> = match (scope, &vouched) {
        (Some(requested), _) => requested.split_whitespace().collect(),
        (None, Some(vouched)) => vouched.clone(),
        (None, None) => target.scopes.iter().map(String::as_str).collect(),
    };
    if let Some(refused_scope) = wanted
        .iter()
        .find(|s| !target.offers_scope(s) || vouched.as_ref().is_some_and(|v| !v.contains(s)))
    {
        return Err(OAuthError::invalid_scope(format!(
            "scope `{refused_scope}` is not offered by {} or not in the ID-JAG",
            target.url
        )));
    }
    let scope = wanted.join(" ");
    if !state
        .store
        .use_assertion(&grant.issuer, &grant.jti, grant.exp)
        .await?
    {
        return Err(refused("this ID-JAG was redeemed before".into()));
    }
    let expires = now + state.config.tokens.access_token_ttl as i64;
    let user = grant.user;
    let subject = user.sub.clone();
    let claims = AccessClaims {
        idp: Some(grant.issuer.clone()),
        auth: Some("id_jag".into()),
        ..AccessClaims::naming(
            user,
            TokenFor {
                issuer: &state.issuer,
                audience: &target.url,
                client_id: &client.client_id,
                scope: &scope,
                issued_at: now,
                expires_at: expires,
            },
        )
    };
    let access_token = sign(state, &claims)?;
    state.metrics.flow("id_jag", "completed");
    state.metrics.token_issued("id_jag");
    state.audit.record(Event {
        event: "sign_in",
        user: Some(&subject),
        client_id: Some(&client.client_id),
        provider: Some(&grant.issuer),
        resource: Some(&target.name),
        detail: Some("id_jag".into()),
    });
    Ok(token_response(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires - now,
        "scope": scope,
    })))
}

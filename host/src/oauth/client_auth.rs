//! Who is asking at the token, revocation and introspection endpoints: one client
//! authentication method per request (HTTP Basic, `client_secret` in the form, a JWT
//! assertion, or none for a public client), checked against how the client was
//! registered.

use super::error::OAuthError;
use crate::audit::Event;
use crate::domain::client_assertion;
use crate::domain::clients::{Client, Credential};
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::collections::HashMap;

/// The client of a token, revocation or introspection request, authenticated by one
/// method: HTTP Basic, `client_secret` in the form, a JWT assertion (private_key_jwt),
/// or none (a public client).
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
    let assertion = match (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) {
        (None, None) => None,
        (Some(kind), Some(assertion)) if kind == client_assertion::ASSERTION_TYPE => {
            Some(assertion.as_str())
        }
        (Some(kind), Some(_)) => {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion_type `{kind}` is not supported"
            )));
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type go together",
            ));
        }
    };
    let methods = [
        basic.is_some(),
        form.contains_key("client_secret"),
        assertion.is_some(),
    ];
    if methods.iter().filter(|used| **used).count() > 1 {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        ));
    }
    let (client_id, secret) = match (basic, assertion) {
        (Some((id, secret)), _) => (Some(id), Some(secret)),
        // RFC 7523 3: the assertion's subject is the client.
        (None, Some(assertion)) => (
            form.get("client_id")
                .cloned()
                .or_else(|| client_assertion::claimed_client(assertion)),
            None,
        ),
        (None, None) => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    let client_id = client_id.ok_or_else(|| OAuthError::invalid_client("client_id is required"))?;
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
    let credential = match (assertion, &secret) {
        (Some(assertion), _) => {
            check_assertion(state, &client, assertion).await?;
            Credential::Assertion
        }
        (None, Some(secret)) => Credential::Secret(secret),
        (None, None) => Credential::None,
    };
    client.authenticate(credential)?;
    Ok(client)
}

/// A private_key_jwt assertion: signed by one of the client's keys, for authhost, and
/// never seen before (its `jti` is recorded for every instance until it expires).
async fn check_assertion(
    state: &AppState,
    client: &Client,
    assertion: &str,
) -> Result<(), OAuthError> {
    let keys = client.jwks.as_ref().ok_or_else(|| {
        OAuthError::invalid_client("this client has no registered keys for private_key_jwt")
    })?;
    let kid = jsonwebtoken::decode_header(assertion)
        .ok()
        .and_then(|h| h.kid);
    let jwks = state
        .clients
        .assertion_keys(keys, kid.as_deref())
        .await
        .map_err(|why| OAuthError::temporarily_unavailable(format!("the client's keys: {why}")))?;
    let token_endpoint = format!("{}/token", state.issuer);
    let verified = client_assertion::verify(
        &jwks,
        &client.client_id,
        assertion,
        &[&state.issuer, &token_endpoint],
        state.clock.now(),
    )
    .map_err(OAuthError::invalid_client)?;
    let first_use = state
        .store
        .use_assertion(&client.client_id, &verified.jti, verified.exp)
        .await?;
    if !first_use {
        state.audit.record(Event {
            event: "client_assertion_replayed",
            client_id: Some(&client.client_id),
            detail: Some("a client assertion was presented a second time".into()),
            ..Event::default()
        });
        return Err(OAuthError::invalid_client(
            "this client assertion was used before; make a new one for each request",
        ));
    }
    Ok(())
}

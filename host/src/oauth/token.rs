//! The token endpoint: authorization codes (with PKCE) and rotating refresh tokens,
//! answered with a signed access token for the grant's resource.

use super::error::OAuthError;
use crate::audit::Event;
use crate::crypto;
use crate::domain::client_assertion;
use crate::domain::clients::{Client, Credential};
use crate::domain::grants::{Grants, RefreshRefused};
use crate::domain::id_jag;
use crate::domain::keys::{AccessClaims, Actor};
use crate::domain::pkce;
use crate::domain::resources::ProtectedResource;
use crate::state::AppState;
use crate::store::{Grant, RedeemError};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
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
            return client_credentials(&state, &client, param("resource"), param("scope"), now)
                .await;
        }
        TOKEN_EXCHANGE => return token_exchange(&state, &client, &form, now).await,
        id_jag::GRANT_TYPE => {
            let assertion = param("assertion")
                .ok_or_else(|| OAuthError::invalid_request("assertion is required"))?;
            return identity_assertion(
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

/// A machine client's token (the MCP client-credentials extension): for one server
/// the operator allowed it, with scopes it was allowed, its identity the client itself.
/// No refresh token: it can always ask again.
async fn client_credentials(
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
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: client.client_id.clone(),
        aud: resource.url.clone(),
        exp: expires,
        iat: now,
        jti: crypto::random_token(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        gid: None,
        idp: None,
        auth: Some("client_credentials".into()),
        act: None,
        email: None,
        name: Some(client.name.clone()),
        preferred_username: None,
        groups: access.groups.clone(),
        roles: vec![],
    };
    let access_token = state
        .signer
        .sign(&claims)
        .map_err(|e| OAuthError::internal("signing the access token", e))?;
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

/// An enterprise identity provider's ID-JAG redeemed (the MCP Enterprise-Managed
/// Authorization extension): the user it names gets an access token for the resource
/// it names, without a sign-in here; no refresh token (the client asks the identity
/// provider for a new ID-JAG, which is where access is decided).
async fn identity_assertion(
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
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: user.sub.clone(),
        aud: target.url.clone(),
        exp: expires,
        iat: now,
        jti: crypto::random_token(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        gid: None,
        idp: Some(grant.issuer.clone()),
        auth: Some("id_jag".into()),
        act: None,
        email: user.email,
        name: user.name,
        preferred_username: user.preferred_username,
        groups: user.groups,
        roles: user.roles,
    };
    let access_token = state
        .signer
        .sign(&claims)
        .map_err(|e| OAuthError::internal("signing the access token", e))?;
    state.metrics.flow("id_jag", "completed");
    state.metrics.token_issued("id_jag");
    state.audit.record(Event {
        event: "sign_in",
        user: Some(&user.sub),
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

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// RFC 8693 token exchange, for delegation: an MCP server (authenticated as the
/// client its `delegation` names) trades the user's access token it received for a
/// short-lived token to another API it may call, with narrowed scopes and itself named
/// as the actor. Refused unless the user's token is for that MCP server and still
/// stands, and the audience is one the operator allowed it.
async fn token_exchange(
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
    let access_token = state
        .signer
        .sign(&claims)
        .map_err(|e| OAuthError::internal("signing the exchanged token", e))?;
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

/// A token response: never cached (RFC 6749 5.1).
fn token_response(body: serde_json::Value) -> Response {
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
    let user = Grants::user(grant);
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: grant.subject.clone(),
        aud: grant.resource.clone(),
        exp: access_expires,
        iat: now,
        jti: crypto::random_token(),
        client_id: grant.client_id.clone(),
        scope: scope.to_string(),
        gid: Some(grant.id.clone()),
        idp: Some(grant.provider.clone()),
        auth: None,
        act: None,
        email: user.email,
        name: user.name,
        preferred_username: user.preferred_username,
        groups: user.groups,
        roles: user.roles,
    };
    let access_token = state
        .signer
        .sign(&claims)
        .map_err(|e| OAuthError::internal("signing the access token", e))?;
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

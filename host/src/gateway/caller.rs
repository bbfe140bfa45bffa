//! Who is calling an MCP server, established by the server's auth mode: authhost's own
//! access token (`oauth_proxy`), an upstream token checked with the provider
//! (`client_token`), the shared token (`static_token`), or an API key.

use super::Gateway;
use super::forward::IdentityValues;
use super::resource::Resource;
use crate::config::AuthMode;
use crate::crypto;
use crate::domain::grants::ActiveGrant;
use crate::domain::keys::AccessClaims;
use crate::domain::user::User;
use crate::runtime::{ProviderError, TokenSet};
use crate::secret::Secret;
use axum::http::{HeaderMap, HeaderName, header};
use std::sync::Arc;
use std::time::Duration;

/// API keys start with this, so they are told apart from JWTs and upstream tokens.
pub const API_KEY_PREFIX: &str = "ahk_";

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Oauth,
    /// A machine client's own token (client_credentials): no user behind it.
    ClientCredentials,
    /// A user an enterprise identity provider vouched for (an ID-JAG).
    IdJag,
    /// A token of an external authorization server (`auth = "external"`).
    External,
    ApiKey,
    ClientToken,
    StaticToken,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Oauth => "oauth",
            Via::ClientCredentials => "client_credentials",
            Via::IdJag => "id_jag",
            Via::External => "external",
            Via::ApiKey => "api_key",
            Via::ClientToken => "client_token",
            Via::StaticToken => "static_token",
        }
    }
}

/// Where the caller's upstream token comes from, when there is one.
#[derive(Debug, Clone)]
pub enum UpstreamToken {
    None,
    /// Kept (sealed) with the grant; refreshed through the provider when it expires.
    Grant {
        grant_id: String,
        sealed: Option<String>,
    },
    /// The token the client presented (`client_token` mode).
    Presented(Secret),
}

/// Who is calling. Shared parts are `Arc`s: a caller is made on every request, mostly
/// from cached grants and tokens.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Arc<User>,
    /// The identity header values, encoded once per user (see `forward.rs`).
    pub identity: Arc<IdentityValues>,
    pub client_id: Option<String>,
    pub provider: Option<String>,
    /// Granted scopes and those they imply.
    pub scopes: Arc<[String]>,
    pub via: Via,
    pub upstream: UpstreamToken,
}

impl Caller {
    pub fn new(via: Via, user: User) -> Caller {
        Caller {
            identity: Arc::new(IdentityValues::of(&user)),
            user: Arc::new(user),
            client_id: None,
            provider: None,
            scopes: Arc::from([]),
            via,
            upstream: UpstreamToken::None,
        }
    }
}

/// Why a request was not let in.
pub enum Rejection {
    /// No credentials, or ones that do not work: 401 with a challenge.
    Unauthenticated(Option<String>),
    /// Valid, but lacking a scope this server requires: 403 `insufficient_scope`.
    InsufficientScope,
    /// The store or the provider could not answer: 503.
    Unavailable(&'static str),
}

impl Caller {
    /// Whether the caller holds `scope` (granted, or implied by a granted one).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The request's credentials: the bearer token, or a key in one of the server's
/// `api_key_headers` (bare, or as `Bearer <key>`). Credentials in two places, or two
/// `Authorization` headers, are refused: which one counts would be a guess.
pub fn credentials<'h>(
    headers: &'h HeaderMap,
    api_key_headers: &[HeaderName],
) -> Result<Option<&'h str>, &'static str> {
    if headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err("credentials were sent in more than one header");
    }
    let mut found = bearer(headers);
    for name in api_key_headers {
        if *name == header::AUTHORIZATION {
            continue;
        }
        for value in headers.get_all(name) {
            let value = value.to_str().unwrap_or("").trim();
            let value = value.strip_prefix("Bearer ").unwrap_or(value).trim();
            if value.is_empty() {
                continue;
            }
            if found.is_some() {
                return Err("credentials were sent in more than one header");
            }
            found = Some(value);
        }
    }
    Ok(found)
}

pub async fn authenticate(
    state: &Gateway,
    resource: &Resource,
    token: &str,
) -> Result<Caller, Rejection> {
    let caller = if resource.settings.api_keys && token.starts_with(API_KEY_PREFIX) {
        api_key(state, resource, token).await?
    } else {
        match resource.settings.auth {
            AuthMode::OauthProxy => access_token(state, resource, token).await?,
            AuthMode::ClientToken => client_token(state, resource, token).await?,
            AuthMode::StaticToken => static_token(resource, token)?,
            AuthMode::External => external_token(state, resource, token).await?,
        }
    };
    if resource.scopes.iter().any(|s| !caller.has_scope(s)) {
        return Err(Rejection::InsufficientScope);
    }
    Ok(caller)
}

/// authhost's own JWT: signature, expiry, audience = this server, grant not revoked.
async fn access_token(
    state: &Gateway,
    resource: &Resource,
    token: &str,
) -> Result<Caller, Rejection> {
    // A cached token still needs its key: retiring a key ends its tokens at once.
    let cached = state
        .access_tokens
        .get(token)
        .filter(|v| v.claims.aud == resource.url && state.signer.verifies_with(&v.kid));
    let verified = match cached {
        Some(verified) => verified,
        None => {
            if state.signer.names_unknown_key(token) {
                // Another instance may have rotated the signing key just now.
                state
                    .signer
                    .refresh_on_demand(&state.store, &state.sealer)
                    .await;
            }
            let (claims, kid) = state
                .signer
                .verify(token, Some(&resource.url))
                .map_err(|why| Rejection::Unauthenticated(Some(why)))?;
            let lifetime = (claims.exp - state.clock.now()).max(0) as u64;
            let granted: Vec<String> = claims.scope.split_whitespace().map(String::from).collect();
            let verified = Arc::new(VerifiedToken {
                scopes: state.config.implied_scopes(&granted).into(),
                claims,
                kid,
            });
            state.access_tokens.put(
                token.to_string(),
                verified.clone(),
                Duration::from_secs(lifetime),
            );
            verified
        }
    };
    let claims = &verified.claims;
    let Some(grant_id) = &claims.gid else {
        return match claims.auth.as_deref() {
            Some("id_jag") => Ok(vouched_user(&verified)),
            _ => machine_client(state, &verified).await,
        };
    };
    let (grant, identity) = active_grant(state, grant_id).await?;
    Ok(Caller {
        user: grant.user.clone(),
        identity,
        client_id: Some(claims.client_id.clone()),
        provider: claims.idp.clone(),
        scopes: verified.scopes.clone(),
        via: Via::Oauth,
        upstream: UpstreamToken::Grant {
            grant_id: grant_id.clone(),
            sealed: grant.upstream_tokens.clone(),
        },
    })
}

/// A token of the server's external authorization server: checked against its
/// published keys (which it may rotate), the caller being the user it names.
async fn external_token(
    state: &Gateway,
    resource: &Resource,
    token: &str,
) -> Result<Caller, Rejection> {
    let Some(issuer) = &resource.external else {
        return Err(Rejection::Unavailable(
            "external authorization server not configured",
        ));
    };
    let verified = issuer
        .verify(token, state.clock.now())
        .await
        .map_err(|why| Rejection::Unauthenticated(Some(why)))?;
    if verified.user.sub.is_empty() {
        return Err(Rejection::Unauthenticated(Some(
            "token names no subject".into(),
        )));
    }
    Ok(Caller {
        client_id: verified.client_id.clone(),
        provider: Some(issuer.issuer.clone()),
        scopes: state.config.implied_scopes(&verified.scopes).into(),
        upstream: UpstreamToken::None,
        ..Caller::new(Via::External, verified.user.clone())
    })
}

/// A user an enterprise identity provider vouched for (an ID-JAG): who the token
/// says, until it expires; there is no grant to revoke behind it.
fn vouched_user(verified: &VerifiedToken) -> Caller {
    let claims = &verified.claims;
    let user = User {
        sub: claims.sub.clone(),
        email: claims.email.clone(),
        name: claims.name.clone(),
        preferred_username: claims.preferred_username.clone(),
        groups: claims.groups.clone(),
        roles: claims.roles.clone(),
        ..User::default()
    };
    Caller {
        client_id: Some(claims.client_id.clone()),
        provider: claims.idp.clone(),
        scopes: verified.scopes.clone(),
        upstream: UpstreamToken::None,
        ..Caller::new(Via::IdJag, user)
    }
}

/// A machine client's token: good while its client is still a machine client, whose
/// identity (name, groups) is the client as the operator configured it now. Kept in
/// the grants' cache under a key no grant id can have.
async fn machine_client(state: &Gateway, verified: &VerifiedToken) -> Result<Caller, Rejection> {
    let client_id = &verified.claims.client_id;
    let key = format!("client:{client_id}");
    let changes = state.store.grant_changes();
    let (client, identity) = match state.active_grants.get(&key) {
        Some((client, identity, seen)) if seen == changes => (client, identity),
        _ => {
            let found = state
                .clients
                .find(&state.store, client_id)
                .await
                .map_err(|e| {
                    tracing::error!("reading a machine client: {}", e.description);
                    Rejection::Unavailable("authorization store unavailable")
                })?;
            let Some((name, access)) = found.and_then(|c| Some((c.name, c.machine?))) else {
                return Err(Rejection::Unauthenticated(Some(
                    "the client is no longer a machine client".into(),
                )));
            };
            let user = User {
                sub: client_id.clone(),
                name: Some(name),
                groups: access.groups,
                ..User::default()
            };
            let identity = Arc::new(IdentityValues::of(&user));
            let client = Arc::new(ActiveGrant {
                user: Arc::new(user),
                upstream_tokens: None,
            });
            let entry = (client.clone(), identity.clone(), changes);
            state.active_grants.put(key, entry, GRANT_RECHECK);
            (client, identity)
        }
    };
    Ok(Caller {
        user: client.user.clone(),
        identity,
        client_id: Some(client_id.clone()),
        provider: None,
        scopes: verified.scopes.clone(),
        via: Via::ClientCredentials,
        upstream: UpstreamToken::None,
    })
}

/// An access token whose signature checked out, kept until it expires.
pub struct VerifiedToken {
    pub claims: AccessClaims,
    /// The key that signed it: the token stops working when the key is retired.
    pub kid: String,
    /// Granted and implied scopes.
    pub scopes: Arc<[String]>,
}

/// How long a grant found active is trusted without asking the store again. A grant
/// revoked through this instance stops working at once; through another, within this.
const GRANT_RECHECK: Duration = Duration::from_secs(2);

/// The grant, if still active, with its user's identity values: from the cache while
/// this store has seen no grant change, otherwise from the store.
async fn active_grant(
    state: &Gateway,
    grant_id: &str,
) -> Result<(Arc<ActiveGrant>, Arc<IdentityValues>), Rejection> {
    let changes = state.store.grant_changes();
    if let Some((grant, identity, seen)) = state.active_grants.get(grant_id)
        && seen == changes
    {
        return Ok((grant, identity));
    }
    match state.grants.active(grant_id).await {
        Ok(Some(grant)) => {
            let identity = Arc::new(IdentityValues::of(&grant.user));
            let grant = Arc::new(grant);
            let entry = (grant.clone(), identity.clone(), changes);
            state
                .active_grants
                .put(grant_id.to_string(), entry, GRANT_RECHECK);
            Ok((grant, identity))
        }
        Ok(None) => Err(Rejection::Unauthenticated(Some(
            "the grant was revoked".into(),
        ))),
        Err(e) => {
            tracing::error!("reading the grant: {e}");
            Err(Rejection::Unavailable("authorization store unavailable"))
        }
    }
}

async fn api_key(state: &Gateway, resource: &Resource, token: &str) -> Result<Caller, Rejection> {
    let record = match state
        .store
        .live_api_key(&crypto::hash_token(token), state.clock.now())
        .await
    {
        Ok(Some(record)) => record,
        Ok(None) => {
            return Err(Rejection::Unauthenticated(Some(
                "unknown, revoked or expired API key".into(),
            )));
        }
        Err(e) => {
            tracing::error!("reading API keys: {e}");
            return Err(Rejection::Unavailable("authorization store unavailable"));
        }
    };
    if record.server != "*" && record.server != resource.name {
        return Err(Rejection::Unauthenticated(Some(format!(
            "this API key is for the MCP server `{}`",
            record.server
        ))));
    }
    let user = User {
        sub: record.subject,
        preferred_username: Some(record.name),
        groups: serde_json::from_str(&record.groups).unwrap_or_default(),
        ..User::default()
    };
    let granted: Vec<String> = serde_json::from_str(&record.scopes).unwrap_or_default();
    Ok(Caller {
        scopes: state.config.implied_scopes(&granted).into(),
        ..Caller::new(Via::ApiKey, user)
    })
}

fn static_token(resource: &Resource, token: &str) -> Result<Caller, Rejection> {
    let Some(expected) = &resource.static_token else {
        return Err(Rejection::Unavailable("static token not configured"));
    };
    if !crypto::same(token, expected.expose()) {
        return Err(Rejection::Unauthenticated(Some("invalid token".into())));
    }
    let settings = &resource.settings;
    let user = User {
        sub: settings
            .static_subject
            .clone()
            .unwrap_or_else(|| "static-token".into()),
        groups: settings.static_groups.clone(),
        ..User::default()
    };
    Ok(Caller {
        scopes: resource.scopes.clone().into(),
        ..Caller::new(Via::StaticToken, user)
    })
}

/// An upstream token, validated by asking the provider whether it was issued to its
/// upstream client (unless `client_token_any_audience`) and who it belongs to. Answers are
/// kept by the token's hash: acceptances for `client_token_cache_seconds`, refusals
/// for a few seconds (a client retrying a dead token does not hammer the provider).
/// A provider that cannot answer is not a refusal: 503, nothing kept.
async fn client_token(
    state: &Gateway,
    resource: &Resource,
    token: &str,
) -> Result<Caller, Rejection> {
    let refused = || {
        Rejection::Unauthenticated(Some(format!(
            "the {} token was not accepted",
            resource.provider
        )))
    };
    let key = format!("{}\n{}", resource.provider, crypto::hash_token(token));
    match state.client_tokens.get(&key) {
        Some(Some(user)) => return Ok(client_token_caller(resource, user, token)),
        Some(None) => return Err(refused()),
        None => {}
    }
    let Some(instance) = state.registry.instances.get(&resource.provider) else {
        return Err(Rejection::Unavailable("provider not loaded"));
    };
    let ttl = Duration::from_secs(resource.settings.client_token_cache_seconds);
    if !resource.settings.client_token_any_audience {
        match instance.issued_to_client(token.to_string()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(
                    provider = resource.provider,
                    "client token refused: issued to another client"
                );
                state.client_tokens.put(key, None, ttl.min(REFUSAL_TTL));
                return Err(refused());
            }
            Err(e) => {
                tracing::warn!(
                    provider = resource.provider,
                    "could not check whose client token it is: {e}"
                );
                return Err(Rejection::Unavailable(
                    "the identity provider could not check the token; try again",
                ));
            }
        }
    }
    match instance.user_claims(TokenSet::bearer(token)).await {
        Ok(claims) => {
            let user = User::from_claims(&claims);
            state.client_tokens.put(key, Some(user.clone()), ttl);
            Ok(client_token_caller(resource, user, token))
        }
        Err(e) => {
            tracing::info!(
                provider = resource.provider,
                "client token not accepted: {e}"
            );
            match e.provider_error() {
                Some(ProviderError::InvalidGrant(_) | ProviderError::AccessDenied(_)) => {
                    state.client_tokens.put(key, None, ttl.min(REFUSAL_TTL));
                    Err(refused())
                }
                Some(ProviderError::UpstreamUnavailable(_)) | None => Err(Rejection::Unavailable(
                    "the identity provider could not check the token; try again",
                )),
                Some(_) => Err(refused()),
            }
        }
    }
}

/// How long a refused client token is remembered as refused.
const REFUSAL_TTL: Duration = Duration::from_secs(5);

fn client_token_caller(resource: &Resource, user: User, token: &str) -> Caller {
    Caller {
        provider: Some(resource.provider.clone()),
        scopes: resource.scopes.clone().into(),
        upstream: UpstreamToken::Presented(Secret::new(token.to_string())),
        ..Caller::new(Via::ClientToken, user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_needs_a_token() {
        let token = |value| bearer(&headers(&[("authorization", value)])).map(str::to_owned);
        assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("bearer  abc ").as_deref(), Some("abc"));
        assert_eq!(token("BEARER abc").as_deref(), Some("abc"));
        assert_eq!(token("Basic YTpi"), None);
        assert_eq!(token("Bearer"), None);
        assert_eq!(token("Bearer   "), None);
        assert_eq!(token("Bearerabc"), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn credentials_in_two_places_are_refused() {
        let keys = [HeaderName::from_static("x-api-key")];
        let found = |pairs: &[(&str, &str)]| {
            credentials(&headers(pairs), &keys).map(|t| t.map(str::to_owned))
        };
        assert_eq!(found(&[]), Ok(None));
        assert_eq!(
            found(&[("authorization", "Bearer t")]),
            Ok(Some("t".into()))
        );
        assert_eq!(found(&[("x-api-key", "k")]), Ok(Some("k".into())));
        assert_eq!(found(&[("x-api-key", "Bearer k")]), Ok(Some("k".into())));
        // An empty key header is no credential, not a second one.
        assert_eq!(
            found(&[("authorization", "Bearer t"), ("x-api-key", " ")]),
            Ok(Some("t".into()))
        );
        let two = Err("credentials were sent in more than one header");
        assert_eq!(
            found(&[("authorization", "Bearer t"), ("x-api-key", "k")]),
            two
        );
        assert_eq!(found(&[("x-api-key", "a"), ("x-api-key", "b")]), two);
        assert_eq!(
            found(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
            two
        );
        // Headers the server does not name are not credentials.
        assert_eq!(found(&[("x-other-key", "k")]), Ok(None));
    }
}

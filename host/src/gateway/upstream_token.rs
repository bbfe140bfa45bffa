//! The user's upstream tokens, kept sealed with their grant: forwarded to MCP servers
//! that call the upstream as the user, and used to re-validate the user's claims when
//! the client refreshes. When the access token is about to expire it is refreshed
//! through the provider first; one refresh per grant at a time (a lock within an
//! instance, a lease in the store across instances), so a rotating refresh token is
//! never spent twice.

use super::caller::User;
use crate::runtime::{ProviderError, TokenSet};
use crate::secret::Secret;
use crate::state::AppState;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Refresh this long before the upstream says the token expires.
const EXPIRY_MARGIN_SECONDS: i64 = 30;
/// How long a refresh lease holds: longer than a provider call may take.
const LEASE_SECONDS: i64 = 40;
/// How long a request waits for another instance's refresh before giving up.
const LEASE_WAIT: Duration = Duration::from_secs(10);

/// The stored form of an upstream token set.
pub fn stored_form(tokens: &TokenSet, now: i64, previous_refresh: Option<&str>) -> Value {
    json!({
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        // Upstreams that do not rotate send no new refresh token: keep the old one.
        "refresh_token": tokens.refresh_token.as_deref().or(previous_refresh),
        "expires_at": tokens.expires_in.map(|s| now + s as i64),
        "obtained_at": now,
        "scope": tokens.scope,
        "extra": tokens.extra,
    })
}

/// The token set a provider's `user-claims` is given, from the stored form.
fn token_set(tokens: &Value, now: i64) -> TokenSet {
    let text = |key: &str| tokens[key].as_str().map(String::from);
    TokenSet {
        access_token: text("access_token").unwrap_or_default(),
        token_type: text("token_type").unwrap_or_else(|| "Bearer".into()),
        expires_in: tokens["expires_at"]
            .as_i64()
            .map(|at| (at - now).max(0) as u64),
        refresh_token: text("refresh_token"),
        id_token: None,
        scope: text("scope"),
        extra: serde_json::from_value(tokens["extra"].clone()).unwrap_or_default(),
    }
}

/// Why no upstream token (or no fresh claims) can be had.
#[derive(Debug)]
pub enum Unavailable {
    /// The upstream grant is gone (expired without refresh, refused, the user removed):
    /// the user must sign in again.
    SignInAgain(String),
    /// The provider could not be reached or failed; worth retrying.
    ProviderFailed(String),
}

/// Whose upstream tokens: for the audit log.
pub struct GrantOwner<'a> {
    pub grant_id: &'a str,
    pub subject: &'a str,
    pub client_id: Option<&'a str>,
    pub provider: &'a str,
}

#[derive(Default)]
pub struct RefreshLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl RefreshLocks {
    fn for_grant(&self, grant_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(grant_id.to_string()).or_default().clone()
    }

    fn release(&self, grant_id: &str) {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks
            .get(grant_id)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(grant_id);
        }
    }
}

/// The access token of the grant's upstream tokens, refreshed if need be. `sealed` is
/// what the grant held when it was read.
pub async fn access_token(
    state: &AppState,
    owner: &GrantOwner<'_>,
    sealed: Option<&str>,
) -> Result<Option<Secret>, Unavailable> {
    let Some(tokens) = sealed.and_then(|s| open(state, s)) else {
        return Ok(None);
    };
    let now = crate::clock::now();
    let tokens = if expiring(&tokens, now) {
        match refreshed(state, owner, None).await? {
            Some(tokens) => tokens,
            None => return Ok(None),
        }
    } else {
        tokens
    };
    Ok(tokens["access_token"].as_str().map(Secret::new))
}

/// Whether the sealed upstream tokens have expired (a refresh then asks the upstream
/// again, whatever the age of the claims).
pub fn expired(state: &AppState, sealed: Option<&str>, now: i64) -> bool {
    sealed
        .and_then(|s| open(state, s))
        .is_some_and(|tokens| tokens["expires_at"].as_i64().is_some_and(|at| at <= now))
}

/// Ask the upstream again who the grant's user is: refresh the upstream tokens where
/// the provider can (an upstream that ended the session refuses), then run its
/// `user-claims`. The new claims are stored with the grant.
pub async fn revalidate(state: &AppState, owner: &GrantOwner<'_>) -> Result<User, Unavailable> {
    let Some(instance) = state.registry.instances.get(owner.provider) else {
        return Err(Unavailable::ProviderFailed(format!(
            "provider `{}` is not loaded",
            owner.provider
        )));
    };
    let now = crate::clock::now();
    let Some((_, stored)) = current(state, owner.grant_id).await? else {
        return Err(Unavailable::SignInAgain(
            "the grant holds no upstream tokens to confirm the user with".into(),
        ));
    };
    let refreshable =
        instance.component.info.supports_refresh && stored["refresh_token"].is_string();
    let tokens = if refreshable {
        refreshed(state, owner, Some(now)).await?.unwrap_or(stored)
    } else {
        stored
    };
    let claims = instance
        .user_claims(token_set(&tokens, now))
        .await
        .map_err(|e| match e.provider_error() {
            Some(ProviderError::InvalidGrant(why) | ProviderError::AccessDenied(why)) => {
                Unavailable::SignInAgain(format!("the upstream no longer accepts the user: {why}"))
            }
            _ => Unavailable::ProviderFailed(e.to_string()),
        })?;
    if claims.subject != owner.subject {
        return Err(Unavailable::SignInAgain(
            "the upstream now names another user".into(),
        ));
    }
    let user = User::from_claims(&claims);
    let json = serde_json::to_string(&user).unwrap_or_default();
    state
        .store
        .update_grant_claims(owner.grant_id, &json, now)
        .await
        .map_err(store_failed)?;
    Ok(user)
}

/// The grant's upstream tokens after a refresh, unless someone (here or on another
/// instance) just did one: with `obtained_since`, tokens obtained at or after it count
/// as fresh; without, tokens not about to expire do. One refresh per grant at a time:
/// instances take a lease in the store; the others wait, then use what it stored.
async fn refreshed(
    state: &AppState,
    owner: &GrantOwner<'_>,
    obtained_since: Option<i64>,
) -> Result<Option<Value>, Unavailable> {
    let lock = state.refresh_locks.for_grant(owner.grant_id);
    let result = {
        let _held = lock.lock().await;
        refresh_with_lease(state, owner, obtained_since).await
    };
    drop(lock);
    state.refresh_locks.release(owner.grant_id);
    result
}

async fn refresh_with_lease(
    state: &AppState,
    owner: &GrantOwner<'_>,
    obtained_since: Option<i64>,
) -> Result<Option<Value>, Unavailable> {
    let fresh = |tokens: &Value, now: i64| match obtained_since {
        Some(since) => tokens["obtained_at"].as_i64().is_some_and(|at| at >= since),
        None => !expiring(tokens, now),
    };
    let waiting_since = Instant::now();
    loop {
        let Some((_, tokens)) = current(state, owner.grant_id).await? else {
            return Ok(None);
        };
        let now = crate::clock::now();
        if fresh(&tokens, now) {
            return Ok(Some(tokens));
        }
        let leased = state
            .store
            .take_refresh_lease(owner.grant_id, now, now + LEASE_SECONDS)
            .await
            .map_err(store_failed)?;
        if leased {
            // Read again under the lease: the previous holder may have finished now.
            let result = match current(state, owner.grant_id).await {
                Ok(Some((_, tokens))) if fresh(&tokens, now) => Ok(Some(tokens)),
                Ok(Some((sealed, tokens))) => {
                    refresh_now(state, owner, &sealed, &tokens).await.map(Some)
                }
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            if let Err(e) = state.store.release_refresh_lease(owner.grant_id).await {
                tracing::warn!("releasing an upstream refresh lease: {e}");
            }
            return result;
        }
        if waiting_since.elapsed() > LEASE_WAIT {
            return Err(Unavailable::ProviderFailed(
                "another instance is still refreshing this upstream token".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Refresh through the provider while holding the lease; store the result.
async fn refresh_now(
    state: &AppState,
    owner: &GrantOwner<'_>,
    sealed: &str,
    tokens: &Value,
) -> Result<Value, Unavailable> {
    let Some(refresh_token) = tokens["refresh_token"].as_str() else {
        return Err(Unavailable::SignInAgain(
            "the upstream token expired and cannot be refreshed".into(),
        ));
    };
    let Some(instance) = state.registry.instances.get(owner.provider) else {
        return Err(Unavailable::ProviderFailed(format!(
            "provider `{}` is not loaded",
            owner.provider
        )));
    };
    let fresh = instance
        .refresh(refresh_token.to_string())
        .await
        .map_err(|e| match e.provider_error() {
            Some(ProviderError::InvalidGrant(why)) => Unavailable::SignInAgain(format!(
                "the upstream refused to refresh the token: {why}"
            )),
            _ => Unavailable::ProviderFailed(e.to_string()),
        })?;
    let now = crate::clock::now();
    let stored = stored_form(&fresh, now, Some(refresh_token));
    let sealed_new = state.sealer.seal(stored.to_string().as_bytes());
    if !state
        .store
        .replace_upstream_tokens(owner.grant_id, sealed, &sealed_new)
        .await
        .map_err(store_failed)?
    {
        // Only after a lease expired mid-refresh; the other result stays.
        tracing::warn!("upstream tokens of a grant changed during a refresh");
    }
    state.audit.record(crate::audit::Event {
        event: "upstream_token_refreshed",
        user: Some(owner.subject),
        client_id: owner.client_id,
        provider: Some(owner.provider),
        ..Default::default()
    });
    Ok(stored)
}

/// The grant's upstream tokens as stored now: sealed and opened.
async fn current(state: &AppState, grant_id: &str) -> Result<Option<(String, Value)>, Unavailable> {
    let grant = state.store.grant(grant_id).await.map_err(store_failed)?;
    Ok(grant
        .and_then(|g| g.upstream_tokens)
        .and_then(|sealed| open(state, &sealed).map(|tokens| (sealed, tokens))))
}

fn store_failed(e: sqlx::Error) -> Unavailable {
    Unavailable::ProviderFailed(format!("store: {e}"))
}

fn open(state: &AppState, sealed: &str) -> Option<Value> {
    let bytes = state.sealer.open(sealed).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn expiring(tokens: &Value, now: i64) -> bool {
    tokens["expires_at"]
        .as_i64()
        .is_some_and(|at| at - EXPIRY_MARGIN_SECONDS <= now)
}

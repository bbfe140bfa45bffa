//! The user's upstream token, kept sealed with their grant, for MCP servers that call
//! the upstream as the user. When it is about to expire it is refreshed through the
//! provider first; one refresh per grant at a time (a lock within an instance, a lease
//! in the store across instances), so a rotating refresh token is never spent twice.

use super::caller::Caller;
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
        "scope": tokens.scope,
        "extra": tokens.extra,
    })
}

/// Why no upstream token can be had.
#[derive(Debug)]
pub enum Unavailable {
    /// The upstream grant is gone (expired without refresh, or refused): sign in again.
    SignInAgain(String),
    /// The provider could not be reached or failed.
    ProviderFailed(String),
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

/// The access token of `grant_id`'s upstream tokens, refreshed if need be. `sealed` is
/// what the caller's grant held when it was read.
pub async fn access_token(
    state: &AppState,
    caller: &Caller,
    grant_id: &str,
    sealed: Option<&str>,
) -> Result<Option<Secret>, Unavailable> {
    let Some(tokens) = sealed.and_then(|s| open(state, s)) else {
        return Ok(None);
    };
    let now = crate::clock::now();
    if !expiring(&tokens, now) {
        return Ok(token_of(&tokens));
    }
    let lock = state.refresh_locks.for_grant(grant_id);
    let result = {
        let _held = lock.lock().await;
        refresh(state, caller, grant_id).await
    };
    drop(lock);
    state.refresh_locks.release(grant_id);
    result
}

/// Refresh, unless someone (here or on another instance) just did. Instances take a
/// lease in the store first; the others wait and then use what it stored.
async fn refresh(
    state: &AppState,
    caller: &Caller,
    grant_id: &str,
) -> Result<Option<Secret>, Unavailable> {
    let waiting_since = Instant::now();
    loop {
        let Some((_, tokens)) = current(state, grant_id).await? else {
            return Ok(None);
        };
        let now = crate::clock::now();
        if !expiring(&tokens, now) {
            return Ok(token_of(&tokens));
        }
        let leased = state
            .store
            .take_refresh_lease(grant_id, now, now + LEASE_SECONDS)
            .await
            .map_err(store_failed)?;
        if leased {
            let result = refresh_holding_lease(state, caller, grant_id).await;
            if let Err(e) = state.store.release_refresh_lease(grant_id).await {
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

async fn refresh_holding_lease(
    state: &AppState,
    caller: &Caller,
    grant_id: &str,
) -> Result<Option<Secret>, Unavailable> {
    let provider = caller.provider.as_deref().unwrap_or_default();
    // Read again under the lease: the previous holder may have finished just now.
    let Some((sealed, tokens)) = current(state, grant_id).await? else {
        return Ok(None);
    };
    let now = crate::clock::now();
    if !expiring(&tokens, now) {
        return Ok(token_of(&tokens));
    }
    let Some(refresh_token) = tokens["refresh_token"].as_str() else {
        return Err(Unavailable::SignInAgain(
            "the upstream token expired and cannot be refreshed".into(),
        ));
    };
    let Some(instance) = state.registry.instances.get(provider) else {
        return Err(Unavailable::ProviderFailed(format!(
            "provider `{provider}` is not loaded"
        )));
    };
    let fresh = match instance.refresh(refresh_token.to_string()).await {
        Ok(fresh) => fresh,
        Err(e) => {
            return Err(match e.provider_error() {
                Some(ProviderError::InvalidGrant(why)) => Unavailable::SignInAgain(format!(
                    "the upstream refused to refresh the token: {why}"
                )),
                _ => Unavailable::ProviderFailed(e.to_string()),
            });
        }
    };
    let stored = stored_form(&fresh, now, Some(refresh_token));
    let sealed_new = state.sealer.seal(stored.to_string().as_bytes());
    if !state
        .store
        .replace_upstream_tokens(grant_id, &sealed, &sealed_new)
        .await
        .map_err(store_failed)?
    {
        // Only after a lease expired mid-refresh; the other result stays.
        tracing::warn!("upstream tokens of a grant changed during a refresh");
    }
    state.audit.record(crate::audit::Event {
        event: "upstream_token_refreshed",
        user: Some(&caller.user.sub),
        client_id: caller.client_id.as_deref(),
        provider: Some(provider),
        ..Default::default()
    });
    Ok(Some(Secret::new(fresh.access_token)))
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

fn token_of(tokens: &Value) -> Option<Secret> {
    tokens["access_token"].as_str().map(Secret::new)
}

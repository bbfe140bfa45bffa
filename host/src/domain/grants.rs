//! Grants: what a user's sign-in gave one client for one resource, from creation at
//! the upstream callback through refreshes to revocation. A grant keeps the user's
//! claims and their upstream tokens (sealed). The upstream tokens are forwarded to MCP
//! servers that call the upstream as the user, and used to confirm the user's claims
//! when the client refreshes. An expiring upstream token is refreshed through the
//! provider first, one refresh per grant at a time (a lock within an instance, a lease
//! in the store across instances), so a rotating refresh token is never spent twice.

use super::upstream_tokens::UpstreamTokens;
use super::user::User;
use crate::audit::{Audit, Event};
use crate::clock::Clock;
use crate::config::TokenConfig;
use crate::crypto::{self, Sealer};
use crate::registry::Registry;
use crate::runtime::{ProviderError, ProviderInstance, TokenSet};
use crate::secret::Secret;
use crate::store::{Grant, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a refresh lease holds: longer than a provider call may take.
const LEASE_SECONDS: i64 = 40;
/// How long a request waits for another instance's refresh before giving up.
const LEASE_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting request looks whether the other instance's refresh is done.
const LEASE_POLL: Duration = Duration::from_millis(100);

pub struct Grants {
    store: Store,
    sealer: Arc<Sealer>,
    registry: Arc<Registry>,
    audit: Arc<Audit>,
    clock: Arc<dyn Clock>,
    lifetimes: TokenConfig,
    locks: RefreshLocks,
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

impl<'a> GrantOwner<'a> {
    pub fn of(grant: &'a Grant) -> Self {
        GrantOwner {
            grant_id: &grant.id,
            subject: &grant.subject,
            client_id: Some(&grant.client_id),
            provider: &grant.provider,
        }
    }
}

/// What the upstream callback established, to become a grant.
pub struct SignIn<'a> {
    pub client_id: &'a str,
    pub provider: &'a str,
    pub user: &'a User,
    pub tokens: &'a TokenSet,
    pub scope: &'a str,
    pub resource: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
}

/// A grant that may be used: its user's claims, read once, and its sealed upstream tokens.
pub struct ActiveGrant {
    /// Shared: callers made from a cached grant point at the same user.
    pub user: Arc<User>,
    pub upstream_tokens: Option<String>,
}

/// Why a grant may not be refreshed.
#[derive(Debug)]
pub enum RefreshRefused {
    /// The grant ended (session too old, the upstream no longer vouches for the user):
    /// the client must sign the user in again.
    Ended(String),
    /// The upstream could not confirm the user now; the refresh token stays valid.
    Unavailable(String),
    Store(sqlx::Error),
}

impl From<sqlx::Error> for RefreshRefused {
    fn from(error: sqlx::Error) -> Self {
        RefreshRefused::Store(error)
    }
}

impl Grants {
    pub fn new(
        store: Store,
        sealer: Arc<Sealer>,
        registry: Arc<Registry>,
        audit: Arc<Audit>,
        clock: Arc<dyn Clock>,
        lifetimes: TokenConfig,
    ) -> Grants {
        Grants {
            store,
            sealer,
            registry,
            audit,
            clock,
            lifetimes,
            locks: RefreshLocks::default(),
        }
    }

    /// A new grant from a sign-in, with an authorization code for it (returned; only its
    /// hash is kept).
    pub async fn create(&self, sign_in: SignIn<'_>) -> sqlx::Result<(Grant, String)> {
        let now = self.clock.now();
        let code = crypto::random_token();
        let upstream = UpstreamTokens::obtained(sign_in.tokens, now, None);
        let grant = Grant {
            id: crypto::random_token(),
            client_id: sign_in.client_id.to_string(),
            provider: sign_in.provider.to_string(),
            subject: sign_in.user.sub.clone(),
            claims: sign_in.user.to_stored(),
            scope: sign_in.scope.to_string(),
            resource: sign_in.resource.to_string(),
            redirect_uri: sign_in.redirect_uri.to_string(),
            code_challenge: sign_in.code_challenge.to_string(),
            code_hash: Some(crypto::hash_token(&code)),
            code_expires_at: now + self.lifetimes.authorization_code_ttl as i64,
            code_used_at: None,
            upstream_tokens: Some(upstream.seal(&self.sealer)),
            created_at: now,
            revoked_at: None,
            claims_checked_at: Some(now),
        };
        self.store.insert_grant(&grant).await?;
        Ok((grant, code))
    }

    /// The user a grant holds.
    pub fn user(grant: &Grant) -> User {
        User::from_stored(&grant.claims, &grant.subject)
    }

    /// The grant, if it exists and was not revoked.
    pub async fn active(&self, grant_id: &str) -> sqlx::Result<Option<ActiveGrant>> {
        Ok(self
            .store
            .grant(grant_id)
            .await?
            .filter(|g| g.revoked_at.is_none())
            .map(|g| ActiveGrant {
                user: Arc::new(Grants::user(&g)),
                upstream_tokens: g.upstream_tokens,
            }))
    }

    /// When a session started at `created_at` ends, however often it is refreshed.
    pub fn session_end(&self, created_at: i64) -> i64 {
        created_at.saturating_add(self.lifetimes.max_session_age as i64)
    }

    /// Before a refresh: the session may not outlive `max_session_age`, and claims
    /// older than `claims_max_age` (or held with upstream tokens that have expired) are
    /// confirmed with the upstream first. An upstream that no longer accepts the user
    /// ends the grant; one that cannot be reached refuses this refresh only.
    pub async fn confirm_for_refresh(&self, grant: Grant) -> Result<Grant, RefreshRefused> {
        let now = self.clock.now();
        if now >= self.session_end(grant.created_at) {
            return Err(self
                .end(&grant, "the session reached its maximum age".into())
                .await);
        }
        let checked = grant.claims_checked_at.unwrap_or(grant.created_at);
        let fresh = now - checked < self.lifetimes.claims_max_age as i64;
        let upstream_expired = grant
            .upstream_tokens
            .as_deref()
            .and_then(|sealed| UpstreamTokens::open(&self.sealer, sealed))
            .is_some_and(|tokens| tokens.expired(now));
        if fresh && !upstream_expired {
            return Ok(grant);
        }
        match self.revalidate(&GrantOwner::of(&grant)).await {
            Ok(user) => {
                self.audit.record(Event {
                    event: "claims_refreshed",
                    user: Some(&grant.subject),
                    client_id: Some(&grant.client_id),
                    provider: Some(&grant.provider),
                    resource: Some(&grant.resource),
                    detail: None,
                });
                Ok(Grant {
                    claims: user.to_stored(),
                    claims_checked_at: Some(now),
                    ..grant
                })
            }
            Err(Unavailable::SignInAgain(why)) => Err(self.end(&grant, why).await),
            Err(Unavailable::ProviderFailed(why)) => Err(RefreshRefused::Unavailable(why)),
        }
    }

    /// The grant ends (every token of it), audited with the reason.
    async fn end(&self, grant: &Grant, why: String) -> RefreshRefused {
        if let Err(e) = self.store.revoke_grant(&grant.id, self.clock.now()).await {
            return RefreshRefused::Store(e);
        }
        self.audit.record(Event {
            event: "grant_ended",
            user: Some(&grant.subject),
            client_id: Some(&grant.client_id),
            provider: Some(&grant.provider),
            resource: Some(&grant.resource),
            detail: Some(why.clone()),
        });
        RefreshRefused::Ended(why)
    }

    /// The access token of the grant's upstream tokens, refreshed if need be. `sealed`
    /// is what the grant held when it was read.
    pub async fn upstream_access_token(
        &self,
        owner: &GrantOwner<'_>,
        sealed: Option<&str>,
    ) -> Result<Option<Secret>, Unavailable> {
        let Some(tokens) = sealed.and_then(|s| UpstreamTokens::open(&self.sealer, s)) else {
            return Ok(None);
        };
        let tokens = if tokens.expiring(self.clock.now()) {
            match self.refreshed(owner, None).await? {
                Some(tokens) => tokens,
                None => return Ok(None),
            }
        } else {
            tokens
        };
        Ok(Some(Secret::new(tokens.access_token)))
    }

    /// Ask the upstream again who the grant's user is: refresh the upstream tokens
    /// where the provider can (an upstream that ended the session refuses), then run
    /// its `user-claims`. The new claims are stored with the grant.
    pub async fn revalidate(&self, owner: &GrantOwner<'_>) -> Result<User, Unavailable> {
        let instance = self.instance(owner.provider)?;
        let now = self.clock.now();
        let Some((_, stored)) = self.current(owner.grant_id).await? else {
            return Err(Unavailable::SignInAgain(
                "the grant holds no upstream tokens to confirm the user with".into(),
            ));
        };
        let tokens = if instance.component.info.supports_refresh && stored.refresh_token.is_some() {
            self.refreshed(owner, Some(now)).await?.unwrap_or(stored)
        } else {
            stored
        };
        let claims = instance
            .user_claims(tokens.to_token_set(now))
            .await
            .map_err(|e| match e.provider_error() {
                Some(ProviderError::InvalidGrant(why) | ProviderError::AccessDenied(why)) => {
                    Unavailable::SignInAgain(format!(
                        "the upstream no longer accepts the user: {why}"
                    ))
                }
                _ => Unavailable::ProviderFailed(e.to_string()),
            })?;
        if claims.subject != owner.subject {
            return Err(Unavailable::SignInAgain(
                "the upstream now names another user".into(),
            ));
        }
        let user = User::from_claims(&claims);
        self.store
            .update_grant_claims(owner.grant_id, &user.to_stored(), now)
            .await
            .map_err(store_failed)?;
        Ok(user)
    }

    fn instance(&self, provider: &str) -> Result<&ProviderInstance, Unavailable> {
        self.registry
            .instances
            .get(provider)
            .map(|i| &**i)
            .ok_or_else(|| {
                Unavailable::ProviderFailed(format!("provider `{provider}` is not loaded"))
            })
    }

    /// The grant's upstream tokens after a refresh, unless someone (here or on another
    /// instance) just did one: with `obtained_since`, tokens obtained at or after it
    /// count as fresh; without, tokens not about to expire do.
    async fn refreshed(
        &self,
        owner: &GrantOwner<'_>,
        obtained_since: Option<i64>,
    ) -> Result<Option<UpstreamTokens>, Unavailable> {
        let lock = self.locks.for_grant(owner.grant_id);
        let result = {
            let _held = lock.lock().await;
            self.refresh_with_lease(owner, obtained_since).await
        };
        drop(lock);
        self.locks.release(owner.grant_id);
        result
    }

    /// Instances take a lease in the store; the others wait, then use what it stored.
    async fn refresh_with_lease(
        &self,
        owner: &GrantOwner<'_>,
        obtained_since: Option<i64>,
    ) -> Result<Option<UpstreamTokens>, Unavailable> {
        let fresh = |tokens: &UpstreamTokens, now: i64| match obtained_since {
            Some(since) => tokens.obtained_at >= since,
            None => !tokens.expiring(now),
        };
        let waiting_since = Instant::now();
        loop {
            let Some((_, tokens)) = self.current(owner.grant_id).await? else {
                return Ok(None);
            };
            let now = self.clock.now();
            if fresh(&tokens, now) {
                return Ok(Some(tokens));
            }
            let leased = self
                .store
                .take_refresh_lease(owner.grant_id, now, now + LEASE_SECONDS)
                .await
                .map_err(store_failed)?;
            if leased {
                // Read again under the lease: the previous holder may have finished now.
                let result = match self.current(owner.grant_id).await {
                    Ok(Some((_, tokens))) if fresh(&tokens, now) => Ok(Some(tokens)),
                    Ok(Some((sealed, tokens))) => {
                        self.refresh_now(owner, &sealed, &tokens).await.map(Some)
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                if let Err(e) = self.store.release_refresh_lease(owner.grant_id).await {
                    tracing::warn!("releasing an upstream refresh lease: {e}");
                }
                return result;
            }
            if waiting_since.elapsed() > LEASE_WAIT {
                return Err(Unavailable::ProviderFailed(
                    "another instance is still refreshing this upstream token".into(),
                ));
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    /// Refresh through the provider while holding the lease; store the result.
    async fn refresh_now(
        &self,
        owner: &GrantOwner<'_>,
        sealed: &str,
        tokens: &UpstreamTokens,
    ) -> Result<UpstreamTokens, Unavailable> {
        let Some(refresh_token) = &tokens.refresh_token else {
            return Err(Unavailable::SignInAgain(
                "the upstream token expired and cannot be refreshed".into(),
            ));
        };
        let fresh = self
            .instance(owner.provider)?
            .refresh(refresh_token.clone())
            .await
            .map_err(|e| match e.provider_error() {
                Some(ProviderError::InvalidGrant(why)) => Unavailable::SignInAgain(format!(
                    "the upstream refused to refresh the token: {why}"
                )),
                _ => Unavailable::ProviderFailed(e.to_string()),
            })?;
        let stored = UpstreamTokens::obtained(&fresh, self.clock.now(), Some(refresh_token));
        let replaced = self
            .store
            .replace_upstream_tokens(owner.grant_id, sealed, &stored.seal(&self.sealer))
            .await
            .map_err(store_failed)?;
        if !replaced {
            // Only after a lease expired mid-refresh; the other result stays.
            tracing::warn!("upstream tokens of a grant changed during a refresh");
        }
        self.audit.record(Event {
            event: "upstream_token_refreshed",
            user: Some(owner.subject),
            client_id: owner.client_id,
            provider: Some(owner.provider),
            ..Default::default()
        });
        Ok(stored)
    }

    /// The grant's upstream tokens as stored now: sealed and opened.
    async fn current(
        &self,
        grant_id: &str,
    ) -> Result<Option<(String, UpstreamTokens)>, Unavailable> {
        let grant = self.store.grant(grant_id).await.map_err(store_failed)?;
        Ok(grant.and_then(|g| g.upstream_tokens).and_then(|sealed| {
            UpstreamTokens::open(&self.sealer, &sealed).map(|tokens| (sealed, tokens))
        }))
    }
}

fn store_failed(e: sqlx::Error) -> Unavailable {
    Unavailable::ProviderFailed(format!("store: {e}"))
}

/// One upstream refresh per grant at a time within this instance.
#[derive(Default)]
struct RefreshLocks {
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

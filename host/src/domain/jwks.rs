//! Public keys others publish as a JWK Set at a URL (enterprise identity providers,
//! external authorization servers): fetched through the SSRF guard, cached, fetched
//! again when stale or when a token names a key the cache lacks (a rotation shows at
//! once; a flood of made-up key ids costs one fetch per interval), and kept in use
//! while the publisher is unreachable.

use super::guarded_fetch::{self, FetchError};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

/// How long keys are used before they are fetched again.
const KEYS_TTL: Duration = Duration::from_secs(600);
/// A key id the cached keys lack triggers a fetch at most this often.
const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Time limit of one fetch, and the largest key set accepted.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_JWKS_BYTES: usize = 64 * 1024;

pub struct RemoteKeys {
    url: Url,
    allow_private: bool,
    /// The keys and when they were fetched.
    cached: Mutex<Option<(Arc<JwkSet>, Instant)>>,
}

impl RemoteKeys {
    pub fn new(url: Url, allow_private: bool) -> RemoteKeys {
        RemoteKeys {
            url,
            allow_private,
            cached: Mutex::new(None),
        }
    }

    /// The keys to verify a token signed with `kid`.
    pub async fn for_kid(&self, kid: Option<&str>) -> Result<Arc<JwkSet>, String> {
        let cached = self
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((keys, fetched)) = &cached {
            let fresh = fetched.elapsed() < KEYS_TTL;
            let has_kid = find(keys, kid).is_some();
            if fresh && (has_kid || fetched.elapsed() < REFETCH_INTERVAL) {
                return Ok(keys.clone());
            }
        }
        let fetched = tokio::time::timeout(
            FETCH_TIMEOUT,
            guarded_fetch::get(&self.url, self.allow_private, MAX_JWKS_BYTES),
        )
        .await
        .unwrap_or_else(|_| Err(FetchError::Unreachable("no answer in time".into())));
        let keys = fetched
            .map_err(|e| match e {
                FetchError::Refused(why) | FetchError::Unreachable(why) => why,
            })
            .and_then(|f| {
                serde_json::from_slice::<JwkSet>(&f.body).map_err(|e| format!("not a JWK Set: {e}"))
            });
        match keys {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((keys.clone(), Instant::now()));
                Ok(keys)
            }
            Err(why) => {
                tracing::warn!(url = %self.url, "fetching published keys: {why}");
                cached
                    .map(|(keys, _)| keys)
                    .ok_or_else(|| "the issuer's keys cannot be fetched now".to_string())
            }
        }
    }
}

/// The key a token names; without a key id, only an unambiguous set will do.
pub fn find<'k>(keys: &'k JwkSet, kid: Option<&str>) -> Option<&'k Jwk> {
    match kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
}

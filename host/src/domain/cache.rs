//! A small map whose entries expire: verified access tokens (until their `exp`, so the
//! signature is checked once per token, not once per request) and upstream tokens
//! checked in `client_token` mode (for `client_token_cache_seconds`).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Past this many entries, expired ones are swept on insert; past twice as many, all
/// are dropped (a flood of distinct tokens cannot grow memory without bound).
const SWEEP_AT: usize = 10_000;

pub struct ExpiringCache<V> {
    /// Read on every request by every worker: a read lock lets them in together.
    entries: RwLock<HashMap<String, (V, Instant)>>,
}

impl<V> Default for ExpiringCache<V> {
    fn default() -> Self {
        ExpiringCache {
            entries: RwLock::new(HashMap::new()),
        }
    }
}

impl<V: Clone> ExpiringCache<V> {
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(value, _)| value.clone())
    }

    pub fn put(&self, key: String, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= 2 * SWEEP_AT {
                entries.clear();
            }
        }
        entries.insert(key, (value, now + ttl));
    }
}

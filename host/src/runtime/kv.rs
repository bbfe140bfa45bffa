//! The `cache` import: a small per-instance store that outlives one call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Providers cache a handful of things (discovery documents, JWKS); the bounds keep a
/// misbehaving one to at most 64 MiB, and anything cached is re-fetched within a day.
const MAX_ENTRIES: usize = 256;
const MAX_VALUE_BYTES: usize = 256 << 10;
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Default)]
pub struct KvCache {
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

impl KvCache {
    pub fn get(&self, key: &str) -> Option<String> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keep `value` for `ttl` (capped at a day). Oversized values are not kept; when
    /// full, expired entries go first, then an arbitrary one.
    pub fn set(&self, key: String, value: String, ttl: Duration) {
        if value.len() + key.len() > MAX_VALUE_BYTES || ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= MAX_ENTRIES
                && let Some(victim) = entries.keys().next().cloned()
            {
                entries.remove(&victim);
            }
        }
        entries.insert(key, (value, now + ttl.min(MAX_TTL)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_stays_bounded() {
        let cache = KvCache::default();
        cache.set("a".into(), "1".into(), Duration::from_secs(60));
        cache.set("gone".into(), "2".into(), Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(cache.get("a").as_deref(), Some("1"));
        assert_eq!(cache.get("gone"), None);
        for i in 0..MAX_ENTRIES * 2 {
            cache.set(format!("k{i}"), "v".into(), Duration::from_secs(60));
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
        cache.set(
            "big".into(),
            "x".repeat(MAX_VALUE_BYTES + 1),
            Duration::from_secs(60),
        );
        assert_eq!(cache.get("big"), None);
    }
}

//! Public keys others publish as a JWK Set at a URL (enterprise identity providers,
//! external authorization servers, machine clients): fetched through the SSRF guard,
//! cached, fetched again when stale or when a token names a key the cache lacks (a
//! rotation shows at once; a flood of made-up key ids costs one fetch per interval),
//! and kept in use while the publisher is unreachable. Beside them, what every check
//! of others' JWTs shares: the algorithms accepted and reading a claim unverified.

use super::guarded_fetch::{self, FetchError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::Value;
use std::str::FromStr;
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

/// Algorithms others may sign with: public-key ones only, never `HS*` (the
/// "secret" would be a public key) and never `none`.
pub const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The configured algorithm names as algorithms; a name that is not a public-key
/// signing algorithm is a problem named under `key`.
pub fn algorithms(names: &[String], key: &str, problems: &mut Vec<String>) -> Vec<Algorithm> {
    let mut algorithms = Vec::new();
    for name in names {
        match Algorithm::from_str(name) {
            Ok(alg) if ALGORITHMS.contains(&alg) => algorithms.push(alg),
            _ => problems.push(format!(
                "{key}: `{name}` is not a public-key signing algorithm"
            )),
        }
    }
    algorithms
}

/// Where keys (or answers about tokens) are fetched from: https, or plain http where
/// a lab allows private hosts.
pub fn fetchable_url(raw: &str, allow_private: bool) -> Result<Url, String> {
    match Url::parse(raw) {
        Ok(url) if url.scheme() == "https" => Ok(url),
        Ok(url) if url.scheme() == "http" && allow_private => Ok(url),
        Ok(_) => Err("must be an https URL".into()),
        Err(e) => Err(format!("`{raw}`: {e}")),
    }
}

/// A string claim of a JWT, read before anything is checked: only to choose the keys
/// that check it.
pub fn unverified_claim(jwt: &str, name: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get(name)?.as_str().map(String::from)
}

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

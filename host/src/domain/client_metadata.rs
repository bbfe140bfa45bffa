//! Client ID metadata documents: a client id that is an https URL names a JSON document
//! describing the client. Fetched through the SSRF guard (`guarded_fetch`) within a
//! time limit, and cached per Cache-Control.

use super::clients::{Client, ClientKind, check_redirect_uri};
use super::guarded_fetch::{self, FetchError};
use super::oauth_error::OAuthError;
use crate::config::ClientMetadataConfig;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use url::Url;

/// How long a document is trusted when its response says nothing (CIMD suggests
/// honouring HTTP caching), and at most whatever it says: a changed or withdrawn
/// document takes effect within a day.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Distinct client ids remembered; a deployment sees tens, a flood of made-up ids
/// cannot grow memory past this.
const MAX_CACHED: usize = 1024;

/// Documents fetched at once, at most; more wait briefly, then are told to retry.
const MAX_CONCURRENT_FETCHES: usize = 16;

pub struct MetadataDocuments {
    config: ClientMetadataConfig,
    /// Documents and failures by client id, until when they are good.
    cache: Mutex<HashMap<String, (Fetched, Instant)>>,
    fetches: Semaphore,
}

type Fetched = Result<Client, DocumentRefusal>;

/// Why a client id or its document cannot be used.
#[derive(Debug, Clone)]
pub enum DocumentRefusal {
    /// The document (or the id itself) is not acceptable: `invalid_client`.
    Invalid(String),
    /// Its host could not be reached right now: `temporarily_unavailable`, so an
    /// outage of the client's host does not end its users' sessions.
    Unreachable(String),
}

impl DocumentRefusal {
    fn into_oauth(self, client_id: &str) -> OAuthError {
        match self {
            DocumentRefusal::Invalid(why) => {
                OAuthError::invalid_client(format!("client metadata document {client_id}: {why}"))
            }
            DocumentRefusal::Unreachable(why) => OAuthError::temporarily_unavailable(format!(
                "the client metadata document {client_id} cannot be fetched right now ({why}); try again"
            )),
        }
    }
}

impl MetadataDocuments {
    pub fn new(config: ClientMetadataConfig) -> Self {
        MetadataDocuments {
            config,
            cache: Mutex::new(HashMap::new()),
            fetches: Semaphore::new(MAX_CONCURRENT_FETCHES),
        }
    }

    pub async fn client(&self, client_id: &str) -> Result<Client, OAuthError> {
        if let Some((result, expires)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
            && *expires > Instant::now()
        {
            return result.clone().map_err(|r| r.into_oauth(client_id));
        }
        let (result, ttl) = match self.fetch_limited(client_id).await {
            Ok((client, ttl)) => (Ok(client), ttl),
            Err(refusal) => {
                tracing::info!(client_id, "client metadata document refused: {refusal:?}");
                // Remembered briefly, so a failing id is not fetched on every request.
                let ttl = Duration::from_secs(self.config.failure_cache_seconds);
                (Err(refusal), ttl)
            }
        };
        if !ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_CACHED {
                let now = Instant::now();
                cache.retain(|_, (_, expires)| *expires > now);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(
                client_id.to_string(),
                (result.clone(), Instant::now() + ttl),
            );
        }
        result.map_err(|r| r.into_oauth(client_id))
    }

    /// One fetch, within the concurrency cap and the time limit (the DNS lookup
    /// included).
    async fn fetch_limited(&self, client_id: &str) -> Result<(Client, Duration), DocumentRefusal> {
        let limit = Duration::from_millis(self.config.timeout_ms);
        let _slot = tokio::time::timeout(Duration::from_secs(1), self.fetches.acquire())
            .await
            .map_err(|_| DocumentRefusal::Unreachable("too many documents being fetched".into()))?
            .map_err(|_| DocumentRefusal::Unreachable("shutting down".into()))?;
        tokio::time::timeout(limit, self.fetch(client_id))
            .await
            .unwrap_or_else(|_| {
                Err(DocumentRefusal::Unreachable(format!(
                    "no answer within {} ms",
                    self.config.timeout_ms
                )))
            })
    }

    async fn fetch(&self, client_id: &str) -> Result<(Client, Duration), DocumentRefusal> {
        let allow_private = self.config.allow_private_hosts;
        let url = check_client_id(client_id, allow_private).map_err(DocumentRefusal::Invalid)?;
        let fetched = guarded_fetch::get(&url, allow_private, self.config.max_bytes)
            .await
            .map_err(|e| match e {
                FetchError::Refused(why) => DocumentRefusal::Invalid(why),
                FetchError::Unreachable(why) => DocumentRefusal::Unreachable(why),
            })?;
        let ttl = cache_ttl(fetched.cache_control.as_deref());
        let body = fetched.body;
        let client = parse_document(client_id, &body).map_err(DocumentRefusal::Invalid)?;
        Ok((client, ttl))
    }
}

/// A client id is the document's URL, taken as written: https, a path, no query,
/// fragment or credentials, and nothing a URL parser would rewrite (dot segments,
/// upper-case host, default port), so what is fetched is exactly what was named.
fn check_client_id(client_id: &str, allow_http: bool) -> Result<Url, String> {
    let url = Url::parse(client_id).map_err(|_| "not a valid URL".to_string())?;
    if url.scheme() != "https" && !(allow_http && url.scheme() == "http") {
        return Err("must be an https URL".into());
    }
    if url.query().is_some() || client_id.contains('?') {
        return Err("must not have a query".into());
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("must have no fragment or credentials".into());
    }
    if url.path() == "/" {
        return Err("must have a path".into());
    }
    let raw_path = client_id
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    let dot_segment = raw_path.split('/').any(|segment| {
        let decoded = segment.replace("%2e", ".").replace("%2E", ".");
        decoded == "." || decoded == ".."
    });
    if dot_segment {
        return Err("must not contain dot segments".into());
    }
    if url.as_str() != client_id {
        return Err("must be written in its normal form (as a URL parser writes it)".into());
    }
    Ok(url)
}

/// Check a fetched document against its URL and the rules for public clients.
fn parse_document(client_id: &str, body: &[u8]) -> Result<Client, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if doc["client_id"].as_str() != Some(client_id) {
        return Err("its client_id does not equal the document URL".into());
    }
    // A document is public: a secret in it is no secret, and a private key is worse.
    for key in ["client_secret", "client_secret_expires_at"] {
        if doc.get(key).is_some() {
            return Err(format!(
                "it carries `{key}`, which a public document must not"
            ));
        }
    }
    let private_jwk = doc["jwks"]["keys"].as_array().is_some_and(|keys| {
        keys.iter().any(|k| {
            ["d", "p", "q", "dp", "dq", "qi", "k"]
                .iter()
                .any(|f| k.get(f).is_some())
        })
    });
    if private_jwk {
        return Err("its jwks contains private key material".into());
    }
    let name = doc["client_name"]
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .ok_or("client_name is missing")?;
    let redirect_uris: Vec<String> = doc["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err("redirect_uris is missing or empty".into());
    }
    for uri in &redirect_uris {
        check_redirect_uri(uri)?;
    }
    match doc["token_endpoint_auth_method"].as_str() {
        None | Some("none") => {}
        Some(other) => {
            return Err(format!(
                "token_endpoint_auth_method `{other}` is not supported (use none)"
            ));
        }
    }
    Ok(Client {
        client_id: client_id.to_string(),
        name: name.chars().take(100).collect(),
        redirect_uris,
        secret_hash: None,
        kind: ClientKind::MetadataDocument,
        machine: None,
        jwks: None,
    })
}

/// How long to keep a document, from its Cache-Control header.
fn cache_ttl(cache_control: Option<&str>) -> Duration {
    let Some(value) = cache_control else {
        return DEFAULT_TTL;
    };
    let directives: Vec<&str> = value.split(',').map(str::trim).collect();
    if directives
        .iter()
        .any(|d| d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache"))
    {
        return Duration::ZERO;
    }
    directives
        .iter()
        .find_map(|d| d.strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TTL)
        .min(MAX_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn client_ids_are_taken_as_written() {
        assert!(check_client_id("https://app.example.com/oauth/client.json", false).is_ok());
        for bad in [
            "https://app.example.com/a/../client.json",
            "https://app.example.com/a/./client.json",
            "https://app.example.com/a/%2e%2e/client.json",
            "https://app.example.com/a/.%2E/client.json",
            "https://app.example.com/client.json?x=1",
            "https://app.example.com/client.json?",
            "https://app.example.com/client.json#f",
            "https://user@app.example.com/client.json",
            "https://APP.example.com/client.json",
            "https://app.example.com:443/client.json",
            "https://app.example.com/",
            "http://app.example.com/client.json",
        ] {
            assert!(check_client_id(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn documents_with_secrets_are_refused() {
        let id = "https://app.example.com/c.json";
        let doc = |extra: &str| {
            format!(
                r#"{{"client_id":"{id}","client_name":"App","redirect_uris":["https://app.example.com/cb"]{extra}}}"#
            )
        };
        assert!(parse_document(id, doc("").as_bytes()).is_ok());
        assert!(parse_document(id, doc(r#","client_secret":"s""#).as_bytes()).is_err());
        assert!(parse_document(id, doc(r#","client_secret_expires_at":0"#).as_bytes()).is_err());
        assert!(
            parse_document(
                id,
                doc(r#","jwks":{"keys":[{"kty":"EC","d":"x"}]}"#).as_bytes()
            )
            .is_err()
        );
    }

    #[test]
    fn cache_control() {
        assert_eq!(cache_ttl(Some("max-age=60")), Duration::from_secs(60));
        assert_eq!(cache_ttl(Some("public, max-age=999999")), MAX_TTL);
        assert_eq!(cache_ttl(Some("no-store")), Duration::ZERO);
        assert_eq!(cache_ttl(None), DEFAULT_TTL);
    }
}

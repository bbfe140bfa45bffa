//! Client ID metadata documents: a client id that is an https URL names a JSON document
//! describing the client. Fetched with an SSRF guard (public addresses only, pinned
//! to the resolved address), a size and a time limit, and cached per Cache-Control.

use super::clients::{Client, ClientKind, check_redirect_uri};
use super::oauth_error::OAuthError;
use crate::config::ClientMetadataConfig;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};
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
        let invalid = |why: &str| DocumentRefusal::Invalid(why.to_string());
        let allow_private = self.config.allow_private_hosts;
        let url = check_client_id(client_id, allow_private).map_err(DocumentRefusal::Invalid)?;
        let host = url
            .host_str()
            .ok_or_else(|| invalid("has no host"))?
            .to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| DocumentRefusal::Unreachable(format!("cannot resolve {host}: {e}")))?
            .collect();
        let addr = *addrs
            .first()
            .ok_or_else(|| DocumentRefusal::Unreachable(format!("{host} has no address")))?;
        if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(DocumentRefusal::Invalid(format!(
                "{host} resolves to a non-public address"
            )));
        }
        // Pinned to the address just checked, so a second lookup cannot swap it.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .build()
            .map_err(|e| DocumentRefusal::Unreachable(e.to_string()))?;
        let mut response = http
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                DocumentRefusal::Unreachable(format!("fetch failed: {}", e.without_url()))
            })?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(DocumentRefusal::Unreachable(format!(
                "fetch answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(DocumentRefusal::Invalid(format!(
                "fetch answered HTTP {}",
                status.as_u16()
            )));
        }
        let ttl = cache_ttl(
            response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| DocumentRefusal::Unreachable(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > self.config.max_bytes {
                return Err(DocumentRefusal::Invalid(format!(
                    "document larger than {} bytes",
                    self.config.max_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }
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

/// Ranges that are not the public internet (IANA's special-purpose registries):
/// private, loopback, link-local, shared, documentation, benchmarking, multicast,
/// reserved, and the IPv6 prefixes that embed or tunnel to other addresses (NAT64,
/// 6to4, Teredo and the rest of 2001::/23).
const NOT_GLOBAL: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// Whether `ip` is a global address: none of [`NOT_GLOBAL`], and IPv4-mapped IPv6
/// addresses judged by their IPv4 address.
fn is_public(ip: IpAddr) -> bool {
    static RANGES: OnceLock<Vec<IpNet>> = OnceLock::new();
    let ranges = RANGES.get_or_init(|| NOT_GLOBAL.iter().filter_map(|r| r.parse().ok()).collect());
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        return is_public(IpAddr::V4(v4));
    }
    !ranges.iter().any(|range| range.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_addresses_are_public() {
        assert_eq!(
            NOT_GLOBAL.len(),
            NOT_GLOBAL
                .iter()
                .filter(|r| r.parse::<IpNet>().is_ok())
                .count()
        );
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.88.99.1",
            "64:ff9b::a00:1",
            "64:ff9b::808:808",
            "2002:a00:1::1",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "ff02::1",
            "::10.0.0.1",
            "fec0::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

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

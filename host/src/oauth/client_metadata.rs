//! Client ID metadata documents: a client id that is an https URL names a JSON document
//! describing the client. Fetched with an SSRF guard (public addresses only, pinned
//! to the resolved address), a size and a time limit, and cached per Cache-Control.

use super::clients::{Client, ClientKind, check_redirect_uri};
use super::error::OAuthError;
use crate::config::ClientMetadataConfig;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use url::Url;

const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_CACHED: usize = 1024;

pub struct MetadataDocuments {
    config: ClientMetadataConfig,
    cache: Mutex<HashMap<String, (Client, Instant)>>,
}

impl MetadataDocuments {
    pub fn new(config: ClientMetadataConfig) -> Self {
        MetadataDocuments {
            config,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn client(&self, client_id: &str) -> Result<Client, OAuthError> {
        if let Some((client, expires)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
            && *expires > Instant::now()
        {
            return Ok(client.clone());
        }
        let (client, ttl) = self.fetch(client_id).await.map_err(|why| {
            tracing::info!(client_id, "client metadata document refused: {why}");
            OAuthError::invalid_client(format!("client metadata document {client_id}: {why}"))
        })?;
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
                (client.clone(), Instant::now() + ttl),
            );
        }
        Ok(client)
    }

    async fn fetch(&self, client_id: &str) -> Result<(Client, Duration), String> {
        let url = Url::parse(client_id).map_err(|_| "not a valid URL".to_string())?;
        let allow_private = self.config.allow_private_hosts;
        if url.scheme() != "https" && !(allow_private && url.scheme() == "http") {
            return Err("must be an https URL".into());
        }
        if url.path() == "/"
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err("must have a path, and no fragment or credentials".into());
        }
        let host = url.host_str().ok_or("has no host")?.to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        let addr = *addrs
            .first()
            .ok_or_else(|| format!("{host} has no address"))?;
        if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(format!("{host} resolves to a non-public address"));
        }
        // Pinned to the address just checked, so a second lookup cannot swap it.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(self.config.timeout_ms))
            .resolve(&host, addr)
            .build()
            .map_err(|e| e.to_string())?;
        let mut response = http
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("fetch failed: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!(
                "fetch answered HTTP {}",
                response.status().as_u16()
            ));
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
            .map_err(|e| e.without_url().to_string())?
        {
            if body.len() + chunk.len() > self.config.max_bytes {
                return Err(format!(
                    "document larger than {} bytes",
                    self.config.max_bytes
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        if doc["client_id"].as_str() != Some(client_id) {
            return Err("its client_id does not equal the document URL".into());
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
        let client = Client {
            client_id: client_id.to_string(),
            name: name.chars().take(100).collect(),
            redirect_uris,
            secret_hash: None,
            kind: ClientKind::MetadataDocument,
        };
        Ok((client, ttl))
    }
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

/// Not loopback, private, link-local, shared (CGNAT), documentation or unspecified.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_not_public() {
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
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn cache_control() {
        assert_eq!(cache_ttl(Some("max-age=60")), Duration::from_secs(60));
        assert_eq!(cache_ttl(Some("public, max-age=999999")), MAX_TTL);
        assert_eq!(cache_ttl(Some("no-store")), Duration::ZERO);
        assert_eq!(cache_ttl(None), DEFAULT_TTL);
    }
}

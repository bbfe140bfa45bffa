//! The one way authhost fetches documents from URLs others name (client metadata
//! documents, published keys, token introspection): public addresses only (unless a
//! lab allows private ones), pinned to the address checked so a second DNS answer
//! cannot swap it, no redirects, and a size limit. The caller bounds the time.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use url::Url;

/// Why nothing usable was fetched.
#[derive(Debug)]
pub enum FetchError {
    /// The URL or its answer is not acceptable (a private address, an HTTP error, too
    /// large): asking again will not help.
    Refused(String),
    /// It could not be reached now (DNS, connection, 5xx, 429).
    Unreachable(String),
}

pub struct Fetched {
    pub body: Vec<u8>,
    pub cache_control: Option<String>,
}

/// A form POST (RFC 7662 introspection), authenticated with HTTP Basic.
pub struct FormPost<'a> {
    pub form: &'a [(&'a str, &'a str)],
    pub basic: (&'a str, &'a str),
}

/// GET `url` for JSON, under the rules above.
pub async fn get(url: &Url, allow_private: bool, max_bytes: usize) -> Result<Fetched, FetchError> {
    fetch(url, allow_private, max_bytes, None).await
}

/// POST a form to `url`, under the same rules, for JSON.
pub async fn post_form(
    url: &Url,
    allow_private: bool,
    max_bytes: usize,
    post: FormPost<'_>,
) -> Result<Fetched, FetchError> {
    fetch(url, allow_private, max_bytes, Some(post)).await
}

async fn fetch(
    url: &Url,
    allow_private: bool,
    max_bytes: usize,
    post: Option<FormPost<'_>>,
) -> Result<Fetched, FetchError> {
    let host = url
        .host_str()
        .ok_or_else(|| FetchError::Refused("the URL has no host".into()))?
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| FetchError::Unreachable(format!("cannot resolve {host}: {e}")))?
        .collect();
    let addr = *addrs
        .first()
        .ok_or_else(|| FetchError::Unreachable(format!("{host} has no address")))?;
    if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(FetchError::Refused(format!(
            "{host} resolves to a non-public address"
        )));
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&host, addr)
        .build()
        .map_err(|e| FetchError::Unreachable(e.to_string()))?;
    let request = match post {
        None => http.get(url.clone()),
        Some(post) => http
            .post(url.clone())
            .basic_auth(post.basic.0, Some(post.basic.1))
            .form(post.form),
    };
    let mut response = request
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| FetchError::Unreachable(format!("fetch failed: {}", e.without_url())))?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(FetchError::Unreachable(format!(
            "fetch answered HTTP {}",
            status.as_u16()
        )));
    }
    if !status.is_success() {
        return Err(FetchError::Refused(format!(
            "fetch answered HTTP {}",
            status.as_u16()
        )));
    }
    let cache_control = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Unreachable(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::Refused(format!(
                "document larger than {max_bytes} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        body,
        cache_control,
    })
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
}

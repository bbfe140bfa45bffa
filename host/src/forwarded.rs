//! Requests through a reverse proxy: when the peer is one of `server.trusted_proxies`,
//! `X-Forwarded-For` names the client, and `X-Forwarded-Proto` / `-Host` are compared
//! with `base_url` once, to catch the most common deployment mistake early.

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

/// Parse `server.trusted_proxies`; errors name the entry.
pub fn parse_trusted(entries: &[String]) -> Result<Vec<IpNet>, Vec<String>> {
    let mut nets = Vec::new();
    let mut problems = Vec::new();
    for entry in entries {
        match entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        {
            Ok(net) => nets.push(net),
            Err(_) => problems.push(format!(
                "server.trusted_proxies: `{entry}` is neither an IP address nor a CIDR range"
            )),
        }
    }
    if problems.is_empty() {
        Ok(nets)
    } else {
        Err(problems)
    }
}

/// The client's address: the peer, or, through trusted proxies, the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_addr(trusted: &[IpNet], peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    Some(
        chain
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// The client address of a request (see [`client_addr`]); through a trusted proxy, also
/// checks once that the proxy's idea of the public URL is `base_url`.
pub fn client_of(trusted: &[IpNet], issuer: &str, request: &Request) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if peer.is_some_and(|p| trusted.iter().any(|net| net.contains(&p))) {
        check_base_url(issuer, request.headers());
    }
    client_addr(trusted, peer, request.headers())
}

/// Warn (once) when the proxy says clients reach us at another origin than `base_url`:
/// tokens, metadata and redirects would all name the wrong place.
fn check_base_url(issuer: &str, headers: &HeaderMap) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(proto), Some(host)) = (get("x-forwarded-proto"), get("x-forwarded-host")) else {
        return;
    };
    let seen = format!("{proto}://{host}");
    if !issuer.starts_with(&seen) && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "the reverse proxy says clients reach authhost at {seen}, but server.base_url is {issuer}; set server.base_url to the public URL"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_through_trusted_proxies() {
        let trusted = parse_trusted(&["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.1.2.3".parse().unwrap());
        let via_proxy = client_addr(&trusted, Some("127.0.0.1".parse().unwrap()), &headers);
        assert_eq!(via_proxy, Some("203.0.113.9".parse().unwrap()));
        let direct = client_addr(&trusted, Some("198.51.100.7".parse().unwrap()), &headers);
        assert_eq!(
            direct,
            Some("198.51.100.7".parse().unwrap()),
            "a client cannot claim an address"
        );
        assert!(parse_trusted(&["nonsense".into()]).unwrap_err()[0].contains("nonsense"));
    }
}

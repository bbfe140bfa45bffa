//! What one provider instance may do: the hosts it may reach and its resource limits.

use std::time::Duration;
use url::Url;

use super::kv::KvCache;
use super::outbound::ClientCredentials;

/// What every call of one configured provider instance shares.
pub struct Sandbox {
    /// The instance id, for errors and logs.
    pub name: String,
    pub allowed: AllowList,
    pub limits: Limits,
    pub credentials: ClientCredentials,
    pub cache: KvCache,
}

impl Sandbox {
    /// No network, default limits: for `info` at load time.
    pub fn isolated(name: &str) -> Sandbox {
        Sandbox {
            name: name.to_string(),
            allowed: AllowList::default(),
            limits: Limits::default(),
            credentials: ClientCredentials {
                client_id: String::new(),
                client_secret: None,
            },
            cache: KvCache::default(),
        }
    }
}

/// Per-call limits. Defaults suit every bundled provider; operators may tune them per
/// provider instance.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory a single call may grow to.
    pub memory_bytes: usize,
    /// Time spent running the component's code (not waiting on HTTP) per call.
    pub cpu_time: Duration,
    /// Wall-clock time of the whole call, HTTP included.
    pub call_timeout: Duration,
    /// Wall-clock time of one outbound request, redirects included.
    pub http_timeout: Duration,
    /// Largest response body a component may receive.
    pub max_response_bytes: usize,
    /// Outbound requests per call; past this the call is aborted.
    pub max_http_requests: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 32 << 20,
            cpu_time: Duration::from_millis(200),
            call_timeout: Duration::from_secs(30),
            http_timeout: Duration::from_secs(10),
            max_response_bytes: 1 << 20,
            max_http_requests: 16,
        }
    }
}

/// Hosts a provider instance may call. Deny by default.
///
/// Entries are `host`, `*.domain`, or `scheme://host[:port]`. Without a scheme, https
/// on port 443 is meant; plain http must be named explicitly (`http://127.0.0.1:8080`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowList {
    entries: Vec<Origin>,
}

#[derive(Debug, Clone, PartialEq)]
struct Origin {
    scheme: String,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any subdomain, not the domain itself.
    Subdomains(String),
}

impl AllowList {
    /// Parse allowlist entries; an entry that cannot be understood is an error naming it.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, String> {
        let entries = entries
            .iter()
            .map(|e| Origin::parse(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    /// The origin of a URL as an allowlist entry (`https://host[:port]`).
    pub fn entry_for(url: &Url) -> Option<String> {
        let host = url.host_str()?;
        Some(match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the URL may be requested; the error says why not.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err("URLs with credentials are not allowed".into());
        }
        let host = url.host_str().ok_or("the URL has no host")?;
        let port = url.port_or_known_default();
        let allowed = self.entries.iter().any(|o| {
            o.scheme == url.scheme()
                && o.host.matches(host)
                && o.port.or_else(|| default_port(&o.scheme)) == port
        });
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "{} is not in allowed_hosts",
                Self::entry_for(url).unwrap_or_else(|| host.to_string())
            ))
        }
    }

    /// The entries, written back as text (for `providers list`).
    pub fn describe(&self) -> Vec<String> {
        self.entries.iter().map(Origin::to_string).collect()
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

impl Origin {
    fn parse(entry: &str) -> Result<Origin, String> {
        let bad = |why: &str| format!("allowed_hosts entry `{entry}` {why}");
        let (scheme, rest) = match entry.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_string(), entry),
        };
        if scheme != "https" && scheme != "http" {
            return Err(bad("must use http or https"));
        }
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') || rest.is_empty() {
            return Err(bad(
                "must be a host, optionally with scheme and port, no path",
            ));
        }
        let port_of = |p: &str| p.parse::<u16>().map_err(|_| bad("has an invalid port"));
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("has an unclosed `[`"))?;
            let port = match after {
                "" => None,
                _ => Some(port_of(after.strip_prefix(':').unwrap_or(after))?),
            };
            (format!("[{addr}]"), port)
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host.to_string(), Some(port_of(port)?)),
                None => (rest.to_string(), None),
            }
        };
        let host = host.to_ascii_lowercase();
        let host = match host.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                HostPattern::Subdomains(domain.to_string())
            }
            _ if host.contains('*') => return Err(bad("may only use `*.` at the start")),
            _ => HostPattern::Exact(host),
        };
        Ok(Origin { scheme, host, port })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            HostPattern::Exact(h) => write!(f, "{}://{h}", self.scheme)?,
            HostPattern::Subdomains(d) => write!(f, "{}://*.{d}", self.scheme)?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self {
            HostPattern::Exact(h) => *h == host,
            HostPattern::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(entries: &[&str], url: &str) -> bool {
        AllowList::parse(entries)
            .unwrap()
            .check(&Url::parse(url).unwrap())
            .is_ok()
    }

    #[test]
    fn bare_host_means_https_on_443() {
        assert!(check(&["github.com"], "https://github.com/login"));
        assert!(check(&["github.com"], "https://GitHub.com:443/x"));
        assert!(!check(&["github.com"], "http://github.com/login"));
        assert!(!check(&["github.com"], "https://github.com:8443/"));
        assert!(!check(&["github.com"], "https://api.github.com/"));
        assert!(!check(&["github.com"], "https://github.com.evil.net/"));
    }

    #[test]
    fn explicit_scheme_and_port() {
        assert!(check(&["http://127.0.0.1:9000"], "http://127.0.0.1:9000/a"));
        assert!(!check(
            &["http://127.0.0.1:9000"],
            "http://127.0.0.1:9001/a"
        ));
        assert!(!check(
            &["http://127.0.0.1:9000"],
            "https://127.0.0.1:9000/a"
        ));
        assert!(check(&["http://[::1]:9000"], "http://[::1]:9000/a"));
    }

    #[test]
    fn wildcard_covers_subdomains_only() {
        assert!(check(
            &["*.my.salesforce.com"],
            "https://acme.my.salesforce.com/"
        ));
        assert!(!check(
            &["*.my.salesforce.com"],
            "https://my.salesforce.com/"
        ));
        assert!(!check(
            &["*.my.salesforce.com"],
            "https://evilmy.salesforce.com/"
        ));
    }

    #[test]
    fn empty_list_denies_everything_and_credentials_are_refused() {
        assert!(!check(&[], "https://github.com/"));
        assert!(!check(&["github.com"], "https://user:pw@github.com/"));
    }

    #[test]
    fn malformed_entries_are_named() {
        let err = AllowList::parse(&["ftp://x"]).unwrap_err();
        assert!(err.contains("ftp://x"), "{err}");
        assert!(AllowList::parse(&["github.com/path"]).is_err());
        assert!(AllowList::parse(&["a*.b.com"]).is_err());
        assert!(AllowList::parse(&["h:port"]).is_err());
    }
}

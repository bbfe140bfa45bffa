//! The redirect URIs dynamic registration accepts, as patterns
//! (`registration.allowed_redirect_uris`). The grammar:
//!
//! - any character but `*` matches itself;
//! - `*` matches any run of characters except `/`, `?`, `#`, `@` and `\`, so within
//!   one host label, port or path segment: `https://*.example.com/cb` cannot admit
//!   `https://evil.com/.example.com/cb` or `https://evil.com@x.example.com/cb`;
//! - `**` also crosses `/` (any run of path segments). It is only allowed after the
//!   authority (`cursor://*/**`, `http://localhost:*/**`).
//!
//! Neither matches `?` or `#`: a pattern admits a query only by spelling it out.

/// Characters `*` never matches.
const STAR_STOPS: &[char] = &['/', '?', '#', '@', '\\'];
/// Characters `**` never matches.
const DOUBLE_STAR_STOPS: &[char] = &['?', '#', '@', '\\'];

/// Whether `pattern` is well formed; the error says why not.
pub fn check(pattern: &str) -> Result<(), String> {
    if pattern.contains("***") {
        return Err(format!("`{pattern}`: use `*` or `**`, not more"));
    }
    if let Some(at) = pattern.find("**") {
        let authority_end = pattern
            .find("://")
            .map(|s| s + 3)
            .and_then(|start| pattern[start..].find('/').map(|i| start + i));
        if authority_end.is_none_or(|end| at < end) {
            return Err(format!(
                "`{pattern}`: `**` may only stand in the path, after `scheme://host/`"
            ));
        }
    }
    Ok(())
}

/// Whether `uri` matches `pattern` (a malformed pattern matches nothing).
pub fn matches(pattern: &str, uri: &str) -> bool {
    check(pattern).is_ok() && match_from(pattern, uri)
}

fn match_from(pattern: &str, uri: &str) -> bool {
    if let Some(rest) = pattern.strip_prefix("**") {
        return match_run(rest, uri, DOUBLE_STAR_STOPS);
    }
    if let Some(rest) = pattern.strip_prefix('*') {
        return match_run(rest, uri, STAR_STOPS);
    }
    match (pattern.chars().next(), uri.chars().next()) {
        (None, None) => true,
        (Some(p), Some(u)) if p == u => match_from(&pattern[p.len_utf8()..], &uri[u.len_utf8()..]),
        _ => false,
    }
}

/// A wildcard consumed some prefix of `uri` without a stop character; the rest of the
/// pattern matches what follows.
fn match_run(rest: &str, uri: &str, stops: &[char]) -> bool {
    let mut taken = 0;
    loop {
        if match_from(rest, &uri[taken..]) {
            return true;
        }
        match uri[taken..].chars().next() {
            Some(c) if !stops.contains(&c) => taken += c.len_utf8(),
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_within_one_component() {
        let p = "https://*.example.com/*";
        assert!(matches(p, "https://app.example.com/cb"));
        assert!(!matches(p, "https://evil.com/.example.com/x"));
        assert!(!matches(p, "https://evil.com@x.example.com/cb"));
        assert!(!matches(p, "https://evil.com\\.example.com/cb"));
        assert!(!matches(p, "https://app.example.com/a/b"));
        assert!(!matches(p, "https://app.example.com/cb?x=1"));
        assert!(!matches(p, "https://app.example.com/cb#f"));
        assert!(!matches(p, "https://app.example.com.evil.com/cb"));
    }

    #[test]
    fn double_star_crosses_path_segments_only() {
        let p = "http://localhost:*/**";
        assert!(matches(p, "http://localhost:3000/oauth/callback"));
        assert!(matches(p, "http://localhost:1/"));
        assert!(!matches(p, "http://localhost:3000/cb?code=x"));
        assert!(!matches(p, "http://localhost.evil.com:80/cb"));
        assert!(!matches(p, "http://localhost:80@evil.com/cb"));
        assert!(matches(
            "cursor://*/**",
            "cursor://anysphere.cursor-retrieval/oauth/user-1/callback"
        ));
        assert!(!matches("cursor://*/**", "vscode://x/cb"));
        assert!(check("https://**.example.com/cb").is_err());
        assert!(check("**").is_err());
        assert!(!matches(
            "https://**.example.com/cb",
            "https://a.example.com/cb"
        ));
        assert!(check("https://a.example.com/***").is_err());
    }

    #[test]
    fn literals_match_exactly() {
        let p = "https://claude.ai/api/mcp/auth_callback";
        assert!(matches(p, p));
        assert!(!matches(p, "https://claude.ai/api/mcp/auth_callback/"));
        assert!(!matches(p, "https://claude.ai/api/mcp/auth_callbac"));
    }
}

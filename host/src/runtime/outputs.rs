//! What a provider component returns is untrusted, like its code: every output is
//! checked at the boundary before the host uses it. An authorization URL must lead to
//! one of the instance's allowed hosts; claims and tokens have bounded sizes and valid
//! characters before they reach the store, headers or tokens.

use super::bindings::{Claims, TokenSet};
use super::sandbox::AllowList;
use url::Url;

/// Browsers take URLs of 8 KiB everywhere; authorization URLs are far shorter.
const MAX_URL: usize = 8 * 1024;
/// Upstream tokens: JWTs of large IdPs run to a few KiB; ID tokens with many groups
/// to more.
const MAX_TOKEN: usize = 16 * 1024;
const MAX_ID_TOKEN: usize = 32 * 1024;
/// Subjects, emails, names: they end up in headers, which proxies cap at 8 KiB in all.
const MAX_SHORT: usize = 256;
const MAX_SCOPE: usize = 4 * 1024;
/// Groups and roles: enterprise users are in hundreds, not thousands.
const MAX_LIST: usize = 256;
/// The provider's extra claims, kept with the grant and shown to policies.
const MAX_EXTRA_ENTRIES: usize = 64;
const MAX_EXTRA_VALUE: usize = 8 * 1024;
const MAX_EXTRA_JSON: usize = 16 * 1024;

/// The URL the browser is sent to: on an allowed host (https, or an allowed loopback
/// http origin), of bounded length, without control characters.
pub fn authorize_url(url: &str, allowed: &AllowList) -> Result<(), String> {
    text("the authorization URL", url, MAX_URL)?;
    let parsed = Url::parse(url).map_err(|e| format!("the authorization URL is invalid: {e}"))?;
    allowed
        .check(&parsed)
        .map_err(|why| format!("the authorization URL leads elsewhere: {why}"))
}

pub fn token_set(tokens: &TokenSet) -> Result<(), String> {
    if tokens.access_token.is_empty() {
        return Err("the token set has no access token".into());
    }
    token("the access token", &tokens.access_token, MAX_TOKEN)?;
    text("the token type", &tokens.token_type, MAX_SHORT)?;
    if let Some(refresh) = &tokens.refresh_token {
        token("the refresh token", refresh, MAX_TOKEN)?;
    }
    if let Some(id_token) = &tokens.id_token {
        token("the ID token", id_token, MAX_ID_TOKEN)?;
    }
    if let Some(scope) = &tokens.scope {
        text("the scope", scope, MAX_SCOPE)?;
    }
    if tokens.extra.len() > MAX_EXTRA_ENTRIES {
        return Err(format!(
            "the token set has more than {MAX_EXTRA_ENTRIES} extra values"
        ));
    }
    for (key, value) in &tokens.extra {
        text("an extra token value's name", key, MAX_SHORT)?;
        text(
            &format!("the extra token value `{key}`"),
            value,
            MAX_EXTRA_VALUE,
        )?;
    }
    Ok(())
}

pub fn claims(claims: &Claims) -> Result<(), String> {
    if claims.subject.is_empty() {
        return Err("the claims have an empty subject".into());
    }
    text("the subject", &claims.subject, MAX_SHORT)?;
    for (what, value) in [
        ("the username", &claims.username),
        ("the email", &claims.email),
        ("the name", &claims.name),
    ] {
        if let Some(value) = value {
            text(what, value, MAX_SHORT)?;
        }
    }
    for (what, list) in [("groups", &claims.groups), ("roles", &claims.roles)] {
        if list.len() > MAX_LIST {
            return Err(format!("the claims have more than {MAX_LIST} {what}"));
        }
        for item in list {
            if item.is_empty() {
                return Err(format!("the claims have an empty entry in {what}"));
            }
            text(&format!("an entry of {what}"), item, MAX_SHORT)?;
        }
    }
    if claims.extra_json.len() > MAX_EXTRA_JSON {
        return Err(format!("the extra claims exceed {MAX_EXTRA_JSON} bytes"));
    }
    let extra: serde_json::Value = serde_json::from_str(&claims.extra_json)
        .map_err(|e| format!("the extra claims are not JSON: {e}"))?;
    if !extra.is_object() {
        return Err("the extra claims are not a JSON object".into());
    }
    Ok(())
}

/// Printable text: no control characters (which could split headers or log lines).
fn text(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{what} is longer than {max} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

/// A token: visible ASCII only (RFC 6750's token68 and JWTs are), since it may go into
/// an `Authorization` header.
fn token(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{what} is longer than {max} bytes"));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{what} contains characters a token cannot have"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims_of(subject: &str) -> Claims {
        Claims {
            subject: subject.into(),
            username: None,
            email: None,
            email_verified: false,
            name: Some("Zoë Ærø 山田".into()),
            groups: vec!["エンジニア".into()],
            roles: vec![],
            extra_json: "{}".into(),
        }
    }

    #[test]
    fn authorization_urls_stay_on_allowed_hosts() {
        let allowed =
            AllowList::parse(&["https://id.example.com", "http://127.0.0.1:8080"]).unwrap();
        assert!(authorize_url("https://id.example.com/authorize?x=1", &allowed).is_ok());
        assert!(authorize_url("http://127.0.0.1:8080/auth", &allowed).is_ok());
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://evil.example/authorize",
            "http://id.example.com/authorize",
            "https://id.example.com/a\r\nSet-Cookie: x=1",
            "/relative",
        ] {
            assert!(authorize_url(bad, &allowed).is_err(), "{bad}");
        }
        let long = format!("https://id.example.com/?q={}", "a".repeat(MAX_URL));
        assert!(authorize_url(&long, &allowed).is_err());
    }

    #[test]
    fn claims_are_bounded_and_printable_but_not_ascii_only() {
        assert!(claims(&claims_of("alice")).is_ok());
        assert!(claims(&claims_of("")).is_err());
        assert!(claims(&claims_of("a\nX-Injected: 1")).is_err());
        assert!(claims(&claims_of(&"s".repeat(MAX_SHORT + 1))).is_err());
        let mut many = claims_of("alice");
        many.groups = vec!["g".into(); MAX_LIST + 1];
        assert!(claims(&many).is_err());
        let mut extra = claims_of("alice");
        extra.extra_json = "[1]".into();
        assert!(claims(&extra).is_err());
    }

    #[test]
    fn tokens_are_header_safe() {
        let mut tokens = TokenSet {
            expires_in: Some(60),
            ..TokenSet::bearer("eyJ.abc-_~+/=")
        };
        assert!(token_set(&tokens).is_ok());
        tokens.access_token = "abc def".into();
        assert!(token_set(&tokens).is_err());
        tokens.access_token = String::new();
        assert!(token_set(&tokens).is_err());
    }
}

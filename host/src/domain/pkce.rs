//! PKCE (RFC 7636) as OAuth 2.1 and the MCP authorization spec require it: every
//! authorization request carries an S256 challenge, and only its verifier redeems the
//! code.

use super::oauth_error::OAuthError;
use crate::crypto;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The challenge of an authorization request, if it is one authhost accepts: S256
/// (never `plain`), and shaped like a base64url SHA-256 digest.
pub fn challenge(challenge: Option<&str>, method: Option<&str>) -> Result<String, OAuthError> {
    let challenge = challenge.ok_or_else(|| {
        OAuthError::invalid_request("code_challenge is required (PKCE with S256)")
    })?;
    match method {
        Some("S256") => {}
        Some("plain") | None => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256; plain is not accepted",
            ));
        }
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "unknown code_challenge_method `{other}`"
            )));
        }
    }
    let well_formed = (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(OAuthError::invalid_request(
            "code_challenge is not a base64url S256 challenge",
        ));
    }
    Ok(challenge.to_string())
}

/// Whether `verifier` is the one the S256 `challenge` was made from.
pub fn verifies(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    crypto::same(&computed, challenge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::oauth_error::ErrorCode;

    // RFC 7636, appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn only_the_verifier_of_the_challenge_redeems() {
        assert!(verifies(VERIFIER, CHALLENGE));
        assert!(!verifies(&VERIFIER.replace('d', "e"), CHALLENGE));
        // The challenge itself is not its verifier (a client echoing it back).
        assert!(!verifies(CHALLENGE, CHALLENGE));
        assert!(!verifies("", CHALLENGE));
    }

    #[test]
    fn only_well_formed_s256_challenges_are_accepted() {
        assert_eq!(
            challenge(Some(CHALLENGE), Some("S256")).ok().as_deref(),
            Some(CHALLENGE)
        );
        let refused = |c: Option<&str>, m: Option<&str>| {
            let e = challenge(c, m).expect_err("refused");
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            e.description
        };
        assert!(refused(None, Some("S256")).contains("required"));
        // RFC 7636 defaults to plain when no method is given; OAuth 2.1 does not.
        assert!(refused(Some(CHALLENGE), None).contains("plain is not accepted"));
        assert!(refused(Some(CHALLENGE), Some("plain")).contains("plain is not accepted"));
        assert!(refused(Some(CHALLENGE), Some("s256")).contains("unknown"));
        assert!(refused(Some("short"), Some("S256")).contains("not a base64url"));
        let padded = format!("{}=", &CHALLENGE[..42]);
        assert!(refused(Some(&padded), Some("S256")).contains("not a base64url"));
        assert!(refused(Some(&"a".repeat(129)), Some("S256")).contains("not a base64url"));
    }
}

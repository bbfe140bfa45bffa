//! The user's upstream token set as a grant keeps it (sealed): what the provider
//! returned, with the times authhost needs to tell when to refresh.

use crate::crypto::Sealer;
use crate::runtime::TokenSet;
use serde::{Deserialize, Serialize};

/// Refresh this long before the upstream says the token expires.
const EXPIRY_MARGIN_SECONDS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamTokens {
    pub access_token: String,
    #[serde(default = "bearer")]
    pub token_type: String,
    pub refresh_token: Option<String>,
    /// Unix seconds; none when the upstream did not say.
    pub expires_at: Option<i64>,
    /// When authhost got these (a refresh elsewhere is told apart by it).
    #[serde(default)]
    pub obtained_at: i64,
    pub scope: Option<String>,
    #[serde(default)]
    pub extra: Vec<(String, String)>,
}

fn bearer() -> String {
    "Bearer".into()
}

impl UpstreamTokens {
    /// What a provider returned at `now`. Upstreams that do not rotate send no new
    /// refresh token: the previous one is kept.
    pub fn obtained(tokens: &TokenSet, now: i64, previous_refresh: Option<&str>) -> Self {
        UpstreamTokens {
            access_token: tokens.access_token.clone(),
            token_type: tokens.token_type.clone(),
            refresh_token: tokens
                .refresh_token
                .clone()
                .or_else(|| previous_refresh.map(String::from)),
            expires_at: tokens.expires_in.map(|s| now.saturating_add(s as i64)),
            obtained_at: now,
            scope: tokens.scope.clone(),
            extra: tokens.extra.clone(),
        }
    }

    /// The token set a provider is given back (`user-claims`), as of `now`.
    pub fn to_token_set(&self, now: i64) -> TokenSet {
        TokenSet {
            access_token: self.access_token.clone(),
            token_type: self.token_type.clone(),
            expires_in: self.expires_at.map(|at| (at - now).max(0) as u64),
            refresh_token: self.refresh_token.clone(),
            id_token: None,
            scope: self.scope.clone(),
            extra: self.extra.clone(),
        }
    }

    /// Expired by the upstream's word.
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// About to expire: worth refreshing before use.
    pub fn expiring(&self, now: i64) -> bool {
        self.expires_at
            .is_some_and(|at| at - EXPIRY_MARGIN_SECONDS <= now)
    }

    pub fn seal(&self, sealer: &Sealer) -> String {
        sealer.seal(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// The tokens in `sealed`, unless it cannot be opened or read.
    pub fn open(sealer: &Sealer, sealed: &str) -> Option<Self> {
        serde_json::from_slice(&sealer.open(sealed).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(expires_in: Option<u64>, refresh: Option<&str>) -> TokenSet {
        TokenSet {
            refresh_token: refresh.map(String::from),
            expires_in,
            ..TokenSet::bearer("at")
        }
    }

    #[test]
    fn expiry_counts_from_when_the_tokens_were_obtained() {
        let tokens = UpstreamTokens::obtained(&set(Some(100), None), 1_000, None);
        assert_eq!(tokens.expires_at, Some(1_100));
        assert!(!tokens.expiring(1_069));
        assert!(tokens.expiring(1_070), "refreshed within the margin");
        assert!(!tokens.expired(1_099));
        assert!(tokens.expired(1_100));
        assert_eq!(tokens.to_token_set(1_040).expires_in, Some(60));
        assert_eq!(tokens.to_token_set(2_000).expires_in, Some(0));
    }

    #[test]
    fn tokens_without_an_expiry_never_expire() {
        let tokens = UpstreamTokens::obtained(&set(None, None), 1_000, None);
        assert!(!tokens.expiring(i64::MAX - 1) && !tokens.expired(i64::MAX));
    }

    #[test]
    fn a_refresh_without_rotation_keeps_the_previous_refresh_token() {
        let kept = UpstreamTokens::obtained(&set(None, None), 1, Some("r1"));
        assert_eq!(kept.refresh_token.as_deref(), Some("r1"));
        let rotated = UpstreamTokens::obtained(&set(None, Some("r2")), 1, Some("r1"));
        assert_eq!(rotated.refresh_token.as_deref(), Some("r2"));
    }

    #[test]
    fn the_stored_form_of_earlier_versions_still_reads() {
        // Written by authhost 0.1 (an untyped JSON object, `null`s included).
        let stored = r#"{"access_token":"at","token_type":"Bearer","refresh_token":null,
            "expires_at":null,"obtained_at":5,"scope":null,"extra":[["instance_url","x"]]}"#;
        let tokens: UpstreamTokens = serde_json::from_str(stored).unwrap();
        assert_eq!(tokens.obtained_at, 5);
        assert_eq!(tokens.extra, vec![("instance_url".into(), "x".into())]);
    }
}

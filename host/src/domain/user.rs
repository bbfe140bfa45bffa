//! The signed-in user, in the one shape grants store, tokens carry and policies read.

use crate::runtime::Claims;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub sub: String,
    pub preferred_username: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    pub name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// The provider's extras (a JSON object).
    #[serde(default)]
    pub extra: Value,
}

/// No one yet: a subject to fill in, no claims, extras an empty object (the shape
/// policies read), as every user has.
impl Default for User {
    fn default() -> Self {
        User {
            sub: String::new(),
            preferred_username: None,
            email: None,
            email_verified: false,
            name: None,
            groups: Vec::new(),
            roles: Vec::new(),
            extra: Value::Object(Default::default()),
        }
    }
}

impl User {
    /// The user a provider's `user-claims` described; extras that are not a JSON
    /// object become an empty one.
    pub fn from_claims(claims: &Claims) -> User {
        User {
            sub: claims.subject.clone(),
            preferred_username: claims.username.clone(),
            email: claims.email.clone(),
            email_verified: claims.email_verified,
            name: claims.name.clone(),
            groups: claims.groups.clone(),
            roles: claims.roles.clone(),
            extra: serde_json::from_str::<Value>(&claims.extra_json)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| Value::Object(Default::default())),
        }
    }

    /// The user as a grant stored it (JSON); a grant whose claims cannot be read still
    /// names its subject.
    pub fn from_stored(json: &str, subject: &str) -> User {
        serde_json::from_str(json).unwrap_or_else(|_| User {
            sub: subject.to_string(),
            ..User::default()
        })
    }

    /// The form a grant stores.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(extra_json: &str) -> Claims {
        Claims {
            subject: "u1".into(),
            username: Some("alice".into()),
            email: None,
            email_verified: false,
            name: None,
            groups: vec!["eng".into()],
            roles: vec![],
            extra_json: extra_json.into(),
        }
    }

    #[test]
    fn extras_that_are_not_an_object_become_an_empty_one() {
        assert_eq!(
            User::from_claims(&claims("[1]")).extra,
            serde_json::json!({})
        );
        assert_eq!(
            User::from_claims(&claims("nonsense")).extra,
            serde_json::json!({})
        );
        let user = User::from_claims(&claims(r#"{"team":"a"}"#));
        assert_eq!(user.extra["team"], "a");
    }

    #[test]
    fn a_stored_user_reads_back_and_unreadable_claims_keep_the_subject() {
        let user = User::from_claims(&claims("{}"));
        assert_eq!(User::from_stored(&user.to_stored(), "u1"), user);
        assert_eq!(User::from_stored("{", "u9").sub, "u9");
    }
}

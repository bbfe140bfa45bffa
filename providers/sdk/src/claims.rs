//! The user as a provider maps it: the WIT `claims` record, with its extras as a JSON
//! value instead of a string each provider would serialise (and re-parse) itself.

use serde_json::Value;

/// The user, mapped to one shape policies can use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Claims {
    /// Stable, unique id of the user at this upstream.
    pub subject: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    /// Provider-specific extras, a JSON object (e.g. `{"cloud_ids": [...]}`); `Null`
    /// means none.
    pub extra: Value,
}

impl Claims {
    /// Claims with only the subject set.
    pub fn new(subject: impl Into<String>) -> Self {
        Claims {
            subject: subject.into(),
            ..Claims::default()
        }
    }
}

impl From<Claims> for crate::bindings::authhost::provider::types::Claims {
    fn from(claims: Claims) -> Self {
        let extra_json = match claims.extra {
            Value::Null => "{}".to_string(),
            extra => extra.to_string(),
        };
        Self {
            subject: claims.subject,
            username: claims.username,
            email: claims.email,
            email_verified: claims.email_verified,
            name: claims.name,
            groups: claims.groups,
            roles: claims.roles,
            extra_json,
        }
    }
}

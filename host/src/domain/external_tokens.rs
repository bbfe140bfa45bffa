//! Access tokens of an external authorization server (`auth = "external"`): JWTs
//! (RFC 9068) checked against the issuer's published keys, for this resource, then
//! read as the user they name. Okta's and Entra ID's spellings of scopes (`scp`) and
//! clients (`cid`, `azp`) are understood.

use super::client_assertion::ALGORITHMS;
use super::jwks::{self, RemoteKeys};
use super::user::User;
use crate::config::ExternalAuthConfig;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::str::FromStr;
use url::Url;

/// Clock difference tolerated between the issuer and authhost.
const LEEWAY_SECONDS: u64 = 60;

pub struct ExternalIssuer {
    pub issuer: String,
    keys: RemoteKeys,
    algorithms: Vec<Algorithm>,
    /// The resource itself and any configured extra audiences.
    audiences: Vec<String>,
}

/// What a verified token says.
#[derive(Debug)]
pub struct ExternalToken {
    pub user: User,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub exp: i64,
}

impl std::fmt::Debug for ExternalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalIssuer")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl ExternalIssuer {
    /// The issuer for the resource at `resource_url`; problems named under `key`.
    pub fn new(
        config: &ExternalAuthConfig,
        resource_url: &str,
        key: &dyn Fn(&str) -> String,
    ) -> Result<ExternalIssuer, Vec<String>> {
        let mut problems = Vec::new();
        let https_or_lab = |url: &Url| {
            url.scheme() == "https" || (url.scheme() == "http" && config.allow_private_hosts)
        };
        match Url::parse(&config.issuer) {
            Ok(url) if https_or_lab(&url) => {}
            _ => problems.push(format!("{}: must be an https URL", key("issuer"))),
        }
        let jwks_url = match Url::parse(&config.jwks_url) {
            Ok(url) if https_or_lab(&url) => Some(url),
            _ => {
                problems.push(format!("{}: must be an https URL", key("jwks_url")));
                None
            }
        };
        let mut algorithms = Vec::new();
        for name in &config.algorithms {
            match Algorithm::from_str(name) {
                Ok(alg) if ALGORITHMS.contains(&alg) => algorithms.push(alg),
                _ => problems.push(format!(
                    "{}: `{name}` is not a public-key signing algorithm",
                    key("algorithms")
                )),
            }
        }
        match jwks_url {
            Some(url) if problems.is_empty() => Ok(ExternalIssuer {
                issuer: config.issuer.clone(),
                keys: RemoteKeys::new(url, config.allow_private_hosts),
                algorithms,
                audiences: std::iter::once(resource_url.to_string())
                    .chain(config.audiences.iter().cloned())
                    .collect(),
            }),
            _ => Err(problems),
        }
    }

    /// Verify `token` as an access token of this issuer for this resource.
    pub async fn verify(&self, token: &str) -> Result<ExternalToken, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "not a JWT access token".to_string())?;
        // RFC 9068's type, or the plain ones IdPs use; never an ID token's or another
        // profile's.
        let typ = header.typ.as_deref().unwrap_or("JWT").to_ascii_lowercase();
        if !matches!(typ.as_str(), "at+jwt" | "application/at+jwt" | "jwt") {
            return Err(format!("a token of type `{typ}` is not an access token"));
        }
        if !self.algorithms.contains(&header.alg) {
            return Err(format!("{:?} is not an accepted algorithm", header.alg));
        }
        let keys = self.keys.for_kid(header.kid.as_deref()).await?;
        let jwk = jwks::find(&keys, header.kid.as_deref())
            .ok_or("signed by a key the issuer does not publish")?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| "the issuer's key is unusable")?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired".to_string(),
                    ErrorKind::InvalidAudience => "token is for another resource".to_string(),
                    ErrorKind::InvalidIssuer => "token from another issuer".to_string(),
                    ErrorKind::InvalidSignature => "bad signature".to_string(),
                    _ => format!("token not accepted ({e})"),
                }
            })?
            .claims;
        Ok(read(&claims))
    }
}

/// The user, client and scopes a verified token names.
fn read(claims: &Map<String, Value>) -> ExternalToken {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(String::from);
    let list = |name: &str| -> Vec<String> {
        match claims.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(String::from).collect(),
            _ => vec![],
        }
    };
    let mut scopes = list("scope");
    scopes.extend(list("scp"));
    ExternalToken {
        user: User {
            sub: text("sub").unwrap_or_default(),
            email: text("email"),
            name: text("name"),
            preferred_username: text("preferred_username").or_else(|| text("upn")),
            groups: list("groups"),
            roles: list("roles"),
            extra: Value::Object(Map::new()),
            ..User::default()
        },
        client_id: text("client_id")
            .or_else(|| text("azp"))
            .or_else(|| text("cid")),
        scopes,
        exp: claims
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn okta_entra_and_rfc_9068_spellings_are_read_alike() {
        let rfc = read(
            json!({"sub": "u1", "scope": "mcp read", "client_id": "c1", "groups": ["eng"]})
                .as_object()
                .unwrap(),
        );
        assert_eq!(rfc.scopes, ["mcp", "read"]);
        assert_eq!(rfc.client_id.as_deref(), Some("c1"));
        assert_eq!(rfc.user.groups, ["eng"]);
        let okta = read(
            json!({"sub": "u2", "scp": ["mcp"], "cid": "c2"})
                .as_object()
                .unwrap(),
        );
        assert_eq!(okta.scopes, ["mcp"]);
        assert_eq!(okta.client_id.as_deref(), Some("c2"));
        let entra = read(
            json!({"sub": "u3", "scp": "mcp", "azp": "c3", "upn": "u3@corp", "roles": ["Admin"]})
                .as_object()
                .unwrap(),
        );
        assert_eq!(entra.scopes, ["mcp"]);
        assert_eq!(entra.user.preferred_username.as_deref(), Some("u3@corp"));
        assert_eq!(entra.user.roles, ["Admin"]);
    }
}

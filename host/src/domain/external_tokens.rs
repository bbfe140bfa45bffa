//! Access tokens of an external authorization server (`auth = "external"`): JWTs
//! (RFC 9068) checked against the issuer's published keys, or opaque tokens asked
//! about at its introspection endpoint (RFC 7662), for this resource; then read as
//! the user they name. Okta's and Entra ID's spellings of scopes (`scp`) and clients
//! (`cid`, `azp`) are understood.

use super::cache::ExpiringCache;
use super::guarded_fetch::{self, FetchError};
use super::jwks::{self, RemoteKeys};
use super::user::User;
use crate::config::ExternalAuthConfig;
use crate::secret::{Secret, SecretKeys};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Clock difference tolerated between the issuer and authhost.
const LEEWAY_SECONDS: u64 = 60;

pub struct ExternalIssuer {
    pub issuer: String,
    keys: RemoteKeys,
    algorithms: Vec<Algorithm>,
    /// The resource itself and any configured extra audiences.
    audiences: Vec<String>,
    introspection: Option<Introspection>,
}

/// Where and as whom opaque tokens are introspected, and what it said, by token hash.
struct Introspection {
    url: Url,
    client_id: String,
    client_secret: Secret,
    allow_private: bool,
    answers: ExpiringCache<Arc<ExternalToken>>,
}

/// How long an introspection's "active" is trusted without asking again (never past
/// the token's expiry): revocation at the issuer shows within this.
const INTROSPECTION_CACHE_SECONDS: i64 = 30;
const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_INTROSPECTION_BYTES: usize = 64 * 1024;

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
        let allow_private = config.allow_private_hosts;
        if let Err(why) = jwks::fetchable_url(&config.issuer, allow_private) {
            problems.push(format!("{}: {why}", key("issuer")));
        }
        let jwks_url = jwks::fetchable_url(&config.jwks_url, allow_private)
            .map_err(|why| problems.push(format!("{}: {why}", key("jwks_url"))))
            .ok();
        let algorithms = jwks::algorithms(&config.algorithms, &key("algorithms"), &mut problems);
        let introspection = match &config.introspection_url {
            None => None,
            Some(url) => {
                let url = jwks::fetchable_url(url, allow_private)
                    .map_err(|why| problems.push(format!("{}: {why}", key("introspection_url"))))
                    .ok();
                let secret = SecretKeys {
                    key: "client_secret",
                    inline: config.client_secret.as_deref(),
                    env: config.client_secret_env.as_deref(),
                    file: config.client_secret_file.as_deref(),
                }
                .load()
                .map_err(|e| problems.push(format!("{}: {e}", key("client_secret"))))
                .ok()
                .flatten();
                if url.is_none() {
                    problems.push(format!(
                        "{}: must be an https URL",
                        key("introspection_url")
                    ));
                }
                if secret.is_none() || config.client_id.is_none() {
                    problems.push(format!(
                        "{}: introspection needs client_id and a client secret",
                        key("introspection_url")
                    ));
                }
                match (url, config.client_id.clone(), secret) {
                    (Some(url), Some(client_id), Some(client_secret)) => Some(Introspection {
                        url,
                        client_id,
                        client_secret,
                        allow_private: config.allow_private_hosts,
                        answers: ExpiringCache::default(),
                    }),
                    _ => None,
                }
            }
        };
        match jwks_url {
            Some(url) if problems.is_empty() => Ok(ExternalIssuer {
                introspection,
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

    /// Verify `token` as an access token of this issuer for this resource, at `now`.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Arc<ExternalToken>, String> {
        match (jsonwebtoken::decode_header(token), &self.introspection) {
            (Ok(header), _) => self.verify_jwt(token, header).await.map(Arc::new),
            (Err(_), Some(introspection)) => self.introspect(introspection, token, now).await,
            (Err(_), None) => Err("not a JWT access token".into()),
        }
    }

    /// An opaque token, as the issuer describes it (RFC 7662): active, its own, for
    /// this resource.
    async fn introspect(
        &self,
        introspection: &Introspection,
        token: &str,
        now: i64,
    ) -> Result<Arc<ExternalToken>, String> {
        let cache_key = crate::crypto::hash_token(token);
        if let Some(known) = introspection.answers.get(&cache_key) {
            return Ok(known);
        }
        let post = guarded_fetch::FormPost {
            form: &[("token", token), ("token_type_hint", "access_token")],
            basic: (
                &introspection.client_id,
                introspection.client_secret.expose(),
            ),
        };
        let answer = tokio::time::timeout(
            INTROSPECTION_TIMEOUT,
            guarded_fetch::post_form(
                &introspection.url,
                introspection.allow_private,
                MAX_INTROSPECTION_BYTES,
                post,
            ),
        )
        .await
        .map_err(|_| "the introspection endpoint did not answer in time".to_string())?
        .map_err(|e| match e {
            FetchError::Refused(why) | FetchError::Unreachable(why) => {
                format!("introspection failed: {why}")
            }
        })?;
        let claims: Map<String, Value> = serde_json::from_slice(&answer.body)
            .map_err(|_| "the introspection answer is not JSON".to_string())?;
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err("token not active".into());
        }
        if claims
            .get("iss")
            .and_then(Value::as_str)
            .is_some_and(|iss| iss != self.issuer)
        {
            return Err("token from another issuer".into());
        }
        if claims.get("token_type").and_then(Value::as_str) == Some("refresh_token") {
            return Err("a refresh token is not an access token".into());
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(one)) => vec![one],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !audiences
            .iter()
            .any(|a| self.audiences.iter().any(|ours| ours == a))
        {
            return Err("token is for another resource".into());
        }
        let token = Arc::new(read(&claims));
        if token.exp != 0 && token.exp <= now {
            return Err("token expired".into());
        }
        let lasts = match token.exp {
            0 => INTROSPECTION_CACHE_SECONDS,
            exp => (exp - now).min(INTROSPECTION_CACHE_SECONDS),
        };
        introspection.answers.put(
            cache_key,
            token.clone(),
            Duration::from_secs(lasts.max(0) as u64),
        );
        Ok(token)
    }

    async fn verify_jwt(
        &self,
        token: &str,
        header: jsonwebtoken::Header,
    ) -> Result<ExternalToken, String> {
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

//! Identity Assertion Authorization Grants (ID-JAG; the MCP Enterprise-Managed
//! Authorization extension, draft-ietf-oauth-identity-assertion-authz-grant): an
//! enterprise identity provider the operator trusts vouches, in a signed JWT, that
//! its user may use an MCP client at an MCP server; the client redeems it at `/token`
//! with the RFC 7523 jwt-bearer grant. Verified here: type, signature by the issuer's
//! current keys, audience, client, lifetime; the caller checks resource, scopes and
//! single use.

use super::jwks::{self, RemoteKeys};
use super::user::User;
use crate::config::{EnterpriseConfig, TrustedIssuerConfig};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// The grant type of RFC 7523 that carries an ID-JAG.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The JWT `typ` of an ID-JAG: nothing else the issuer signs (ID tokens, access
/// tokens) is taken for one.
const TYP: &str = "oauth-id-jag+jwt";
/// Clock difference tolerated between the issuer and authhost.
const LEEWAY_SECONDS: i64 = 60;
/// ID-JAGs are meant to be redeemed at once; one valid for longer is refused, which
/// also bounds how long a used `jti` is remembered.
const MAX_LIFETIME_SECONDS: i64 = 600;

/// A verified ID-JAG: who the user is and what it asks for.
#[derive(Debug)]
pub struct IdJag {
    pub issuer: String,
    pub user: User,
    /// The `resource` claim, if any.
    pub resource: Option<String>,
    /// The `scope` claim, if any.
    pub scope: Option<String>,
    pub jti: String,
    pub exp: i64,
}

pub struct TrustedIssuers {
    issuers: Vec<Trusted>,
}

struct Trusted {
    config: TrustedIssuerConfig,
    algorithms: Vec<Algorithm>,
    keys: RemoteKeys,
}

impl TrustedIssuers {
    /// The configured issuers, or every problem with them under its key.
    pub fn new(config: &EnterpriseConfig) -> Result<TrustedIssuers, Vec<String>> {
        let mut problems = Vec::new();
        let mut issuers = Vec::new();
        for (i, issuer) in config.issuers.iter().enumerate() {
            let key = |name: &str| format!("enterprise.issuers[{i}].{name}");
            if issuer.issuer.trim().is_empty() {
                problems.push(format!("{}: must not be empty", key("issuer")));
            }
            if config.issuers[..i]
                .iter()
                .any(|o| o.issuer == issuer.issuer)
            {
                problems.push(format!(
                    "{}: `{}` is listed twice",
                    key("issuer"),
                    issuer.issuer
                ));
            }
            let jwks_url = jwks::fetchable_url(&issuer.jwks_url, config.allow_private_hosts)
                .map_err(|why| problems.push(format!("{}: {why}", key("jwks_url"))))
                .ok();
            let algorithms =
                jwks::algorithms(&issuer.algorithms, &key("algorithms"), &mut problems);
            if issuer.algorithms.is_empty() {
                problems.push(format!("{}: name at least one", key("algorithms")));
            }
            if let Some(jwks_url) = jwks_url {
                issuers.push(Trusted {
                    config: issuer.clone(),
                    algorithms,
                    keys: RemoteKeys::new(jwks_url, config.allow_private_hosts),
                });
            }
        }
        if problems.is_empty() {
            Ok(TrustedIssuers { issuers })
        } else {
            Err(problems)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Verify an ID-JAG presented by `client_id` to authhost (`audience`, its issuer).
    pub async fn verify(
        &self,
        id_jag: &str,
        audience: &str,
        client_id: &str,
        now: i64,
    ) -> Result<IdJag, String> {
        let header = jsonwebtoken::decode_header(id_jag)
            .map_err(|_| "the assertion is not a signed JWT".to_string())?;
        let typ = header
            .typ
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if typ != TYP && typ != format!("application/{TYP}") {
            return Err(format!(
                "the assertion is not an ID-JAG (typ must be {TYP})"
            ));
        }
        let claimed_issuer =
            jwks::unverified_claim(id_jag, "iss").ok_or("the assertion names no issuer")?;
        let trusted = self
            .issuers
            .iter()
            .find(|t| t.config.issuer == claimed_issuer)
            .ok_or_else(|| format!("`{claimed_issuer}` is not a trusted issuer"))?;
        if !trusted.algorithms.contains(&header.alg) {
            return Err(format!(
                "{:?} is not an algorithm accepted from this issuer",
                header.alg
            ));
        }
        let keys = trusted.keys.for_kid(header.kid.as_deref()).await?;
        let jwk = jwks::find(&keys, header.kid.as_deref())
            .ok_or("the assertion is signed by a key the issuer does not publish")?;
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|_| "a key the issuer publishes cannot verify signatures")?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[&trusted.config.issuer]);
        // Expiry is judged against the caller's clock, below.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(id_jag, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidAudience => {
                        format!("the assertion's audience must be {audience}")
                    }
                    ErrorKind::InvalidSignature => {
                        "the assertion's signature does not verify".to_string()
                    }
                    _ => format!("the assertion is not acceptable ({e})"),
                }
            })?
            .claims;
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(String::from);
        let exp = number("exp").ok_or("the assertion has no expiry")?;
        if exp + LEEWAY_SECONDS < now {
            return Err("the assertion has expired".into());
        }
        if exp - now > MAX_LIFETIME_SECONDS {
            return Err(format!(
                "the assertion is valid for too long (at most {MAX_LIFETIME_SECONDS} s)"
            ));
        }
        if number("iat").is_some_and(|iat| iat > now + LEEWAY_SECONDS) {
            return Err("the assertion was issued in the future".into());
        }
        if text("client_id").as_deref() != Some(client_id) {
            return Err("the assertion was issued for another client".into());
        }
        let jti = text("jti")
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or("the assertion needs a jti (at most 256 characters)")?;
        let names = &trusted.config.claims;
        let sub = text(&names.subject)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("the assertion has no `{}`", names.subject))?;
        let groups = match claims.get(&names.groups) {
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => vec![],
        };
        let user = User {
            sub,
            email: text(&names.email),
            name: text(&names.name),
            preferred_username: text(&names.username),
            groups,
            ..User::default()
        };
        Ok(IdJag {
            issuer: trusted.config.issuer.clone(),
            user,
            resource: text("resource"),
            scope: text("scope"),
            jti,
            exp,
        })
    }
}

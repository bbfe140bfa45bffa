//! Access tokens: ES256 JWTs signed with keys kept (encrypted) in the store, so every
//! instance signs and verifies alike and a restart keeps them. Every instance re-reads
//! the keys every `tokens.key_refresh_seconds`: the newest active key signs; keys not
//! retired verify and stay in the JWKS.

use super::user::User;
use crate::crypto::Sealer;
use crate::store::{SigningKeyRecord, Store};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// The JWT type of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The JWT type of identity tokens sent to MCP servers.
pub const IDENTITY_TOKEN_TYPE: &str = "authhost-identity+jwt";

/// The party acting for a token's subject (RFC 8693 4.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// The client id of the MCP server that exchanged the user's token.
    pub sub: String,
}

/// The claims of an authhost access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    /// The protected resource (MCP endpoint URL) this token is for (RFC 8707).
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    /// The grant this token came from; revoking it ends the token. `None` for a
    /// machine client's token (client_credentials), which no user signed in for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// The provider instance the user signed in with, or the enterprise issuer that
    /// vouched for the user (`None` for a machine client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// How a token without a grant came to be: `client_credentials` or `id_jag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// Who acts for the subject (RFC 8693 4.1): the MCP server that exchanged the
    /// user's token for this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

struct Keys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    jwks: Value,
    /// The store's key rows as last read (id, active, retired): a change means reload.
    fingerprint: String,
}

/// What a token is for and who it names: the claims every access token has.
pub struct TokenFor<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl AccessClaims {
    /// An access token naming `user`; how it came to be (grant, provider, `auth`,
    /// actor) the caller adds.
    pub fn naming(user: User, token: TokenFor<'_>) -> AccessClaims {
        AccessClaims {
            iss: token.issuer.to_string(),
            sub: user.sub,
            aud: token.audience.to_string(),
            exp: token.expires_at,
            iat: token.issued_at,
            jti: crate::crypto::random_token(),
            client_id: token.client_id.to_string(),
            scope: token.scope.to_string(),
            gid: None,
            idp: None,
            auth: None,
            act: None,
            email: user.email,
            name: user.name,
            preferred_username: user.preferred_username,
            groups: user.groups,
            roles: user.roles,
        }
    }
}

pub struct Signer {
    issuer: String,
    keys: RwLock<Keys>,
    /// When the keys were last read on demand (an unknown key id), so a flood of
    /// tokens naming made-up keys costs at most one read per interval.
    last_demand_read: Mutex<Option<Instant>>,
    /// How many on-demand reads happened (a metric of floods of made-up key ids).
    demand_reads: AtomicU64,
}

/// At most one on-demand key read per this interval.
const DEMAND_READ_INTERVAL: Duration = Duration::from_secs(1);

impl Signer {
    /// Load the keys from the store, creating the first one (at `now`) if there is none.
    pub async fn load(
        store: &Store,
        sealer: &Sealer,
        issuer: &str,
        now: i64,
    ) -> anyhow::Result<Signer> {
        if store.signing_keys().await?.is_empty() {
            rotate(store, sealer, now).await?;
        }
        let records = store.signing_keys().await?;
        Ok(Signer {
            issuer: issuer.to_string(),
            keys: RwLock::new(keys_from(&records, sealer)?),
            last_demand_read: Mutex::new(None),
            demand_reads: AtomicU64::new(0),
        })
    }

    /// Re-read the keys (a rotation or retirement by any instance or the operator's
    /// command). True when they changed.
    pub async fn refresh(&self, store: &Store, sealer: &Sealer) -> anyhow::Result<bool> {
        let records = store.signing_keys().await?;
        if fingerprint(&records) == self.read().fingerprint {
            return Ok(false);
        }
        let keys = keys_from(&records, sealer)?;
        tracing::info!(
            signing = keys.signing_kid,
            verifying = keys.verifying.len(),
            "signing keys changed"
        );
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(true)
    }

    /// [`Signer::refresh`] for a token naming a key this instance does not know (it may
    /// have just been made elsewhere), at most once per interval.
    pub async fn refresh_on_demand(&self, store: &Store, sealer: &Sealer) {
        {
            let mut last = self
                .last_demand_read
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < DEMAND_READ_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.demand_reads.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.refresh(store, sealer).await {
            tracing::error!("reading signing keys: {e:#}");
        }
    }

    /// On-demand key reads so far.
    pub fn demand_reads(&self) -> u64 {
        self.demand_reads.load(Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key that signs now.
    pub fn signing_kid(&self) -> String {
        self.read().signing_kid.clone()
    }

    pub fn sign(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        self.sign_as(ACCESS_TOKEN_TYPE, claims)
    }

    /// Sign any claims with the active key, under the JWT type `typ`.
    pub fn sign_as<T: Serialize>(&self, typ: &str, claims: &T) -> anyhow::Result<String> {
        let keys = self.read();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.signing_kid.clone());
        header.typ = Some(typ.into());
        Ok(jsonwebtoken::encode(&header, claims, &keys.signing)?)
    }

    /// Check signature, issuer, expiry and (when given) audience; return the claims
    /// and the id of the key that signed them.
    pub fn verify(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<(AccessClaims, String), String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "malformed token".to_string())?;
        // An identity token (or anything else we sign) is never an access token.
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err("not an access token".into());
        }
        let kid = header.kid.ok_or("token without a key id")?;
        let keys = self.read();
        let key = keys
            .verifying
            .get(&kid)
            .ok_or("token signed by an unknown or retired key")?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map(|data| (data.claims, kid.clone()))
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired".to_string(),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    format!(
                        "token is not for this resource ({})",
                        audience.unwrap_or("")
                    )
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    "token from another issuer".to_string()
                }
                _ => "invalid token".to_string(),
            })
    }

    /// Whether tokens signed by `kid` still verify (it is known and not retired).
    pub fn verifies_with(&self, kid: &str) -> bool {
        self.read().verifying.contains_key(kid)
    }

    /// Whether a token names a key this instance does not know (a rotation elsewhere
    /// may need a refresh).
    pub fn names_unknown_key(&self, token: &str) -> bool {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return false;
        };
        header.kid.is_some_and(|kid| !self.verifies_with(&kid))
    }

    pub fn jwks(&self) -> Value {
        self.read().jwks.clone()
    }
}

/// Create a new signing key (at `now`) and make it the active one. Returns its key id.
pub async fn rotate(store: &Store, sealer: &Sealer, now: i64) -> anyhow::Result<String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("key generation failed"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| anyhow::anyhow!("generated key unusable"))?;
    // Uncompressed point: 0x04 || x || y.
    let point = pair.public_key().as_ref();
    let (x, y) = (&point[1..33], &point[33..65]);
    let kid = crate::crypto::hash_token(&URL_SAFE_NO_PAD.encode(point))[..16].to_string();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
    });
    store
        .add_signing_key(&SigningKeyRecord {
            kid: kid.clone(),
            private_key: sealer.seal(pkcs8.as_ref()),
            public_jwk: jwk.to_string(),
            created_at: now,
            active: 1,
            deactivated_at: None,
            retired_at: None,
        })
        .await?;
    Ok(kid)
}

fn fingerprint(records: &[SigningKeyRecord]) -> String {
    records
        .iter()
        .map(|r| format!("{}:{}:{}", r.kid, r.active, r.retired_at.is_some()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The active key signs; every key not retired verifies and is published.
fn keys_from(records: &[SigningKeyRecord], sealer: &Sealer) -> anyhow::Result<Keys> {
    let live: Vec<&SigningKeyRecord> = records.iter().filter(|k| k.retired_at.is_none()).collect();
    let active = live
        .iter()
        .find(|k| k.active == 1)
        .or(live.first())
        .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
    let pkcs8 = sealer
        .open(&active.private_key)
        .map_err(|e| anyhow::anyhow!("signing key {}: {e}", active.kid))?;
    let mut verifying = HashMap::new();
    let mut jwks = Vec::new();
    for record in &live {
        let jwk: Value = serde_json::from_str(&record.public_jwk)?;
        let (x, y) = (
            jwk["x"].as_str().unwrap_or(""),
            jwk["y"].as_str().unwrap_or(""),
        );
        verifying.insert(record.kid.clone(), DecodingKey::from_ec_components(x, y)?);
        jwks.push(jwk);
    }
    Ok(Keys {
        signing_kid: active.kid.clone(),
        signing: EncodingKey::from_ec_der(&pkcs8),
        verifying,
        jwks: json!({ "keys": jwks }),
        fingerprint: fingerprint(records),
    })
}

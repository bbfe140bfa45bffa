//! private_key_jwt (RFC 7523 2.2 and 3): a client proves who it is with a short-lived
//! JWT signed by one of the keys it registered. Only asymmetric algorithms; the
//! assertion names the client as issuer and subject and authhost as its audience.

use super::jwks::{self, ALGORITHMS};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;

/// `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Clock difference tolerated between the client and authhost.
const LEEWAY_SECONDS: i64 = 30;
/// Assertions live minutes (the MCP SDK's default is 5); one valid for longer is
/// refused, which also bounds how long a used `jti` must be remembered.
const MAX_LIFETIME_SECONDS: i64 = 600;

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: String,
}

/// An assertion whose signature and claims checked out: its `jti` must now be
/// recorded as used, until `exp`.
#[derive(Debug, PartialEq)]
pub struct VerifiedAssertion {
    pub jti: String,
    pub exp: i64,
}

/// The client an assertion claims to be (its `sub`), read before anything is checked:
/// only to find the keys to check it with.
pub fn claimed_client(assertion: &str) -> Option<String> {
    jwks::unverified_claim(assertion, "sub")
}

/// Check `assertion` for `client_id` against its registered keys. `audiences` are the
/// identifiers authhost answers to (its issuer, its token endpoint).
pub fn verify(
    jwks: &JwkSet,
    client_id: &str,
    assertion: &str,
    audiences: &[&str],
    now: i64,
) -> Result<VerifiedAssertion, String> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| "the client assertion is not a signed JWT".to_string())?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(format!(
            "the client assertion is signed with {:?}; use a public-key algorithm",
            header.alg
        ));
    }
    let jwk = jwks::find(jwks, header.kid.as_deref())
        .ok_or("the client assertion names no key registered for this client")?;
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| "a key registered for this client cannot verify signatures")?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(audiences);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_string());
    // Expiry is judged against the caller's clock, below.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidAudience => format!(
                    "the client assertion's audience must be {}",
                    audiences.first().copied().unwrap_or_default()
                ),
                ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
                    "the client assertion's iss and sub must be the client id".to_string()
                }
                ErrorKind::InvalidSignature => {
                    "the client assertion's signature does not verify".to_string()
                }
                _ => format!("the client assertion is not acceptable ({e})"),
            }
        })?
        .claims;
    debug_assert!(claims.iss == client_id && claims.sub == client_id);
    if claims.exp + LEEWAY_SECONDS < now {
        return Err("the client assertion has expired".into());
    }
    if claims.exp - now > MAX_LIFETIME_SECONDS {
        return Err(format!(
            "the client assertion is valid for too long (at most {MAX_LIFETIME_SECONDS} s)"
        ));
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err("the client assertion needs a jti (at most 256 characters)".into());
    }
    Ok(VerifiedAssertion {
        jti: claims.jti,
        exp: claims.exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const AUTHHOST: &str = "https://auth.example";
    const NOW: i64 = 1_800_000_000;

    /// A client's key pair: its signing key, and its public key as a JWK Set.
    fn client_key(kid: &str) -> (EncodingKey, JwkSet) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]});
        (
            EncodingKey::from_ec_der(pkcs8.as_ref()),
            serde_json::from_value(jwks).unwrap(),
        )
    }

    fn assertion(key: &EncodingKey, kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    fn claims(client: &str) -> serde_json::Value {
        json!({"iss": client, "sub": client, "aud": AUTHHOST, "exp": NOW + 300, "iat": NOW, "jti": "j1"})
    }

    #[test]
    fn a_fresh_assertion_signed_by_a_registered_key_is_accepted() {
        let (key, jwks) = client_key("k1");
        let signed = assertion(&key, "k1", claims("bot"));
        assert_eq!(claimed_client(&signed).as_deref(), Some("bot"));
        assert_eq!(
            verify(&jwks, "bot", &signed, &[AUTHHOST], NOW),
            Ok(VerifiedAssertion {
                jti: "j1".into(),
                exp: NOW + 300
            })
        );
    }

    #[test]
    fn assertions_that_are_not_the_clients_own_are_refused() {
        let (key, jwks) = client_key("k1");
        let (other_key, _) = client_key("k1");
        let refused = |signed: &str| verify(&jwks, "bot", signed, &[AUTHHOST], NOW).unwrap_err();

        // Signed by a key the client did not register, under its key id.
        assert!(refused(&assertion(&other_key, "k1", claims("bot"))).contains("signature"));
        // A key id it did not register.
        assert!(refused(&assertion(&key, "k2", claims("bot"))).contains("no key registered"));
        // Another client's assertion, or one made for another server.
        assert!(refused(&assertion(&key, "k1", claims("other"))).contains("iss and sub"));
        let mut elsewhere = claims("bot");
        elsewhere["aud"] = json!("https://other.example");
        assert!(refused(&assertion(&key, "k1", elsewhere)).contains("audience"));
        // Expired beyond the leeway, or valid for far too long.
        let mut old = claims("bot");
        old["exp"] = json!(NOW - 120);
        assert!(refused(&assertion(&key, "k1", old)).contains("expired"));
        let mut long = claims("bot");
        long["exp"] = json!(NOW + 86_400);
        assert!(refused(&assertion(&key, "k1", long)).contains("too long"));
        let mut no_jti = claims("bot");
        no_jti["jti"] = json!("");
        assert!(refused(&assertion(&key, "k1", no_jti)).contains("jti"));
    }

    #[test]
    fn unsigned_and_symmetric_assertions_are_refused() {
        let (_, jwks) = client_key("k1");
        let payload = URL_SAFE_NO_PAD.encode(claims("bot").to_string());
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
        assert!(verify(&jwks, "bot", &none, &[AUTHHOST], NOW).is_err());
        // HMAC keyed with something public: the classic algorithm confusion.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let hs = jsonwebtoken::encode(
            &header,
            &claims("bot"),
            &EncodingKey::from_secret(b"the public key"),
        )
        .unwrap();
        let error = verify(&jwks, "bot", &hs, &[AUTHHOST], NOW).unwrap_err();
        assert!(error.contains("public-key algorithm"), "{error}");
    }
}

//! Enterprise-Managed Authorization (the MCP extension; an ID-JAG redeemed with the
//! RFC 7523 jwt-bearer grant): the official Python SDK's IdentityAssertionOAuthProvider
//! against authhost, the test playing the enterprise identity provider with its own
//! key (served as a JWK Set on loopback). Then every way an ID-JAG must be refused.

use crate::common::clients::{key_pair, python, serve_public_keys};
use crate::common::instances::two_instances;
use crate::common::server::{Options, TestAuthhost, confidential_client, http, start_upstream};
use authhost::config::TrustedIssuerConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;

const IDP: &str = "https://idp.corp.example";
const CLIENT: &str = "corp-agent";
const SECRET: &str = "corp-agent-secret-0123456789";
const ID_JAG_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// authhost trusting the identity provider whose keys are in `dir`, with one
/// confidential client the operator registered.
async fn start(dir: &Path) -> (TestAuthhost, crate::common::upstream::Upstream) {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, options(serve_public_keys(dir).await)).await;
    (a, upstream)
}

fn options(jwks_url: String) -> Options {
    Options {
        static_clients: vec![confidential_client(CLIENT, "Corp agent", SECRET)],
        ..Options::with(move |config| {
            config.enterprise.allow_private_hosts = true;
            config.enterprise.issuers = vec![TrustedIssuerConfig {
                issuer: IDP.into(),
                jwks_url: jwks_url.clone(),
                algorithms: vec!["ES256".into()],
                claims: Default::default(),
            }];
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_redeems_an_id_jag_and_calls_the_server_as_the_user() {
    let idp = key_pair().await;
    let (a, _upstream) = start(&idp).await;
    let args: Vec<String> = [
        "id-jag",
        "--url",
        &a.url("/mcp"),
        "--issuer",
        &a.base,
        "--client-id",
        CLIENT,
        "--secret",
        SECRET,
        "--idp-key",
        &idp.display().to_string(),
        "--idp-issuer",
        IDP,
        "--subject",
        "00u1alice",
        "--email",
        "alice@corp.example",
        "--groups",
        "engineering,mcp-users",
    ]
    .map(String::from)
    .into();
    let result = python(&args).await;
    assert_eq!(result["ok"], true, "{result}");
    let whoami = &result["whoami"];
    assert_eq!(whoami["subject"], "00u1alice");
    assert_eq!(whoami["email"], "alice@corp.example");
    assert_eq!(whoami["groups"], json!(["engineering", "mcp-users"]));
    assert_eq!(whoami["auth"], "id_jag");
    assert_eq!(whoami["provider"], IDP);
    assert_eq!(whoami["client_id"], CLIENT);
    assert_eq!(result["tokens"], 1);
}

/// Sign an ID-JAG as the identity provider would (or an attacker might).
fn sign(claims: &Value, key: &EncodingKey, kid: &str, typ: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    header.typ = Some(typ.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_id_jag_that_is_not_genuine_fresh_and_for_this_client_is_refused() {
    let idp = key_pair().await;
    let (a, _upstream) = start(&idp).await;
    let key = EncodingKey::from_ec_pem(&std::fs::read(idp.join("key.pem")).unwrap()).unwrap();
    let now = a.state.clock.now();
    let mcp = a.url("/mcp");
    let claims = |jti: &str| {
        json!({"iss": IDP, "sub": "00u1alice", "aud": a.base, "client_id": CLIENT,
               "resource": mcp, "jti": jti, "iat": now, "exp": now + 300,
               "email": "alice@corp.example"})
    };
    let redeem = |assertion: String, resource: Option<String>| {
        let a = &a;
        async move {
            let mut form = vec![
                ("grant_type", ID_JAG_GRANT.to_string()),
                ("client_id", CLIENT.to_string()),
                ("client_secret", SECRET.to_string()),
                ("assertion", assertion),
            ];
            form.extend(resource.map(|r| ("resource", r)));
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            a.token(&form).await
        }
    };
    let refused = |(status, body): (StatusCode, Value), code: &str, says: &str| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], code, "{body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(says), "`{says}` not in: {body}");
    };

    // The genuine one works once, with no refresh token; its replay is refused.
    let genuine = sign(&claims("j-1"), &key, "machine-1", "oauth-id-jag+jwt");
    let (status, body) = redeem(genuine.clone(), Some(mcp.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["scope"], "mcp");
    refused(
        redeem(genuine, None).await,
        "invalid_grant",
        "redeemed before",
    );

    let with = |change: &dyn Fn(&mut Value), jti: &str| {
        let mut c = claims(jti);
        change(&mut c);
        sign(&c, &key, "machine-1", "oauth-id-jag+jwt")
    };
    // An issuer authhost does not trust (signed with the trusted key, even).
    let unknown = with(&|c| c["iss"] = json!("https://evil.example"), "j-2");
    refused(
        redeem(unknown, None).await,
        "invalid_grant",
        "not a trusted issuer",
    );
    // Made for another authorization server.
    let elsewhere = with(&|c| c["aud"] = json!("https://other-as.example"), "j-3");
    refused(redeem(elsewhere, None).await, "invalid_grant", "audience");
    // For a server authhost does not protect, or another than the request names.
    let foreign = with(
        &|c| c["resource"] = json!("https://other.example/mcp"),
        "j-4",
    );
    refused(
        redeem(foreign, None).await,
        "invalid_grant",
        "not an MCP server",
    );
    let (status, body) = redeem(
        sign(&claims("j-5"), &key, "machine-1", "oauth-id-jag+jwt"),
        Some(a.url("/admin-mcp")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    // Expired, or valid far too long.
    let expired = with(&|c| c["exp"] = json!(now - 3600), "j-6");
    refused(redeem(expired, None).await, "invalid_grant", "expired");
    let long = with(&|c| c["exp"] = json!(now + 86_400), "j-7");
    refused(redeem(long, None).await, "invalid_grant", "too long");
    // Issued to another client.
    let stolen = with(&|c| c["client_id"] = json!("someone-else"), "j-8");
    refused(
        redeem(stolen, None).await,
        "invalid_grant",
        "another client",
    );
    // Not an ID-JAG: an ID token (typ JWT) of the same issuer.
    let id_token = sign(&claims("j-9"), &key, "machine-1", "JWT");
    refused(
        redeem(id_token, None).await,
        "invalid_grant",
        "not an ID-JAG",
    );
    // Unsigned.
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "oauth-id-jag+jwt"})),
        b64(&claims("j-10"))
    );
    refused(
        redeem(unsigned, None).await,
        "invalid_grant",
        "not a signed JWT",
    );
    // A key the issuer does not publish; a forged signature under its key id.
    let other = key_pair().await;
    let other_key =
        EncodingKey::from_ec_pem(&std::fs::read(other.join("key.pem")).unwrap()).unwrap();
    let unpublished = sign(&claims("j-11"), &other_key, "rogue-key", "oauth-id-jag+jwt");
    refused(
        redeem(unpublished, None).await,
        "invalid_grant",
        "does not publish",
    );
    let forged = sign(&claims("j-12"), &other_key, "machine-1", "oauth-id-jag+jwt");
    refused(redeem(forged, None).await, "invalid_grant", "signature");

    // A self-registered client cannot redeem one, even one made out for it.
    let registered = a.register("self-made").await;
    let (status, body) = a
        .token(&[
            ("grant_type", ID_JAG_GRANT),
            ("client_id", &registered),
            (
                "assertion",
                &sign(&claims("j-13"), &key, "machine-1", "oauth-id-jag+jwt"),
            ),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );

    // The metadata says the grant is supported.
    let metadata: Value = http()
        .get(a.own_url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == ID_JAG_GRANT)
    );
}

/// One ID-JAG, redeemed at one instance, replayed at another sharing the database.
async fn replayed_across_instances(backend: &str) {
    let idp = key_pair().await;
    let upstream = start_upstream();
    let Some((a, b, _)) =
        two_instances(backend, &upstream, options(serve_public_keys(&idp).await)).await
    else {
        return;
    };
    let key = EncodingKey::from_ec_pem(&std::fs::read(idp.join("key.pem")).unwrap()).unwrap();
    let now = a.state.clock.now();
    let claims = json!({"iss": IDP, "sub": "00u1alice", "aud": a.base, "client_id": CLIENT,
                        "resource": a.url("/mcp"), "jti": "once-only", "iat": now, "exp": now + 300});
    let id_jag = sign(&claims, &key, "machine-1", "oauth-id-jag+jwt");
    let form = [
        ("grant_type", ID_JAG_GRANT),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("assertion", id_jag.as_str()),
    ];
    let (status, body) = a.token(&form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = b.token(&form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_jag_redeemed_at_one_instance_is_refused_at_another_sqlite() {
    replayed_across_instances("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_jag_redeemed_at_one_instance_is_refused_at_another_postgres() {
    replayed_across_instances("postgres").await;
}

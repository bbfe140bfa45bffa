//! What the operator's commands do to the store: clients (`authhost clients`) and API
//! keys (`authhost api-keys`). Secrets are shown once, at creation, and kept hashed.

use crate::crypto;
use crate::domain::clients::check_redirect_uri;
use crate::domain::clients::{
    self, ClientKeys, ClientSource, ClientSpec, MachineAccess, NewClient,
};
use crate::gateway::caller::API_KEY_PREFIX;
use crate::store::{ApiKeyRecord, Store};
use jsonwebtoken::jwk::JwkSet;

pub async fn add_client(
    store: &Store,
    name: &str,
    redirect_uris: &[String],
    confidential: bool,
) -> anyhow::Result<NewClient> {
    if redirect_uris.is_empty() {
        anyhow::bail!("give at least one --redirect-uri");
    }
    for uri in redirect_uris {
        check_redirect_uri(uri).map_err(|e| anyhow::anyhow!("--redirect-uri: {e}"))?;
    }
    let spec = ClientSpec {
        name: name.to_string(),
        redirect_uris: redirect_uris.to_vec(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        auth_method: if confidential {
            "client_secret_basic"
        } else {
            "none"
        }
        .into(),
        application_type: "web".into(),
        extra: Default::default(),
        source: ClientSource::Operator,
        machine: None,
        jwks: None,
    };
    Ok(clients::create(store, spec, crate::clock::now()).await?)
}

/// A machine client: the client_credentials grant, for `access.servers`, with a secret
/// or, given `jwks`, private_key_jwt.
pub async fn add_machine_client(
    store: &Store,
    name: &str,
    access: MachineAccess,
    jwks: Option<ClientKeys>,
) -> anyhow::Result<NewClient> {
    if access.servers.is_empty() {
        anyhow::bail!("a machine client needs at least one --server");
    }
    let spec = ClientSpec {
        name: name.to_string(),
        redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        auth_method: if jwks.is_some() {
            "private_key_jwt"
        } else {
            "client_secret_basic"
        }
        .into(),
        application_type: "web".into(),
        extra: Default::default(),
        source: ClientSource::Operator,
        machine: Some(access),
        jwks,
    };
    Ok(clients::create(store, spec, crate::clock::now()).await?)
}

/// Where a machine client publishes its keys: https, or http on loopback.
pub fn check_jwks_url(url: &str) -> anyhow::Result<ClientKeys> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("--jwks-url: `{url}`: {e}"))?;
    let loopback = parsed
        .host_str()
        .is_some_and(crate::domain::clients::is_loopback_host);
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        anyhow::bail!("--jwks-url: `{url}` must be https (or http on loopback)");
    }
    Ok(ClientKeys::Url {
        jwks_uri: url.to_string(),
    })
}

/// A JWK Set of public keys a client signs its assertions with: each key usable for
/// verifying, none symmetric, none with private parts (a key file given by mistake).
pub fn read_public_jwks(path: &std::path::Path) -> anyhow::Result<JwkSet> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--jwks: cannot read {}: {e}", path.display()))?;
    let raw: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("--jwks: {} is not JSON: {e}", path.display()))?;
    let keys = raw["keys"].as_array().filter(|keys| !keys.is_empty());
    let Some(keys) = keys else {
        anyhow::bail!("--jwks: {} has no `keys`", path.display());
    };
    for key in keys {
        if ["d", "p", "q", "k"]
            .iter()
            .any(|part| key.get(part).is_some())
        {
            anyhow::bail!(
                "--jwks: {} holds private or symmetric key material; give the public keys only",
                path.display()
            );
        }
    }
    let jwks: JwkSet = serde_json::from_value(raw)
        .map_err(|e| anyhow::anyhow!("--jwks: {} is not a JWK Set: {e}", path.display()))?;
    for jwk in &jwks.keys {
        jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| {
            anyhow::anyhow!("--jwks: key {:?} cannot verify: {e}", jwk.common.key_id)
        })?;
    }
    Ok(jwks)
}

/// What an API key is for.
pub struct ApiKeySpec<'a> {
    pub name: &'a str,
    /// An `mcp_servers` name, or `*`.
    pub server: &'a str,
    pub subject: Option<&'a str>,
    pub groups: &'a [String],
    pub scopes: &'a [String],
    pub expires_in_days: Option<u64>,
}

/// Create a key; returns `(id, key)`. The key itself is not stored.
pub async fn create_api_key(
    store: &Store,
    spec: ApiKeySpec<'_>,
) -> anyhow::Result<(String, String)> {
    if spec.name.trim().is_empty() {
        anyhow::bail!("--name must not be empty");
    }
    let key = format!("{API_KEY_PREFIX}{}", crypto::random_token());
    let id = crypto::random_token()[..12].to_string();
    let now = crate::clock::now();
    store
        .insert_api_key(&ApiKeyRecord {
            id: id.clone(),
            name: spec.name.to_string(),
            key_hash: crypto::hash_token(&key),
            server: spec.server.to_string(),
            subject: spec
                .subject
                .map(String::from)
                .unwrap_or_else(|| format!("api-key:{}", spec.name)),
            groups: serde_json::to_string(spec.groups)?,
            scopes: serde_json::to_string(spec.scopes)?,
            created_at: now,
            expires_at: spec.expires_in_days.map(|d| now + d as i64 * 86_400),
            revoked_at: None,
        })
        .await?;
    Ok((id, key))
}

//! Who a client is: pre-registered (config), dynamically registered (store), or a URL
//! client id whose metadata document is fetched (see `client_metadata.rs`).

use super::client_metadata::MetadataDocuments;
use super::jwks::RemoteKeys;
use super::oauth_error::OAuthError;
use crate::config::StaticClientConfig;
use crate::crypto;
use crate::secret::SecretKeys;
use crate::store::{ClientRecord, Store};
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use url::Url;

#[derive(Debug, Clone, PartialEq)]
pub enum ClientKind {
    /// `[[clients]]` in the config file.
    PreRegistered,
    /// Created with `authhost clients add`.
    Operator,
    /// Self-registered (DCR): anyone may have made it.
    Registered,
    MetadataDocument,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// sha256 of the secret for confidential clients; `None` for public ones.
    pub secret_hash: Option<String>,
    pub kind: ClientKind,
    /// Set for machine clients (the client_credentials grant).
    pub machine: Option<MachineAccess>,
    /// The public keys of a private_key_jwt client; it has no secret.
    pub jwks: Option<ClientKeys>,
}

/// Where a private_key_jwt client's public keys are: given at registration, or
/// published at a URL the operator gave (fetched and cached like any published keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClientKeys {
    Set(JwkSet),
    Url { jwks_uri: String },
}

/// What a machine client's tokens may be for, as the operator allowed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineAccess {
    /// The `[mcp_servers]` (by name) its tokens may be for.
    pub servers: Vec<String>,
    /// Scopes it may be given; empty: those each server requires.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Groups its identity carries, for policies.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// How a client proved who it is at the token, revocation or introspection endpoint.
pub enum Credential<'a> {
    /// Nothing: a public client.
    None,
    Secret(&'a str),
    /// private_key_jwt, its signature and claims checked.
    Assertion,
}

pub struct Clients {
    pre_registered: HashMap<String, Client>,
    documents: Option<MetadataDocuments>,
    /// Published keys of clients, by URL, cached across lookups.
    published: Mutex<HashMap<String, Arc<RemoteKeys>>>,
}

impl Clients {
    pub fn new(
        statics: &[StaticClientConfig],
        documents: Option<MetadataDocuments>,
    ) -> anyhow::Result<Clients> {
        let mut pre_registered = HashMap::new();
        for (i, c) in statics.iter().enumerate() {
            let secret = SecretKeys {
                key: "client_secret",
                inline: c.client_secret.as_deref(),
                env: c.client_secret_env.as_deref(),
                file: c.client_secret_file.as_deref(),
            }
            .load()
            .map_err(|e| anyhow::anyhow!("clients[{i}] ({}): {e}", c.client_id))?;
            for uri in &c.redirect_uris {
                check_redirect_uri(uri).map_err(|e| {
                    anyhow::anyhow!("clients[{i}] ({}): key `redirect_uris`: {e}", c.client_id)
                })?;
            }
            pre_registered.insert(
                c.client_id.clone(),
                Client {
                    client_id: c.client_id.clone(),
                    name: c.name.clone().unwrap_or_else(|| c.client_id.clone()),
                    redirect_uris: c.redirect_uris.clone(),
                    secret_hash: secret.map(|s| crypto::hash_token(s.expose())),
                    kind: ClientKind::PreRegistered,
                    machine: None,
                    jwks: None,
                },
            );
        }
        Ok(Clients {
            pre_registered,
            documents,
            published: Mutex::new(HashMap::new()),
        })
    }

    /// The keys to check a private_key_jwt assertion signed with `kid`.
    pub async fn assertion_keys(
        &self,
        keys: &ClientKeys,
        kid: Option<&str>,
    ) -> Result<Arc<JwkSet>, String> {
        match keys {
            ClientKeys::Set(set) => Ok(Arc::new(set.clone())),
            ClientKeys::Url { jwks_uri } => {
                let url = Url::parse(jwks_uri).map_err(|e| format!("jwks_uri: {e}"))?;
                let remote = self
                    .published
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(jwks_uri.clone())
                    // The operator gave the URL: it may be on the internal network.
                    .or_insert_with(|| Arc::new(RemoteKeys::new(url, true)))
                    .clone();
                remote.for_kid(kid).await
            }
        }
    }

    pub fn metadata_documents_enabled(&self) -> bool {
        self.documents.is_some()
    }

    /// Look a client up; `Ok(None)` when no such client exists.
    pub async fn find(&self, store: &Store, client_id: &str) -> Result<Option<Client>, OAuthError> {
        if let Some(client) = self.pre_registered.get(client_id) {
            return Ok(Some(client.clone()));
        }
        if client_id.starts_with("https://") || client_id.starts_with("http://") {
            return match &self.documents {
                Some(documents) => documents.client(client_id).await.map(Some),
                None => Err(OAuthError::invalid_client(
                    "URL client ids (client ID metadata documents) are disabled on this server",
                )),
            };
        }
        let Some(record) = store.client(client_id).await? else {
            return Ok(None);
        };
        Ok(Some(Client {
            client_id: record.client_id,
            name: record.name,
            redirect_uris: serde_json::from_str(&record.redirect_uris).unwrap_or_default(),
            secret_hash: record.secret_hash,
            kind: if record.source == "operator" {
                ClientKind::Operator
            } else {
                ClientKind::Registered
            },
            // Unreadable access or keys leave the client without them: it fails closed.
            machine: record
                .machine
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
            jwks: record
                .jwks
                .as_deref()
                .and_then(|k| serde_json::from_str(k).ok()),
        }))
    }
}

impl Client {
    /// Whether the operator made this client (not the client itself).
    pub fn operator_made(&self) -> bool {
        matches!(self.kind, ClientKind::PreRegistered | ClientKind::Operator)
    }

    /// Whether `requested` is one of this client's redirect URIs. Exact match, except
    /// that a loopback http URI matches on any port (RFC 8252 7.3).
    pub fn allows_redirect(&self, requested: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| redirect_uri_matches(registered, requested))
    }

    /// Whether the client proves who it is (a secret or keys), so it may be trusted
    /// without a user: only such clients may use the client_credentials grant.
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some() || self.jwks.is_some()
    }

    /// Check the credential of a token, revocation or introspection request against
    /// how this client authenticates: a client with keys only by an assertion, one
    /// with a secret only by it, a public one by nothing.
    pub fn authenticate(&self, presented: Credential<'_>) -> Result<(), OAuthError> {
        match (&self.jwks, &self.secret_hash, presented) {
            (Some(_), _, Credential::Assertion) => Ok(()),
            (Some(_), _, _) => Err(OAuthError::invalid_client(
                "this client authenticates with private_key_jwt",
            )),
            (None, _, Credential::Assertion) => Err(OAuthError::invalid_client(
                "this client has no registered keys for private_key_jwt",
            )),
            (None, None, Credential::None) => Ok(()),
            (None, None, Credential::Secret(_)) => Err(OAuthError::invalid_client(
                "this client is public and has no secret",
            )),
            (None, Some(_), Credential::None) => {
                Err(OAuthError::invalid_client("client authentication required"))
            }
            (None, Some(hash), Credential::Secret(secret))
                if crypto::same(hash, &crypto::hash_token(secret)) =>
            {
                Ok(())
            }
            (None, Some(_), Credential::Secret(_)) => {
                Err(OAuthError::invalid_client("client authentication failed"))
            }
        }
    }
}

pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    a.scheme() == "http"
        && b.scheme() == "http"
        && a.host_str().is_some_and(is_loopback_host)
        && a.host_str() == b.host_str()
        && a.path() == b.path()
        && a.query() == b.query()
        && b.username().is_empty()
        && b.password().is_none()
        && b.fragment().is_none()
}

/// A redirect URI a client may register: absolute, no fragment, no credentials; https,
/// loopback http, or a private-use scheme for native apps (`cursor://`).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|e| format!("`{uri}` is not an absolute URI ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri}` must not have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{uri}` must not contain credentials"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(is_loopback_host) => Ok(()),
        "http" => Err(format!(
            "`{uri}`: plain http is only allowed for loopback addresses"
        )),
        "javascript" | "data" | "file" | "vbscript" => Err(format!("`{uri}`: scheme not allowed")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_matches_any_port_everything_else_exactly() {
        let r = "http://127.0.0.1/callback";
        assert!(redirect_uri_matches(r, "http://127.0.0.1:53124/callback"));
        assert!(redirect_uri_matches(
            "http://127.0.0.1:1/callback",
            "http://127.0.0.1:2/callback"
        ));
        assert!(!redirect_uri_matches(r, "http://127.0.0.1:53124/other"));
        assert!(!redirect_uri_matches(r, "http://localhost:53124/callback"));
        assert!(!redirect_uri_matches(r, "http://127.0.0.1:5/callback#x"));
        let https = "https://app.example.com/cb";
        assert!(redirect_uri_matches(https, https));
        assert!(!redirect_uri_matches(
            https,
            "https://app.example.com:8443/cb"
        ));
        assert!(!redirect_uri_matches(https, "https://app.example.com/cb/"));
        assert!(redirect_uri_matches(
            "cursor://anysphere.cursor-retrieval/oauth/cb",
            "cursor://anysphere.cursor-retrieval/oauth/cb"
        ));
        assert!(!redirect_uri_matches("cursor://a/cb", "cursor://b/cb"));
    }

    #[test]
    fn registrable_redirect_uris() {
        assert!(check_redirect_uri("https://claude.ai/api/mcp/auth_callback").is_ok());
        assert!(check_redirect_uri("http://localhost:3000/cb").is_ok());
        assert!(
            check_redirect_uri("vscode://vscode.github-authentication/did-authenticate").is_ok()
        );
        assert!(check_redirect_uri("http://evil.example/cb").is_err());
        assert!(check_redirect_uri("https://a.example/cb#frag").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("/relative").is_err());
    }
}

// Creating clients: one path for dynamic registration (RFC 7591) and the operator's
// `authhost clients add`. The secret is returned once and kept hashed.

/// Who registered a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSource {
    /// Dynamic client registration.
    Dcr,
    /// `authhost clients add`.
    Operator,
}

impl ClientSource {
    fn as_str(self) -> &'static str {
        match self {
            ClientSource::Dcr => "dcr",
            ClientSource::Operator => "operator",
        }
    }
}

/// A client to create, already checked by its caller.
pub struct ClientSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// `none` for a public client, `private_key_jwt` for one with keys; otherwise it
    /// gets a secret.
    pub auth_method: String,
    pub application_type: String,
    /// Further metadata kept as given (`scope`, `client_uri`, `logo_uri`).
    pub extra: Map<String, Value>,
    pub source: ClientSource,
    /// A machine client's access (operator-made only).
    pub machine: Option<MachineAccess>,
    /// The public keys of a private_key_jwt client (then it gets no secret).
    pub jwks: Option<ClientKeys>,
}

pub struct NewClient {
    pub client_id: String,
    /// Shown once; only its hash is kept.
    pub secret: Option<String>,
    /// The client's metadata as registered (RFC 7591 3.2.1), without the secret.
    pub metadata: Value,
}

pub async fn create(store: &Store, spec: ClientSpec, now: i64) -> sqlx::Result<NewClient> {
    let client_id = format!("c_{}", crypto::random_token());
    let secret = (!matches!(spec.auth_method.as_str(), "none" | "private_key_jwt"))
        .then(crypto::random_token);
    let mut metadata = json!({
        "client_id": client_id,
        "client_id_issued_at": now,
        "client_name": spec.name,
        "redirect_uris": spec.redirect_uris,
        "grant_types": spec.grant_types,
        "response_types": if spec.redirect_uris.is_empty() { json!([]) } else { json!(["code"]) },
        "token_endpoint_auth_method": spec.auth_method,
        "application_type": spec.application_type,
    });
    if spec.source == ClientSource::Operator {
        metadata["registered_by"] = json!("operator");
    }
    for (key, value) in spec.extra {
        metadata[key] = value;
    }
    store
        .insert_client(&ClientRecord {
            client_id: client_id.clone(),
            secret_hash: secret.as_deref().map(crypto::hash_token),
            name: spec.name,
            redirect_uris: serde_json::to_string(&spec.redirect_uris).unwrap_or_default(),
            application_type: spec.application_type,
            metadata: metadata.to_string(),
            created_at: now,
            source: spec.source.as_str().into(),
            last_used_at: None,
            machine: spec.machine.map(|m| json!(m).to_string()),
            jwks: spec.jwks.map(|k| json!(k).to_string()),
        })
        .await?;
    Ok(NewClient {
        client_id,
        secret,
        metadata,
    })
}

//! `authhost api-keys`: keys for service accounts, printed once, stored as hashes.

use super::admin;
use super::store;
use crate::config::Config;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key; it is printed once and stored only as a hash.
    Create {
        /// Who the key is for, e.g. `ci-bot`.
        #[arg(long)]
        name: String,
        /// The `mcp_servers` name it is valid for; every server when omitted.
        #[arg(long, default_value = "*")]
        server: String,
        /// The subject MCP servers see; `api-key:<name>` by default.
        #[arg(long)]
        subject: Option<String>,
        /// Groups policies see (repeat for several).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Scopes the key holds (repeat); `mcp` by default.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Expire after this many days.
        #[arg(long = "expires-in-days")]
        expires_in_days: Option<u64>,
    },
    /// Every key, without the keys themselves.
    List,
    /// Revoke a key by its id.
    Revoke { id: String },
}

impl ApiKeysCommand {
    pub async fn run(self, config: &Config) -> anyhow::Result<()> {
        let store = store(config).await?;
        match self {
            ApiKeysCommand::Create {
                name,
                server,
                subject,
                groups,
                scopes,
                expires_in_days,
            } => {
                if server != "*" && !config.mcp_servers.contains_key(&server) {
                    anyhow::bail!("--server: no `[mcp_servers.{server}]` in the configuration");
                }
                let scopes = if scopes.is_empty() {
                    vec!["mcp".to_string()]
                } else {
                    scopes
                };
                let spec = admin::ApiKeySpec {
                    name: &name,
                    server: &server,
                    subject: subject.as_deref(),
                    groups: &groups,
                    scopes: &scopes,
                    expires_in_days,
                };
                let (id, key) = admin::create_api_key(&store, spec).await?;
                println!("id:  {id}");
                println!("key: {key}");
                println!("(the key is shown only now; authhost keeps a hash)");
            }
            ApiKeysCommand::List => {
                let now = crate::clock::now();
                println!(
                    "{:<12} {:<20} {:<12} {:<24} STATE",
                    "ID", "NAME", "SERVER", "SUBJECT"
                );
                for k in store.api_keys().await? {
                    let state = match (k.revoked_at, k.expires_at) {
                        (Some(_), _) => "revoked",
                        (None, Some(at)) if at <= now => "expired",
                        _ => "active",
                    };
                    println!(
                        "{:<12} {:<20} {:<12} {:<24} {state}",
                        k.id, k.name, k.server, k.subject
                    );
                }
            }
            ApiKeysCommand::Revoke { id } => {
                if !store.revoke_api_key(&id, crate::clock::now()).await? {
                    anyhow::bail!("no active API key `{id}`");
                }
                println!("revoked {id}");
            }
        }
        Ok(())
    }
}

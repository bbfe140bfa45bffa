//! `authhost clients`: OAuth clients the operator registers (besides `[[clients]]` in
//! the config file and dynamic registration).

use super::admin;
use super::store;
use crate::config::Config;
use crate::domain::clients::{ClientKeys, MachineAccess};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its id (and secret, once).
    Add {
        #[arg(long)]
        name: String,
        /// Where the client receives codes (repeat for several).
        #[arg(long = "redirect-uri", required_unless_present = "machine")]
        redirect_uris: Vec<String>,
        /// A client with a secret (a server-side app), not a public one.
        #[arg(long, conflicts_with = "machine")]
        confidential: bool,
        /// A machine client: tokens by the client_credentials grant, without a user.
        #[arg(long, conflicts_with = "redirect_uris", requires = "servers")]
        machine: bool,
        /// The `mcp_servers` a machine client may get tokens for (repeat).
        #[arg(long = "server", requires = "machine")]
        servers: Vec<String>,
        /// Scopes a machine client may be given (repeat); each server's own by default.
        #[arg(long = "scope", requires = "machine")]
        scopes: Vec<String>,
        /// Groups a machine client's identity carries, for policies (repeat).
        #[arg(long = "group", requires = "machine")]
        groups: Vec<String>,
        /// A JWK Set file with the public keys of a machine client that authenticates
        /// with private_key_jwt (it then gets no secret).
        #[arg(long, requires = "machine")]
        jwks: Option<std::path::PathBuf>,
        /// Or the URL where it publishes them (fetched and cached; rotation follows).
        #[arg(long, requires = "machine", conflicts_with = "jwks")]
        jwks_url: Option<String>,
    },
    /// Clients from the config file and the database.
    List,
    /// Remove a registered client and revoke every grant it holds.
    Remove { client_id: String },
}

impl ClientsCommand {
    pub async fn run(self, config: &Config) -> anyhow::Result<()> {
        let store = store(config).await?;
        match self {
            ClientsCommand::Add {
                name,
                redirect_uris,
                confidential,
                machine,
                servers,
                scopes,
                groups,
                jwks,
                jwks_url,
            } => {
                let client = if machine {
                    if let Some(unknown) = servers
                        .iter()
                        .find(|s| !config.mcp_servers.contains_key(*s))
                    {
                        anyhow::bail!(
                            "--server: no `[mcp_servers.{unknown}]` in the configuration"
                        );
                    }
                    let jwks = match (jwks, jwks_url) {
                        (Some(path), _) => Some(ClientKeys::Set(admin::read_public_jwks(&path)?)),
                        (None, Some(url)) => Some(admin::check_jwks_url(&url)?),
                        (None, None) => None,
                    };
                    let access = MachineAccess {
                        servers,
                        scopes,
                        groups,
                    };
                    admin::add_machine_client(&store, &name, access, jwks).await?
                } else {
                    admin::add_client(&store, &name, &redirect_uris, confidential).await?
                };
                println!("client_id:     {}", client.client_id);
                if let Some(secret) = client.secret {
                    println!("client_secret: {secret}");
                    println!("(the secret is shown only now; authhost keeps a hash)");
                }
            }
            ClientsCommand::List => {
                println!(
                    "{:<48} {:<10} {:<24} REDIRECT URIS",
                    "CLIENT ID", "ORIGIN", "NAME"
                );
                for c in &config.clients {
                    println!(
                        "{:<48} {:<10} {:<24} {}",
                        c.client_id,
                        "config",
                        c.name.as_deref().unwrap_or(""),
                        c.redirect_uris.join(" ")
                    );
                }
                for c in store.clients().await? {
                    let uris: Vec<String> =
                        serde_json::from_str(&c.redirect_uris).unwrap_or_default();
                    println!(
                        "{:<48} {:<10} {:<24} {}",
                        c.client_id,
                        "database",
                        c.name,
                        uris.join(" ")
                    );
                }
            }
            ClientsCommand::Remove { client_id } => {
                if config.clients.iter().any(|c| c.client_id == client_id) {
                    anyhow::bail!(
                        "`{client_id}` is defined in the config file ([[clients]]); remove it there"
                    );
                }
                if !store.remove_client(&client_id, crate::clock::now()).await? {
                    anyhow::bail!("no registered client `{client_id}`");
                }
                println!("removed {client_id}; its grants are revoked");
            }
        }
        Ok(())
    }
}

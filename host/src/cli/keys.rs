//! `authhost keys`: the access token signing keys. Running servers pick up a rotation
//! or a retirement within `tokens.key_refresh_seconds`.

use super::store;
use crate::config::Config;
use crate::crypto::Sealer;
use crate::store::RetireRefusal;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Every key: which one signs, which verify, which are retired.
    List,
    /// Create a new signing key and make it the active one; older keys keep verifying
    /// (and stay in the JWKS) until retired.
    Rotate,
    /// Stop accepting tokens signed by a key, on every instance. Not the active key:
    /// rotate first.
    Retire { kid: String },
}

impl KeysCommand {
    pub async fn run(self, config: &Config) -> anyhow::Result<()> {
        let store = store(config).await?;
        match self {
            KeysCommand::List => {
                println!(
                    "{:<18} {:<10} {:<12} {:<12}",
                    "kid", "state", "created", "since"
                );
                for key in store.signing_keys().await? {
                    let (state, since) = match (key.active, key.deactivated_at, key.retired_at) {
                        (_, _, Some(at)) => ("retired", Some(at)),
                        (1, _, None) => ("signing", None),
                        (_, at, None) => ("verifying", at),
                    };
                    println!(
                        "{:<18} {:<10} {:<12} {:<12}",
                        key.kid,
                        state,
                        key.created_at,
                        since.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
                    );
                }
                Ok(())
            }
            KeysCommand::Rotate => {
                let sealer =
                    Sealer::load_or_create(&config.server.data_dir.join("encryption.key"))?;
                let kid = crate::domain::keys::rotate(&store, &sealer, crate::clock::now()).await?;
                println!("new signing key {kid} is active");
                Ok(())
            }
            KeysCommand::Retire { kid } => {
                match store.retire_signing_key(&kid, crate::clock::now()).await? {
                    Ok(()) => {
                        println!("key {kid} is retired: tokens it signed are refused");
                        Ok(())
                    }
                    Err(RetireRefusal::Active) => anyhow::bail!(
                        "key {kid} is the active signing key; run `authhost keys rotate` first"
                    ),
                    Err(RetireRefusal::AlreadyRetired) => {
                        anyhow::bail!("key {kid} is already retired")
                    }
                    Err(RetireRefusal::Unknown) => anyhow::bail!("no signing key {kid}"),
                }
            }
        }
    }
}

//! The operator's commands beside `serve`; `main.rs` parses and dispatches.

pub mod api_keys;
pub mod clients;
pub mod providers;

use crate::config::Config;
use crate::store::Store;

pub async fn store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.server.database_url()).await
}

//! The HTTP server. For now it loads the providers and reports on them; the
//! authorization server and the MCP gateway mount here.

use crate::config::Config;
use crate::registry::Registry;
use crate::runtime::{Runtime, RuntimeConfig};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

/// The component runtime's settings from the config file.
pub fn runtime_config(config: &Config) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: config
            .runtime
            .compile_cache
            .then(|| config.server.data_dir.join("component-cache")),
        max_concurrent_calls: config.runtime.max_concurrent_calls,
        max_memory_bytes: config.runtime.max_memory_mib << 20,
    }
}

pub fn app(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/providers", get(providers))
        .with_state(registry)
}

/// Loaded providers and instances, without secrets.
async fn providers(State(registry): State<Arc<Registry>>) -> Json<Value> {
    let components: Vec<Value> = registry
        .components
        .values()
        .map(|c| {
            json!({
                "id": c.info.id, "name": c.info.display_name, "version": c.info.version,
                "contract": c.contract.to_string(), "sha256": c.sha256,
            })
        })
        .collect();
    let instances: Vec<Value> = registry
        .instances
        .values()
        .map(|i| json!({"id": i.id, "component": i.component.info.id, "allowed_hosts": i.allowed_hosts()}))
        .collect();
    Json(json!({ "components": components, "instances": instances }))
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = Runtime::new(runtime_config(&config))?;
    let registry =
        Registry::load(runtime, &config, config.runtime.providers_dir.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    tracing::info!(url = %config.server.base_url(), "authhost listening");
    axum::serve(listener, app(Arc::new(registry)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

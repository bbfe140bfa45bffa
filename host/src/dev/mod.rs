//! The embedded default of `authhost serve --dev`: a development identity provider
//! (served through the generic OIDC component, so the real component path runs) and a
//! small demo MCP server behind the gateway.

pub mod demo_mcp;
pub mod idp;

use crate::config::{Config, McpServerConfig, ProviderConfig};
use axum::Router;

/// The embedded default: the dev identity provider (through the OIDC component) and the
/// demo MCP server at `/mcp`, SQLite under the data folder.
pub async fn embedded_config(mut config: Config) -> anyhow::Result<(Config, Router)> {
    let base_url = config.server.base_url();
    // Web-based MCP clients on any origin may try the embedded default.
    if config.server.cors_origins.is_empty() {
        config.server.cors_origins = vec!["*".into()];
    }
    let secret = crate::crypto::random_token();
    let idp = idp::DevIdp::new(&base_url, &secret);
    let mut provider = ProviderConfig {
        component: Some("oidc".into()),
        client_id: idp::CLIENT_ID.into(),
        client_secret: Some(secret),
        ..ProviderConfig::default()
    };
    provider.settings.insert(
        "issuer".into(),
        toml::Value::String(idp.issuer().to_string()),
    );
    config.providers.insert("dev".into(), provider);
    let demo = demo_mcp::start().await?;
    config.mcp_servers.insert(
        "demo".into(),
        McpServerConfig {
            path: "/mcp".into(),
            upstream: demo,
            provider: Some("dev".into()),
            display_name: Some("the authhost demo MCP server".into()),
            ..McpServerConfig::default()
        },
    );
    Ok((config, idp.router()))
}

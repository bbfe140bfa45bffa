//! Assembling and running the server: state from config, routes, and the embedded
//! default of `serve --dev`.

use crate::audit::Audit;
use crate::config::{Config, ConfigErrors, McpServerConfig, ProviderConfig};
use crate::crypto::Sealer;
use crate::dev;
use crate::forwarded;
use crate::gateway::{self, resource};
use crate::metrics::{self, Metrics};
use crate::oauth::client_metadata::MetadataDocuments;
use crate::oauth::clients::Clients;
use crate::oauth::jwt::Signer;
use crate::oauth::{authorize, callback, metadata, register, revoke, token};
use crate::registry::Registry;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::state::AppState;
use crate::store::Store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The component runtime's settings from the config file.
pub fn runtime_config(config: &Config) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: config.runtime.compile_cache.then(|| {
            config
                .runtime
                .compile_cache_dir
                .clone()
                .unwrap_or_else(|| config.server.data_dir.join("component-cache"))
        }),
        max_concurrent_calls: config.runtime.max_concurrent_calls,
        max_memory_bytes: config.runtime.max_memory_mib << 20,
        metrics: None,
    }
}

/// Everything the server needs, from the config: store, keys, providers, clients.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let issuer = config.server.base_url();
    let store = Store::connect(&config.server.database_url()).await?;
    let sealer = Arc::new(Sealer::load_or_create(
        &config.server.data_dir.join("encryption.key"),
    )?);
    let signer = Arc::new(Signer::load(&store, &sealer, &issuer).await?);
    let metrics = Arc::new(Metrics::new());
    let runtime = Runtime::new(RuntimeConfig {
        metrics: Some(metrics.clone()),
        ..runtime_config(&config)
    })?;
    let registry =
        Arc::new(Registry::load(runtime, &config, config.runtime.providers_dir.as_deref()).await?);
    let documents = config
        .client_metadata
        .enabled
        .then(|| MetadataDocuments::new(config.client_metadata.clone()));
    let clients = Arc::new(Clients::new(&config.clients, documents)?);
    let resources = Arc::new(resource::build(&config, &issuer, &registry).map_err(ConfigErrors)?);
    let trusted_proxies =
        Arc::new(forwarded::parse_trusted(&config.server.trusted_proxies).map_err(ConfigErrors)?);
    let audit = Arc::new(Audit::open(config.logging.audit_file.as_deref())?);
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(AppState {
        config: Arc::new(config),
        issuer,
        store,
        sealer,
        signer,
        registry,
        clients,
        resources,
        http,
        metrics,
        audit,
        trusted_proxies,
        client_tokens: Default::default(),
        access_tokens: Default::default(),
        grants: Default::default(),
        refresh_locks: Default::default(),
    })
}

pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/providers", get(providers))
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/oauth-authorization-server/{*issuer_path}",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::openid_configuration),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource_root),
        )
        .route(
            "/.well-known/oauth-protected-resource/{*path}",
            get(metadata::protected_resource),
        )
        .route("/jwks.json", get(metadata::jwks))
        .route("/register", post(register::register))
        .route("/authorize", get(authorize::authorize_get))
        .route("/authorize/consent", post(authorize::consent_post))
        .route("/oauth/callback/{provider}", get(callback::callback))
        .route("/token", post(token::token))
        .route("/revoke", post(revoke::revoke))
        .route("/introspect", post(revoke::introspect));
    for resource in state.resources.iter() {
        let resource = resource.clone();
        router = router.route(
            &resource.path.clone(),
            any(move |state: State<AppState>, request| {
                gateway::handle(state, resource.clone(), request)
            }),
        );
    }
    let metrics = Router::new()
        .route("/metrics", get(metrics::endpoint))
        .with_state(state.metrics.clone());
    router
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            forwarded::middleware,
        ))
        .with_state(state)
        .merge(metrics)
}

/// Ready when the database answers (the providers are loaded before we listen).
async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!("readiness: the database does not answer: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "problem": "the database does not answer"})),
            )
                .into_response()
        }
    }
}

/// Loaded providers and instances, without secrets.
async fn providers(State(state): State<AppState>) -> Json<Value> {
    let registry = &state.registry;
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

/// The embedded default: the dev identity provider (through the OIDC component) and the
/// demo MCP server at `/mcp`, SQLite under the data folder.
pub async fn dev_config(mut config: Config) -> anyhow::Result<(Config, Router)> {
    let base_url = config.server.base_url();
    let secret = crate::crypto::random_token();
    let idp = dev::idp::DevIdp::new(&base_url, &secret);
    let mut provider = ProviderConfig {
        component: Some("oidc".into()),
        client_id: dev::idp::CLIENT_ID.into(),
        client_secret: Some(secret),
        ..ProviderConfig::default()
    };
    provider.settings.insert(
        "issuer".into(),
        toml::Value::String(idp.issuer().to_string()),
    );
    config.providers.insert("dev".into(), provider);
    let demo = dev::demo_mcp::start().await?;
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

pub async fn serve(config: Config, dev_mode: bool) -> anyhow::Result<()> {
    let (config, extra) = if dev_mode {
        let (config, idp) = dev_config(config).await?;
        (config, Some(idp))
    } else {
        (config, None)
    };
    let listen = config.server.listen;
    // Bind first: the dev IdP must answer discovery while providers load.
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen} (server.listen / --listen): {e}")
    })?;
    let state = build_state(config).await?;
    let mut router = app(state.clone());
    if let Some(idp) = extra {
        router = router.merge(idp);
    }
    let purge_store = state.store.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = purge_store.purge_expired(crate::clock::now()).await {
                tracing::warn!("purging expired records: {e}");
            }
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
    });
    for resource in state.resources.iter() {
        tracing::info!(resource = resource.url, upstream = %resource.upstream, provider = resource.provider, "protecting MCP server");
    }
    println!("authhost is listening on {}", state.issuer);
    for resource in state.resources.iter() {
        println!(
            "MCP server URL (paste into your MCP client): {}",
            resource.url
        );
    }
    if dev_mode {
        println!("Development sign-in: alice / alice or bob / bob");
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

//! Assembling and running the server: state and gateway from config, routes,
//! middleware, background maintenance.

use crate::audit::Audit;
use crate::clock::{self, Clock};
use crate::config::{Config, ConfigErrors};
use crate::cors;
use crate::crypto::Sealer;
use crate::dev;
use crate::domain::client_metadata::MetadataDocuments;
use crate::domain::clients::Clients;
use crate::domain::grants::Grants;
use crate::domain::id_jag::TrustedIssuers;
use crate::domain::keys::Signer;
use crate::domain::resources::Resources;
use crate::domain::sign_in::SignIns;
use crate::forwarded;
use crate::gateway::{self, Gateway, resource};
use crate::metrics::{self, Metrics};
use crate::oauth::{
    authorize, callback, error::Failure, metadata, rate_limited, redirect_patterns, register,
    revoke, token,
};
use crate::rate_limit::{Endpoint, RateLimits};
use crate::registry::Registry;
use crate::runtime::{Runtime, RuntimeOptions};
use crate::state::AppState;
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The component runtime's settings from the config file.
pub fn runtime_config(config: &Config) -> RuntimeOptions {
    RuntimeOptions {
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

/// The assembled server: the state every handler shares and the gateway beside it.
#[derive(Clone)]
pub struct Server {
    pub state: AppState,
    pub gateway: Arc<Gateway>,
}

/// Everything the server needs, from the config: store, keys, providers, clients.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    build_with_clock(config, clock::system()).await
}

/// [`build`] with another clock (tests move time by hand).
pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Server> {
    if let Some(problem) = config.server.base_url_problem() {
        return Err(ConfigErrors(vec![problem]).into());
    }
    let issuer = config.server.base_url();
    let store = Store::connect(&config.server.database_url()).await?;
    let sealer = Arc::new(Sealer::load_or_create(
        &config.server.data_dir.join("encryption.key"),
    )?);
    let signer = Arc::new(Signer::load(&store, &sealer, &issuer, clock.now()).await?);
    let metrics = Arc::new(Metrics::new());
    let runtime = Runtime::new(RuntimeOptions {
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
    let routes = resource::build(&config, &issuer, &registry).map_err(ConfigErrors)?;
    resource::check_client_token_audiences(&routes, &registry)
        .await
        .map_err(ConfigErrors)?;
    let patterns: Vec<String> = config
        .registration
        .allowed_redirect_uris
        .iter()
        .filter_map(|p| redirect_patterns::check(p).err())
        .map(|e| format!("registration.allowed_redirect_uris: {e}"))
        .collect();
    if !patterns.is_empty() {
        return Err(ConfigErrors(patterns).into());
    }
    let trusted_proxies =
        Arc::new(forwarded::parse_trusted(&config.server.trusted_proxies).map_err(ConfigErrors)?);
    let audit = Arc::new(Audit::open(config.logging.audit_file.as_deref())?);
    let grants = Grants::new(
        store.clone(),
        sealer.clone(),
        registry.clone(),
        audit.clone(),
        clock.clone(),
        config.tokens.clone(),
    );
    let sign_ins = SignIns::new(store.clone(), sealer.clone(), clock.clone());
    let trusted_issuers = TrustedIssuers::new(&config.enterprise).map_err(ConfigErrors)?;
    let resources = Resources::new(
        &issuer,
        routes.iter().map(|r| r.protected.clone()).collect(),
    );
    let state = Arc::new(crate::state::Shared {
        rate_limits: Arc::new(RateLimits::new(&config.rate_limits)),
        config: Arc::new(config),
        issuer,
        clock,
        store,
        sealer,
        signer,
        registry,
        clients,
        grants,
        sign_ins,
        trusted_issuers,
        resources,
        metrics,
        audit,
        trusted_proxies,
    });
    let gateway = Arc::new(Gateway::new(state.clone(), routes)?);
    Ok(Server { state, gateway })
}

pub fn app(server: &Server) -> Router {
    let state = server.state.clone();
    let limits = state.rate_limits.clone();
    let limit =
        |endpoint| middleware::from_fn_with_state((limits.clone(), endpoint), rate_limited::limit);
    // What MCP clients call, from native apps or from web pages on other origins (CORS):
    // discovery, registration, tokens and the MCP servers themselves.
    let mut clients = Router::new()
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
        .route(
            "/register",
            post(register::register)
                .layer(DefaultBodyLimit::max(register::MAX_BODY_BYTES))
                .layer(limit(Endpoint::Register)),
        )
        .route("/token", post(token::token).layer(limit(Endpoint::Token)))
        .route(
            "/revoke",
            post(revoke::revoke).layer(limit(Endpoint::Revoke)),
        );
    for resource in &server.gateway.routes {
        let (gateway, resource) = (server.gateway.clone(), resource.clone());
        clients = clients.route(
            &resource.path.clone(),
            any(move |request| gateway::handle(gateway.clone(), resource.clone(), request)),
        );
    }
    // Pages for people, probes, and what resource servers call: same-origin only.
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/providers", get(providers))
        .route(
            "/authorize",
            get(authorize::authorize_get).layer(limit(Endpoint::Authorize)),
        )
        .route(
            "/authorize/consent",
            post(authorize::consent_post).layer(limit(Endpoint::Authorize)),
        )
        .route("/oauth/callback/{provider}", get(callback::callback))
        .route(
            "/introspect",
            post(revoke::introspect).layer(limit(Endpoint::Introspect)),
        )
        .merge(clients.layer(cors::layer(&state.config.server.cors_origins)));
    let metrics = Router::new()
        .route("/metrics", get(metrics::endpoint))
        .with_state(state.metrics.clone());
    router
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
        .merge(metrics)
}

/// Around every request (one middleware, since each costs on every request): the
/// client's address for logs, audit and rate limits, the HTTP metrics, and the one
/// place where an internal failure behind an error response is logged.
async fn observe(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let client = forwarded::client_of(&state.trusted_proxies, &state.issuer, &request);
    let path = request.uri().path().to_owned();
    let response = crate::audit::CLIENT_ADDR
        .scope(client, metrics::track(&state.metrics, request, next))
        .await;
    if let Some(Failure(cause)) = response.extensions().get::<Failure>() {
        tracing::error!(path, status = response.status().as_u16(), "{cause}");
    }
    response
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

/// Work every instance does in the background, for as long as it runs: pick up signing
/// keys rotated or retired anywhere (every `tokens.key_refresh_seconds`), and every
/// minute retire keys whose tokens have all expired, purge expired records and
/// registrations never used.
pub fn spawn_maintenance(state: &AppState) {
    let keys = state.clone();
    tokio::spawn(async move {
        let every = Duration::from_secs(keys.config.tokens.key_refresh_seconds.max(1));
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = keys.signer.refresh(&keys.store, &keys.sealer).await {
                tracing::warn!("reading signing keys: {e:#}");
            }
        }
    });
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = maintain(&state, state.clock.now()).await {
                tracing::warn!("maintenance: {e}");
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
}

/// One round of maintenance as of `now`.
pub async fn maintain(state: &AppState, now: i64) -> sqlx::Result<()> {
    state.rate_limits.forget_idle();
    state.store.purge_expired(now).await?;
    // A key that stopped signing is retired once the longest-lived token it could
    // have signed has expired.
    let longest = state
        .resources
        .all()
        .map(|r| r.identity_token_ttl)
        .chain([state.config.tokens.access_token_ttl])
        .max()
        .unwrap_or(0) as i64;
    for kid in state
        .store
        .retire_signing_keys_before(now - longest - 60, now)
        .await?
    {
        tracing::info!(
            kid,
            "retired a signing key: every token it signed has expired"
        );
    }
    let unused = state.config.registration.unused_client_ttl as i64;
    let purged = state.store.purge_unused_clients(now - unused).await?;
    if purged > 0 {
        tracing::info!(purged, "purged self-registered clients never used");
    }
    Ok(())
}

pub async fn serve(config: Config, dev_mode: bool) -> anyhow::Result<()> {
    let (config, extra) = if dev_mode {
        let (config, idp) = dev::embedded_config(config).await?;
        (config, Some(idp))
    } else {
        (config, None)
    };
    let listen = config.server.listen;
    // Bind first: the dev IdP must answer discovery while providers load.
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen} (server.listen / --listen): {e}")
    })?;
    let server = build(config).await?;
    let state = server.state.clone();
    let mut router = app(&server);
    if let Some(idp) = extra {
        router = router.merge(idp);
    }
    spawn_maintenance(&state);
    for resource in &server.gateway.routes {
        tracing::info!(resource = resource.url, upstream = %resource.upstream, provider = resource.provider, "protecting MCP server");
    }
    println!("authhost is listening on {}", state.issuer);
    for resource in state.resources.all() {
        println!(
            "MCP server URL (paste into your MCP client): {}",
            resource.url
        );
    }
    if dev_mode {
        println!("Development sign-in: alice / alice or bob / bob");
    }
    // Answers often leave in more than one write (an SSE stream's last chunk comes
    // after its events); with Nagle's algorithm on, the second waits for the client's
    // delayed ACK, about 40 ms. Nothing here benefits from coalescing.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    });
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

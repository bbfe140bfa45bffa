//! Shared test support: runtimes, components, a local HTTP server, the OpenID provider.

pub mod clients;
pub mod instances;
pub mod mcp_server;
pub mod postgres;
pub mod sdk_servers;
pub mod server;
pub mod simulators;
pub mod test_server;
pub mod upstream;

use authhost::runtime::{
    InstanceSpec, Limits, ProviderComponent, ProviderInstance, Runtime, RuntimeOptions,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A runtime whose compile cache is shared by all tests, so each component is compiled
/// once per build rather than once per test.
pub fn runtime() -> Arc<Runtime> {
    runtime_with_cache(Some(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
    ))
}

pub fn runtime_with_cache(cache_dir: Option<PathBuf>) -> Arc<Runtime> {
    Runtime::new(RuntimeOptions {
        cache_dir,
        max_concurrent_calls: 32,
        max_memory_bytes: 64 << 20,
        ..RuntimeOptions::default()
    })
    .expect("runtime")
}

/// A test-only component from `providers/testing`, by file stem.
pub fn test_component_path(name: &str) -> PathBuf {
    Path::new(authhost::testing::GUEST_DIR).join(format!("{name}.wasm"))
}

pub async fn load_test_component(runtime: &Runtime, name: &str) -> Arc<ProviderComponent> {
    let path = test_component_path(name);
    let bytes = std::fs::read(&path).expect("test component built by host/build.rs");
    runtime
        .load(&path.display().to_string(), &bytes)
        .await
        .expect("test component loads")
}

/// The bundled OpenID Connect component.
pub async fn load_bundled(runtime: &Runtime, file: &str) -> Arc<ProviderComponent> {
    let (_, bytes) = authhost::registry::BUNDLED
        .iter()
        .find(|(name, _)| *name == file)
        .expect("bundled component");
    runtime
        .load(file, bytes)
        .await
        .expect("bundled component loads")
}

/// An instance spec with test credentials and tight limits.
pub fn spec(id: &str, settings: &[(&str, &str)], allowed_hosts: &[String]) -> InstanceSpec {
    InstanceSpec {
        id: id.into(),
        client_id: "test-client".into(),
        client_secret: Some(authhost::secret::Secret::new("test-secret")),
        redirect_uri: "http://127.0.0.1/oauth/callback/test".into(),
        scopes: None,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        allowed_hosts: Some(allowed_hosts.to_vec()),
        limits: Limits {
            memory_bytes: 16 << 20,
            cpu_time: std::time::Duration::from_millis(100),
            ..Limits::default()
        },
    }
}

pub fn instance(
    runtime: &Arc<Runtime>,
    component: &Arc<ProviderComponent>,
    spec: InstanceSpec,
) -> ProviderInstance {
    ProviderInstance::new(runtime.clone(), component.clone(), spec).expect("valid instance")
}

/// A bundled component with test credentials, asking for `groups` too (the test upstream
/// puts groups in tokens only for that scope; Keycloak's mapper does it always).
pub async fn bundled_instance(
    file: &str,
    settings: &[(&str, &str)],
    allowed: &[String],
) -> ProviderInstance {
    let runtime = runtime();
    let component = load_bundled(&runtime, file).await;
    let mut spec = spec("test", settings, allowed);
    spec.scopes = Some(
        ["openid", "profile", "email", "groups"]
            .map(String::from)
            .to_vec(),
    );
    instance(&runtime, &component, spec)
}

/// Serve `app` on a free loopback port for the rest of the test; its origin.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    origin
}

/// An authorization request as the host makes it: state `s`, nonce `n`, no extras.
pub fn authorize_request(code_challenge: Option<&str>) -> authhost::runtime::AuthorizeRequest {
    authhost::runtime::AuthorizeRequest {
        state: "s".into(),
        code_challenge: code_challenge.map(String::from),
        nonce: "n".into(),
        extra: vec![],
    }
}

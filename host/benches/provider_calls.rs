//! Prints, in one run: per-call latency of a fresh instance + `authorize-url` through
//! the OIDC component against the same Rust logic called natively, the cold compile
//! time of a component, and start time from the on-disk cache.
//!
//! `cargo bench -p authhost --bench provider_calls` (figures vary with machine load;
//! compare the ratios).

#![allow(clippy::unwrap_used, reason = "a benchmark stops at the first failure")]

use authhost::config::Config;
use authhost::registry::{BUNDLED, Registry};
use authhost::runtime::{self, InstanceSpec, ProviderInstance, Runtime, RuntimeOptions};
use axum::Json;
use axum::routing::get;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALLS: usize = 5_000;
const COMPILES: usize = 3;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench());
}

async fn bench() {
    let (_, oidc_wasm) = BUNDLED
        .iter()
        .find(|(n, _)| *n == "provider-oidc.wasm")
        .unwrap();
    println!("component: provider-oidc.wasm, {} bytes", oidc_wasm.len());

    // Cold compile: no cache.
    let mut compiles = Vec::new();
    for _ in 0..COMPILES {
        let runtime = new_runtime(None);
        compiles.push(runtime.load("oidc", oidc_wasm).await.unwrap().load_time);
    }
    let compile = median(&mut compiles);

    // From the on-disk cache: one component, then a whole registry start.
    let cache = std::env::temp_dir().join(format!("authhost-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    new_runtime(Some(cache.clone()))
        .load("oidc", oidc_wasm)
        .await
        .unwrap();
    let mut cached = Vec::new();
    let mut starts = Vec::new();
    for _ in 0..COMPILES {
        let runtime = new_runtime(Some(cache.clone()));
        let c = runtime.load("oidc", oidc_wasm).await.unwrap();
        assert!(c.from_cache);
        cached.push(c.load_time);
        let started = Instant::now();
        let runtime = new_runtime(Some(cache.clone()));
        Registry::load(runtime, &Config::default(), None)
            .await
            .unwrap();
        starts.push(started.elapsed());
    }
    let _ = std::fs::remove_dir_all(&cache);
    println!(
        "cold compile of the component:        {:>10.2?} (median of {COMPILES})",
        compile
    );
    println!(
        "load from the on-disk cache:          {:>10.2?}",
        median(&mut cached)
    );
    println!(
        "runtime + registry start, warm cache: {:>10.2?}",
        median(&mut starts)
    );
    println!(
        "compile / cached load:                {:>10.0}x",
        compile.as_secs_f64() / median(&mut cached).as_secs_f64()
    );

    // Per call, through the component: fresh store + instantiate + authorize-url.
    let issuer = discovery_server().await;
    let runtime = new_runtime(None);
    let component = runtime.load("oidc", oidc_wasm).await.unwrap();
    let spec = InstanceSpec {
        id: "bench".into(),
        client_id: "bench-client".into(),
        redirect_uri: "https://authhost.example/oauth/callback/bench".into(),
        settings: [("issuer".to_string(), issuer.clone())].into(),
        allowed_hosts: Some(vec![issuer.clone()]),
        ..InstanceSpec::default()
    };
    let instance = ProviderInstance::new(runtime.clone(), component, spec).unwrap();
    let request = || runtime::AuthorizeRequest {
        state: "state-0123456789".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        nonce: "nonce-0123456789".into(),
        extra: vec![],
    };
    // The first call fetches discovery into the instance cache; the rest reuse it.
    let wasm_url = instance.authorize_url(request()).await.unwrap();
    let mut wasm = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        std::hint::black_box(instance.authorize_url(request()).await.unwrap());
        wasm.push(started.elapsed());
    }

    // The same logic, native.
    let discovery: authhost_provider_sdk::oidc::Discovery =
        serde_json::from_value(discovery_doc(&issuer)).unwrap();
    let config = authhost_provider_sdk::ProviderConfig {
        client_id: "bench-client".into(),
        redirect_uri: "https://authhost.example/oauth/callback/bench".into(),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        settings: vec![("issuer".into(), issuer.clone())],
        has_client_secret: false,
    };
    let native_request = || authhost_provider_sdk::AuthorizeRequest {
        state: "state-0123456789".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        nonce: "nonce-0123456789".into(),
        extra: vec![],
    };
    let native_url =
        provider_oidc::build_authorize_url(&discovery, &config, &native_request()).unwrap();
    assert_eq!(native_url, wasm_url, "both paths must compute the same URL");
    let mut native = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        std::hint::black_box(
            provider_oidc::build_authorize_url(&discovery, &config, &native_request()).unwrap(),
        );
        native.push(started.elapsed());
    }

    let (wm, wp) = (median(&mut wasm), p99(&mut wasm));
    let (nm, np) = (median(&mut native), p99(&mut native));
    println!("authorize-url, {CALLS} calls each:");
    println!("  component (instantiate + call): median {wm:>10.2?}  p99 {wp:>10.2?}");
    println!("  native Rust function:           median {nm:>10.2?}  p99 {np:>10.2?}");
    println!(
        "  ratio component / native:       median {:>8.0}x  p99 {:>8.0}x",
        wm.as_secs_f64() / nm.as_secs_f64(),
        wp.as_secs_f64() / np.as_secs_f64()
    );
}

fn new_runtime(cache_dir: Option<PathBuf>) -> Arc<Runtime> {
    Runtime::new(RuntimeOptions {
        cache_dir,
        ..RuntimeOptions::default()
    })
    .unwrap()
}

fn discovery_doc(issuer: &str) -> serde_json::Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
    })
}

/// A local issuer serving only its discovery document.
async fn discovery_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let doc = discovery_doc(&issuer);
    let app = axum::Router::new().route(
        "/.well-known/openid-configuration",
        get(move || async move { Json(doc) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

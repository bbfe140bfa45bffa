//! The sandboxed component host: one engine, one pre-instantiated component per
//! provider, a fresh store per call (see `call.rs`), outbound HTTP only through the host.

mod bindings;
mod call;
mod compile_cache;
mod error;
mod host_api;
mod instance;
mod kv;
mod legacy;
mod outbound;
mod outputs;
mod sandbox;

pub use bindings::{
    AuthorizeRequest, CONTRACT_EXPORT, CONTRACT_VERSION, Claims, CodeExchange, ProviderError,
    ProviderInfo, SettingKind, SettingSpec, TokenKind, TokenSet,
};

pub use error::{CallError, LoadError};
pub use instance::{InstanceSpec, ProviderInstance};
pub use outbound::ClientCredentials;
pub use sandbox::{AllowList, Limits, Sandbox};

use bindings::{ExportIndices, Provider};
use call::{CallState, EPOCH_TICK};
use compile_cache::CompileCache;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, types::ComponentItem};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Settings of the runtime as a whole (per-provider limits live in [`Limits`]).
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    /// Calls that may run at the same time (pooling allocator slots).
    pub max_concurrent_calls: u32,
    /// The largest memory any provider instance may be given.
    pub max_memory_bytes: usize,
    /// Where call counts and times go.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: None,
            max_concurrent_calls: 256,
            max_memory_bytes: 256 << 20,
            metrics: None,
        }
    }
}

/// The engine and everything shared by all providers.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    compile_cache: CompileCache,
    http: reqwest::Client,
    max_memory_bytes: usize,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// A loaded component, ready to instantiate.
pub struct ProviderComponent {
    /// The file it came from, or `bundled:<file>`.
    pub origin: String,
    pub sha256: String,
    pub size: usize,
    /// The contract version it was built against.
    pub contract: semver::Version,
    pub info: ProviderInfo,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
    /// How long compiling (or loading from the cache) took.
    pub load_time: Duration,
    pre: call::Prepared,
}

impl std::fmt::Debug for ProviderComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderComponent")
            .field("origin", &self.origin)
            .field("id", &self.info.id)
            .field("version", &self.info.version)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(config: RuntimeOptions) -> anyhow::Result<Arc<Runtime>> {
        let slots = config.max_concurrent_calls.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 8)
            .total_memories(slots * 2)
            .total_tables(slots * 8)
            .max_memory_size(config.max_memory_bytes);
        let mut wasm = Config::new();
        // Providers are glue around HTTP calls: a call spends microseconds in guest
        // code, while an optimising compile of a component costs ~350 ms on a first
        // start. Cranelift without optimisations compiles much faster.
        wasm.epoch_interruption(true)
            .cranelift_opt_level(wasmtime::OptLevel::None)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm)?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        // WASI with nothing in it: no files, no sockets, no environment; the clock,
        // randomness and stderr (captured for panic messages) work.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Provider::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
        // The 0.1.x imports, under their own names, for components built against them.
        legacy::World::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("authhost/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Arc::new(Runtime {
            compile_cache: CompileCache::new(&engine, config.cache_dir),
            engine,
            linker,
            http,
            max_memory_bytes: config.max_memory_bytes,
            metrics: config.metrics,
        }))
    }

    /// The largest per-call memory limit this runtime can enforce.
    pub fn max_memory_bytes(&self) -> usize {
        self.max_memory_bytes
    }

    /// Compile (or load from the cache) a component, check it implements a contract
    /// version this host speaks, and ask it who it is.
    pub async fn load(
        &self,
        origin: &str,
        bytes: &[u8],
    ) -> Result<Arc<ProviderComponent>, LoadError> {
        let fail = |reason: String| LoadError::new(origin, reason);
        check_header(bytes).map_err(|r| fail(r.into()))?;
        let sha256 = hex::encode(Sha256::digest(bytes));
        let started = Instant::now();
        // Compiling takes a core for a fraction of a second: off the async threads, so
        // several components compile at once and requests are not held up.
        let (cache, engine, owned, key) = (
            self.compile_cache.clone(),
            self.engine.clone(),
            bytes.to_vec(),
            sha256.clone(),
        );
        let (component, from_cache) =
            tokio::task::spawn_blocking(move || cache.load(&engine, &key, &owned))
                .await
                .map_err(|e| fail(format!("compiling was interrupted: {e}")))?
                .map_err(|e| fail(format!("is not a valid component: {e:#}")))?;
        let load_time = started.elapsed();
        let contract = self.contract_version(&component).map_err(fail)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            fail(format!(
                "needs an import authhost does not provide: {}",
                first_line(&e)
            ))
        })?;
        let exports = ExportIndices::new(&instance_pre, &contract).map_err(|e| {
            fail(format!(
                "does not implement the {CONTRACT_EXPORT} contract: {}",
                first_line(&e)
            ))
        })?;
        let pre = call::Prepared {
            instance: instance_pre,
            exports,
        };
        let sandbox = Arc::new(Sandbox::isolated(origin));
        let info = call::run(self, &pre, &sandbox, "info", |p, s| {
            Box::pin(async move { Ok(Ok(p.info(s).await?)) })
        })
        .await
        .map_err(|e| fail(format!("failed to describe itself: {e}")))?;
        check_id(&info.id).map_err(fail)?;
        let component = ProviderComponent {
            origin: origin.to_string(),
            sha256,
            size: bytes.len(),
            contract,
            info,
            from_cache,
            load_time,
            pre,
        };
        Ok(Arc::new(component))
    }

    /// The version of the provider contract the component exports, if one we speak.
    fn contract_version(&self, component: &Component) -> Result<semver::Version, String> {
        let ty = component.component_type();
        let exported: Vec<String> = ty
            .exports(&self.engine)
            .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
            .map(|(name, _)| name.to_string())
            .collect();
        let prefix = format!("{CONTRACT_EXPORT}@");
        let Some(version) = exported.iter().find_map(|n| n.strip_prefix(&prefix)) else {
            let found = if exported.is_empty() {
                "nothing".to_string()
            } else {
                exported.join(", ")
            };
            return Err(format!(
                "is not an authhost provider: it does not export {CONTRACT_EXPORT} (it exports {found})"
            ));
        };
        let version = semver::Version::parse(version).map_err(|_| {
            format!("exports {CONTRACT_EXPORT} with an invalid version `{version}`")
        })?;
        #[expect(clippy::expect_used, reason = "a constant, checked by every load test")]
        let supported = semver::Version::parse(CONTRACT_VERSION).expect("a valid version");
        // Semver for 0.x: the minor version is the compatibility line. The one before
        // (0.1.x) still loads, through the adapter in legacy.rs.
        let compatible = version.major == supported.major
            && (supported.major > 0
                || version.minor == supported.minor
                || version.minor == LEGACY_MINOR);
        if !compatible {
            return Err(format!(
                "was built against provider contract {version}, but this authhost speaks {}.{}.x \
                 (and 0.{LEGACY_MINOR}.x); rebuild it against wit/provider.wit {CONTRACT_VERSION} \
                 or upgrade authhost",
                supported.major, supported.minor
            ));
        }
        Ok(version)
    }
}

/// The 0.x minor version before the current one, still loaded (`legacy.rs`).
const LEGACY_MINOR: u64 = 1;

/// A clear word for files that are not components at all.
fn check_header(bytes: &[u8]) -> Result<(), &'static str> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0x00, 0x01, 0x00]) => Ok(()),
        Some([0, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00]) => Err(
            "is a core WebAssembly module, not a component; build it with `--target wasm32-wasip2`",
        ),
        _ => Err("is not a WebAssembly component (bad header)"),
    }
}

fn check_id(id: &str) -> Result<(), String> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "reports an invalid id `{id}` (use lowercase letters, digits and `-`)"
        ))
    }
}

fn first_line(error: &wasmtime::Error) -> String {
    format!("{error:#}")
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Advance the engine's epoch every tick, for as long as the engine lives.
#[expect(
    clippy::expect_used,
    reason = "without the ticker no call could be interrupted; refuse to start"
)]
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch thread");
}

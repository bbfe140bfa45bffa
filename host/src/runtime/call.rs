//! One call into a component: a fresh store with memory and CPU limits, the host
//! imports, and the translation of traps into [`CallError`]s.

use super::Runtime;
use super::bindings::{ExportIndices, Exports, HttpError, ProviderError, Request, Response};
use super::error::CallError;

use super::outbound::{self, OutboundPolicy};
use super::sandbox::Sandbox;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{InstancePre, ResourceTable};
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the engine's epoch advances; the CPU budget is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How much of a panicking guest's stderr is kept for the error message.
const STDERR_CAPACITY: usize = 4096;

/// The store's data for one call.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    memory: MemoryLimiter,
    http: reqwest::Client,
    http_requests: u32,
    /// Log lines written in this call.
    pub(super) log_lines: u32,
    pub(super) sandbox: Arc<Sandbox>,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl CallState {
    pub(super) async fn http_send(
        &mut self,
        request: Request,
    ) -> wasmtime::Result<Result<Response, HttpError>> {
        self.http_requests += 1;
        let limits = &self.sandbox.limits;
        if self.http_requests > limits.max_http_requests {
            wasmtime::bail!(
                "made more than {} HTTP requests in one call",
                limits.max_http_requests
            );
        }
        let policy = OutboundPolicy {
            allowed: &self.sandbox.allowed,
            limits,
            credentials: &self.sandbox.credentials,
        };
        let result = outbound::send(&self.http, &policy, request).await;
        if let Err(e) = &result {
            tracing::info!(provider = %self.sandbox.name, error = ?e, "provider request failed");
        }
        Ok(result)
    }
}

/// Refuses memory growth past the limit and remembers that it did, so the resulting
/// trap can be reported as what it is.
struct MemoryLimiter {
    max_bytes: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The future a call body returns: borrows the bindings and the store.
pub type CallFuture<'a, T> =
    Pin<Box<dyn Future<Output = wasmtime::Result<Result<T, ProviderError>>> + Send + 'a>>;

/// A component linked against the host's imports, with its exports located.
pub struct Prepared {
    pub instance: InstancePre<CallState>,
    pub exports: ExportIndices,
}

/// Run `body` against a fresh instance of `pre` under `sandbox`'s limits.
pub async fn run<T>(
    runtime: &Runtime,
    pre: &Prepared,
    sandbox: &Arc<Sandbox>,
    operation: &'static str,
    body: impl for<'a> FnOnce(&'a Exports, &'a mut Store<CallState>) -> CallFuture<'a, T>,
) -> Result<T, CallError> {
    let limits = &sandbox.limits;
    let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
    let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
    let state = CallState {
        wasi,
        table: ResourceTable::new(),
        stderr,
        memory: MemoryLimiter {
            max_bytes: limits.memory_bytes,
            exceeded: false,
        },
        http: runtime.http.clone(),
        http_requests: 0,
        log_lines: 0,
        sandbox: sandbox.clone(),
    };
    let mut store = Store::new(&runtime.engine, state);
    store.limiter(|state| &mut state.memory);
    let budget_ticks = (limits.cpu_time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
    let mut ticks_used = 0u64;
    store.set_epoch_deadline(1);
    // Each tick spent in guest code counts against the budget; waiting on host HTTP
    // does not, since the deadline is only checked while guest code runs.
    store.epoch_deadline_callback(move |_| {
        ticks_used += 1;
        if ticks_used > budget_ticks {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });

    let call = async {
        let instance = pre.instance.instantiate_async(&mut store).await?;
        let exports = pre.exports.load(&mut store, &instance)?;
        body(&exports, &mut store).await
    };
    let outcome = tokio::time::timeout(limits.call_timeout, call).await;
    let provider = sandbox.name.clone();
    match outcome {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(error))) => Err(CallError::Provider {
            provider,
            operation,
            error,
        }),
        Err(_) => Err(CallError::Timeout {
            provider,
            operation,
            limit_ms: limits.call_timeout.as_millis() as u64,
        }),
        Ok(Err(trap)) => {
            let error = classify_trap(trap, &store, provider, operation);
            tracing::warn!(error = %error, "provider call aborted");
            Err(error)
        }
    }
}

fn classify_trap(
    trap: wasmtime::Error,
    store: &Store<CallState>,
    provider: String,
    operation: &'static str,
) -> CallError {
    let state = store.data();
    let limits = &state.sandbox.limits;
    if matches!(trap.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return CallError::CpuLimit {
            provider,
            operation,
            limit_ms: limits.cpu_time.as_millis() as u64,
        };
    }
    if state.memory.exceeded {
        return CallError::MemoryLimit {
            provider,
            operation,
            limit_mib: (limits.memory_bytes >> 20) as u64,
        };
    }
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
    if let Some(panic) = stderr.lines().find(|l| l.contains("panicked at")) {
        let message = stderr
            .lines()
            .skip_while(|l| !l.contains("panicked at"))
            .skip(1)
            .take_while(|l| !l.starts_with("note:"))
            .collect::<Vec<_>>()
            .join(" ");
        return CallError::Panicked {
            provider,
            operation,
            message: format!("{} ({})", message.trim(), panic.trim()),
        };
    }
    // The root cause is the trap itself or the host's reason for aborting; the outer
    // layers are wasm backtraces.
    CallError::Crashed {
        provider,
        operation,
        detail: trap.root_cause().to_string(),
    }
}

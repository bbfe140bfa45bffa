//! authhost: an OAuth 2.1 authorization server and gateway for MCP, whose upstream
//! identity providers are sandboxed WebAssembly components.
//!
//! - [`runtime`]: the component host (engine, limits, outbound HTTP, compile cache).
//! - [`registry`]: loading components (bundled and from a folder) and configured instances.
//! - [`config`]: the TOML configuration.
//! - [`oauth`]: the authorization server MCP clients talk to.
//! - [`gateway`]: bearer validation and the streaming proxy to MCP servers.
//! - [`store`]: SQLite / PostgreSQL state.
//! - [`dev`]: the embedded default of `serve --dev`.
//! - [`audit`], [`metrics`], [`forwarded`]: operations (audit log, Prometheus, proxies).
//! - [`cli`], [`check`], [`admin`]: the operator's commands.

pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conformance;
pub mod cors;
pub mod crypto;
pub mod dev;
pub mod domain;
pub mod forwarded;
pub mod gateway;
pub mod metrics;
pub mod oauth;
pub mod pages;
pub mod rate_limit;
pub mod registry;
pub mod runtime;
pub mod secret;
pub mod server;
pub mod state;
pub mod store;

/// Where the build put the test-only components (`providers/testing/*`).
#[doc(hidden)]
pub mod testing {
    pub const GUEST_DIR: &str = env!("AUTHHOST_GUEST_DIR");
}

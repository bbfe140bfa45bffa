//! authhost: an OAuth 2.1 authorization server and gateway for MCP, whose upstream
//! identity providers are sandboxed WebAssembly components.
//!
//! - [`runtime`]: the component host (engine, limits, outbound HTTP, compile cache).
//! - [`registry`]: loading components (bundled and from a folder) and configured instances.
//! - [`config`]: the TOML configuration.

pub mod config;
pub mod registry;
pub mod runtime;
pub mod secret;
pub mod server;

/// Where the build put the test-only components (`providers/testing/*`).
#[doc(hidden)]
pub mod testing {
    pub const GUEST_DIR: &str = env!("AUTHHOST_GUEST_DIR");
}

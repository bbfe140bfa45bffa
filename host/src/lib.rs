//! authhost: an OAuth 2.1 authorization server and gateway for MCP, whose upstream
//! identity providers are sandboxed WebAssembly components. The floors, top to bottom
//! (each imports only those below it; ARCHITECTURE.md has the whole map):
//!
//! - [`cli`]: every operator command; [`server`]: assembling and running the server.
//! - [`oauth`], [`gateway`], [`dev`]: the HTTP layers, side by side: the authorization
//!   server, the proxy in front of MCP servers, the embedded default of `serve --dev`.
//! - [`state`]: the domain's services, composed for the handlers.
//! - [`domain`]: sign-ins, grants, users, upstream tokens, resources, keys, clients,
//!   enterprise and external tokens, PKCE, OAuth errors, with no request handling in
//!   them.
//! - [`registry`]: provider components and configured instances; [`config`]: the TOML
//!   configuration; [`runtime`]: the component host; [`conformance`]: its checks.
//! - [`store`]: SQLite / PostgreSQL state.
//! - Support any floor may use: [`clock`], [`crypto`], [`secret`], [`audit`],
//!   [`metrics`], [`forwarded`], [`rate_limit`], [`pages`], [`cors`].

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

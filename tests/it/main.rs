//! One integration test binary: real components, real HTTP, a real OpenID provider.

mod common;
mod loading;
mod oidc_provider;
mod sandbox;

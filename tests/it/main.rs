//! One integration test binary: real components, real HTTP, a real OpenID provider.

mod authorization;
mod common;
mod conformance;
mod gateway;
mod loading;
mod mcp_sdk;
mod oidc_provider;
mod persistence;
mod providers;
mod sandbox;

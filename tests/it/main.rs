//! One integration test binary: real components, real HTTP, a real OpenID provider.

mod auth_modes;
mod authorization;
mod common;
mod conformance;
mod gateway;
mod loading;
mod mcp_sdk;
mod oidc_provider;
mod operations;
mod persistence;
mod policies;
mod providers;
mod sandbox;

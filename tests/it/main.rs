//! One integration test binary: real components, real HTTP, a real OpenID provider.

mod abuse;
mod auth_modes;
mod authorization;
mod browser_clients;
mod client_metadata;
mod common;
mod conformance;
mod delegation;
mod enterprise;
mod external_auth;
mod gateway;
mod gateway_fail_closed;
mod gateway_hygiene;
mod loading;
mod machine_clients;
mod mcp_sdk;
mod oidc_provider;
mod operations;
mod persistence;
mod policies;
mod providers;
mod sandbox;
mod sign_in_binding;
mod signing_keys;
mod token_lifecycle;

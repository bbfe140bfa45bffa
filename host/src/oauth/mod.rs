//! authhost as the OAuth 2.1 authorization server of MCP clients.

pub mod authorize;
pub mod callback;
pub mod client_metadata;
pub mod clients;
pub mod error;
pub mod jwt;
pub mod metadata;
pub mod redirect_patterns;
pub mod register;
pub mod revoke;
pub mod token;

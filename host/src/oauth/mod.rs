//! authhost as the OAuth 2.1 authorization server of MCP clients: the HTTP endpoints.
//! What they decide about lives in `domain/` (grants, clients, keys, resources).

pub mod authorize;
pub mod callback;
pub mod client_auth;
pub mod client_credentials;
pub mod error;
pub mod jwt_bearer;
pub mod metadata;
pub mod rate_limited;
pub mod redirect_patterns;
pub mod register;
pub mod revoke;
pub mod token;
pub mod token_exchange;

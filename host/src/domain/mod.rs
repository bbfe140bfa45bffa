//! The floor both HTTP layers stand on (`oauth/`, the authorization server, and
//! `gateway/`, the proxy): what a sign-in produces and what tokens mean, with no HTTP
//! in it. Its services are given their dependencies (store, sealer, registry, clock).
//!
//! - [`user`]: the signed-in user, in the shape grants, tokens and policies share.
//! - [`grants`]: a grant's lifecycle: created at sign-in, confirmed with the upstream
//!   on refresh, its upstream tokens refreshed under a lease, revoked.
//! - [`sign_in`]: an approved request's round trip through the upstream, returned
//!   at most once.
//! - [`upstream_tokens`]: the user's upstream token set as a grant keeps it.
//! - [`resources`]: the protected MCP servers as tokens name them.
//! - [`keys`]: signing keys, access token claims, signing and verifying.
//! - [`clients`], [`client_metadata`]: who a client is (configured, registered, or a
//!   metadata document), and creating clients (registration, the operator's command);
//!   [`client_assertion`]: clients proving who they are with signed JWTs.
//! - [`oauth_error`]: OAuth error codes and what they mean.
//! - [`pkce`]: S256 challenges and their verifiers.
//! - [`id_jag`]: enterprise identity providers' assertions that a user may use a
//!   client at an MCP server.
//! - [`external_tokens`]: access tokens of an external authorization server.
//! - [`jwks`]: keys others publish, fetched and cached.
//! - [`guarded_fetch`]: fetching what others' URLs name, with an SSRF guard.
//! - [`cache`]: a map whose entries expire, for verified tokens and grants.

pub mod cache;
pub mod client_assertion;
pub mod client_metadata;
pub mod clients;
pub mod external_tokens;
pub mod grants;
pub mod guarded_fetch;
pub mod id_jag;
pub mod jwks;
pub mod keys;
pub mod oauth_error;
pub mod pkce;
pub mod resources;
pub mod sign_in;
pub mod upstream_tokens;
pub mod user;

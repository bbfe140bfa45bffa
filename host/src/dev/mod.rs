//! The embedded default of `authhost serve --dev`: a development identity provider
//! (served through the generic OIDC component, so the real component path runs) and a
//! small demo MCP server behind the gateway.

pub mod demo_mcp;
pub mod idp;

//! Discovery: RFC 8414 authorization server metadata (also at the OpenID location),
//! RFC 9728 protected resource metadata, and the JWKS.

use crate::domain::resources::ProtectedResource as Resource;
use crate::domain::{id_jag, jwks};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn authorization_server(State(state): State<AppState>) -> Json<Value> {
    Json(server_metadata(&state))
}

/// The same document at the OpenID Connect location, for MCP clients that look there
/// (the MCP authorization spec lets them). authhost is an OAuth authorization server,
/// not an OpenID Provider: the document claims no ID tokens, no userinfo and no
/// `openid` scope.
pub async fn openid_configuration(State(state): State<AppState>) -> Json<Value> {
    Json(server_metadata(&state))
}

fn server_metadata(state: &AppState) -> Value {
    let issuer = &state.issuer;
    let mut scopes: Vec<&str> = state
        .resources
        .oauth()
        .flat_map(|r| r.offered_scopes.iter())
        .map(String::as_str)
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes.push("offline_access");
    let auth_methods = json!([
        "none",
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt"
    ]);
    let assertion_algorithms: Vec<String> = jwks::ALGORITHMS
        .iter()
        .map(|alg| format!("{alg:?}"))
        .collect();
    let mut grant_types = vec!["authorization_code", "refresh_token", "client_credentials"];
    if !state.trusted_issuers.is_empty() {
        grant_types.push(id_jag::GRANT_TYPE);
    }
    if state.resources.all().any(|r| r.delegation.is_some()) {
        grant_types.push(super::token_exchange::GRANT_TYPE);
    }
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": state.clients.metadata_documents_enabled(),
    });
    if state.config.registration.enabled {
        doc["registration_endpoint"] = json!(format!("{issuer}/register"));
    }
    doc
}

fn resource_metadata(resource: &Resource) -> Value {
    json!({
        "resource": resource.url,
        "authorization_servers": [resource.authorization_server],
        "scopes_supported": resource.scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": resource.display_name,
    })
}

/// `/.well-known/oauth-protected-resource/<path>` for the resource at `<path>`.
pub async fn protected_resource(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Response {
    let path = format!("/{}", path.trim_start_matches('/'));
    match state.resources.with_metadata().find(|r| r.path == path) {
        Some(resource) => Json(resource_metadata(resource)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no protected resource at this path"})),
        )
            .into_response(),
    }
}

/// The root location: the only (or first) resource.
pub async fn protected_resource_root(State(state): State<AppState>) -> Response {
    match state.resources.with_metadata().next() {
        Some(resource) => Json(resource_metadata(resource)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no protected resources configured"})),
        )
            .into_response(),
    }
}

pub async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(state.signer.jwks())
}

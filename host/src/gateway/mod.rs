//! The gateway in front of an MCP server: who is calling (per the server's auth mode),
//! whether the server's policy lets them in and lets them call the tools they ask for,
//! then a faithful streaming proxy with their identity and, where configured, their
//! upstream token. Decided on every request: MCP has no session to lean on.

pub mod cache;
pub mod caller;
pub mod forward;
pub mod jsonrpc;
pub mod policy;
mod reject;
pub mod resource;
pub mod upstream_token;

use crate::audit::Event;
use crate::state::{AppState, Resource};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use caller::{Caller, Rejection, Via};
use policy::ToolDenial;
use serde_json::Value;
use std::sync::Arc;

pub async fn handle(
    State(state): State<AppState>,
    resource: Arc<Resource>,
    request: Request,
) -> Response {
    let Some(token) = caller::bearer(request.headers()) else {
        state.metrics.gateway(&resource.name, "unauthenticated");
        return reject::unauthorized(&state, &resource, None);
    };
    // An address that keeps presenting bad credentials is not heard for a while.
    let addr = crate::rate_limit::client_addr();
    if let Err(wait) = state.rate_limits.check_blocked(addr) {
        state.metrics.gateway(&resource.name, "rate_limited");
        return reject::too_many(wait);
    }
    let caller = match caller::authenticate(&state, &resource, token).await {
        Ok(caller) => caller,
        Err(rejection) => {
            if matches!(rejection, Rejection::Unauthenticated(_)) {
                state.rate_limits.auth_failed(addr);
            }
            return rejected(&state, &resource, rejection);
        }
    };
    if let Err(why) = resource.policy.admits(&caller) {
        deny(&state, &resource, &caller, why.clone());
        state.metrics.gateway(&resource.name, "forbidden");
        let body = jsonrpc::error(
            Value::Null,
            jsonrpc::POLICY_DENIED,
            &format!("authhost policy: {why}"),
        );
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    let (parts, body) = request.into_parts();
    if !(resource.policy.restricts_tools() && parts.method == Method::POST) {
        let body = reqwest::Body::wrap_stream(body.into_data_stream());
        return forward::proxy(&state, &resource, &caller, parts, body, None).await;
    }
    // Tool policies: read the request to see which tools it calls or lists.
    let bytes = match axum::body::to_bytes(body, resource.settings.max_request_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return forward::upstream_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the request is larger than {} bytes",
                    resource.settings.max_request_bytes
                ),
            );
        }
    };
    let inspected = jsonrpc::inspect(&bytes).unwrap_or_default();
    let denied: Vec<(Value, ToolDenial)> = inspected
        .calls
        .iter()
        .filter_map(|(id, tool)| {
            let denial = resource.policy.allows_tool(&caller, tool).err()?;
            Some((id.clone(), denial))
        })
        .collect();
    // An OAuth client lacking only scopes can get them: challenge it to step up
    // (MCP's scope challenge), for a single call; anything else is a JSON-RPC error.
    if let [(_, denial)] = &denied[..]
        && inspected.ids.len() == 1
        && can_step_up(&caller, denial)
    {
        deny(&state, &resource, &caller, denial.reason.clone());
        state.metrics.gateway(&resource.name, "forbidden");
        let mut needed = resource.scopes.clone();
        needed.extend(denial.missing_scopes.iter().cloned());
        return reject::insufficient_scope(&state, &resource, &needed);
    }
    if !denied.is_empty() {
        state.metrics.gateway(&resource.name, "denied_tool");
        return deny_calls(&state, &resource, &caller, &inspected, denied);
    }
    let filter = inspected.lists_tools.then(|| {
        let (resource, caller) = (resource.clone(), caller.clone());
        // Tools behind a scope an OAuth client can step up to stay listed.
        Arc::new(
            move |tool: &str| match resource.policy.allows_tool(&caller, tool) {
                Ok(()) => true,
                Err(denial) => can_step_up(&caller, &denial),
            },
        ) as jsonrpc::ToolFilter
    });
    forward::proxy(
        &state,
        &resource,
        &caller,
        parts,
        reqwest::Body::from(bytes),
        filter,
    )
    .await
}

/// Whether a new authorization would get the caller past `denial`: only scopes are
/// missing, and the caller is an OAuth client (API keys and shared tokens cannot ask).
fn can_step_up(caller: &Caller, denial: &ToolDenial) -> bool {
    caller.via == Via::Oauth && !denial.missing_scopes.is_empty()
}

fn rejected(state: &AppState, resource: &Resource, rejection: Rejection) -> Response {
    match rejection {
        Rejection::Unauthenticated(why) => {
            state.metrics.gateway(&resource.name, "unauthenticated");
            // Credentials that were presented and did not work (an expired token, a
            // revoked key, a guess); never the credential itself.
            state.audit.record(Event {
                event: "authentication_failed",
                resource: Some(&resource.name),
                detail: why.clone(),
                ..Event::default()
            });
            reject::unauthorized(state, resource, why.as_deref())
        }
        Rejection::InsufficientScope => {
            state.metrics.gateway(&resource.name, "forbidden");
            reject::insufficient_scope(state, resource, &resource.scopes)
        }
        Rejection::Unavailable(what) => {
            forward::upstream_error(StatusCode::SERVICE_UNAVAILABLE, what)
        }
    }
}

/// A JSON-RPC error for each denied call; in a batch, the other requests are not run
/// either (and say so), since the batch was not forwarded.
fn deny_calls(
    state: &AppState,
    resource: &Resource,
    caller: &Caller,
    inspected: &jsonrpc::Inspected,
    denied: Vec<(Value, ToolDenial)>,
) -> Response {
    for (_, denial) in &denied {
        deny(state, resource, caller, denial.reason.clone());
    }
    let error_for = |id: &Value| match denied.iter().find(|(d, _)| d == id) {
        Some((_, denial)) => jsonrpc::error(
            id.clone(),
            jsonrpc::POLICY_DENIED,
            &format!("authhost policy: {}", denial.reason),
        ),
        None => jsonrpc::error(
            id.clone(),
            jsonrpc::POLICY_DENIED,
            "not run: the batch contains a call authhost's policy denies",
        ),
    };
    let body = if inspected.ids.len() == 1 {
        error_for(&inspected.ids[0])
    } else {
        Value::Array(inspected.ids.iter().map(error_for).collect())
    };
    axum::Json(body).into_response()
}

fn deny(state: &AppState, resource: &Resource, caller: &Caller, why: String) {
    state.audit.record(Event {
        event: "access_denied",
        user: Some(&caller.user.sub),
        client_id: caller.client_id.as_deref(),
        provider: caller.provider.as_deref(),
        resource: Some(&resource.name),
        detail: Some(why),
    });
}

//! The gateway in front of an MCP server: who is calling (per the server's auth mode),
//! whether the server's policy lets them in and lets them use the tools, resources and
//! prompts they ask for, then a faithful streaming proxy with their identity and, where
//! configured, their upstream token. Decided on every request: MCP has no session to
//! lean on. Every decision fails closed: what cannot be judged is not forwarded.

pub mod body;
pub mod caller;
pub mod error;
pub mod forward;
pub mod jsonrpc;
pub mod policy;
pub mod resource;

use crate::domain::cache::ExpiringCache;
use crate::domain::grants::ActiveGrant;
use crate::domain::user::User;
use crate::state::{AppState, Shared};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use body::{Judged, Refusal};
use caller::VerifiedToken;
use caller::{Caller, Rejection, Via};
use error::GatewayError;
use forward::IdentityValues;
use policy::Denial;
use resource::Resource;
use serde_json::Value;
use std::ops::Deref;
use std::sync::Arc;

/// The gateway: the shared state, the MCP servers it fronts, the client it reaches
/// them with, and what it remembers between requests.
pub struct Gateway {
    pub app: AppState,
    pub routes: Vec<Arc<Resource>>,
    /// For proxying to MCP servers.
    pub http: forward::UpstreamClient,
    /// Access tokens whose signature checked out, until they expire.
    pub access_tokens: ExpiringCache<Arc<VerifiedToken>>,
    /// Grants found active, with the store's grant change count at the time, and the
    /// identity header values of their user, computed once.
    pub active_grants: ExpiringCache<(Arc<ActiveGrant>, Arc<IdentityValues>, u64)>,
    /// Upstream tokens checked in `client_token` mode, by provider and token hash:
    /// the user, or `None` when the provider refused the token.
    pub client_tokens: ExpiringCache<Option<User>>,
}

/// The gateway reads the shared state as its own.
impl Deref for Gateway {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.app
    }
}

impl Gateway {
    pub fn new(app: AppState, routes: Vec<Arc<Resource>>) -> anyhow::Result<Gateway> {
        Ok(Gateway {
            app,
            routes,
            http: forward::upstream_client()?,
            access_tokens: ExpiringCache::default(),
            active_grants: ExpiringCache::default(),
            client_tokens: ExpiringCache::default(),
        })
    }
}

pub async fn handle(state: Arc<Gateway>, resource: Arc<Resource>, request: Request) -> Response {
    let caller = match admit(&state, &resource, request.headers()).await {
        Ok(caller) => caller,
        Err(error) => return error.respond(&state, &resource, None),
    };
    match pass(&state, &resource, &caller, request).await {
        Ok(response) => {
            state.metrics.gateway(&resource.name, "forwarded");
            response
        }
        Err(error) => error.respond(&state, &resource, Some(&caller)),
    }
}

/// Who is calling, if they may use this server at all.
async fn admit(
    state: &Gateway,
    resource: &Resource,
    headers: &HeaderMap,
) -> Result<Caller, GatewayError> {
    check_origin(state, headers)?;
    let token = caller::credentials(headers, &resource.api_key_headers).map_err(|why| {
        GatewayError::BadRequest {
            status: StatusCode::BAD_REQUEST,
            code: jsonrpc::INVALID_REQUEST,
            message: why.into(),
        }
    })?;
    let Some(token) = token else {
        return Err(GatewayError::Unauthenticated(None));
    };
    // An address that keeps presenting bad credentials is not heard for a while.
    let addr = crate::rate_limit::client_addr();
    state
        .rate_limits
        .check_blocked(addr)
        .map_err(GatewayError::RateLimited)?;
    let caller = caller::authenticate(state, resource, token)
        .await
        .map_err(|rejection| match rejection {
            Rejection::Unauthenticated(why) => {
                state.rate_limits.auth_failed(addr);
                GatewayError::Unauthenticated(why)
            }
            Rejection::InsufficientScope => {
                GatewayError::InsufficientScope(resource.scopes.clone())
            }
            Rejection::Unavailable(what) => GatewayError::Unavailable(what.into()),
        })?;
    resource
        .policy
        .admits(&caller)
        .map_err(GatewayError::Forbidden)?;
    Ok(caller)
}

/// A page on another site may not drive a user's browser (and cookies-free bearer
/// tokens are no defence against DNS rebinding): an `Origin` header, when present,
/// must be `base_url`'s, one of `cors_origins` or one of `allowed_origins`.
fn check_origin(state: &Gateway, headers: &HeaderMap) -> Result<(), GatewayError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    let server = &state.config.server;
    let allowed = server
        .cors_origins
        .iter()
        .chain(&server.allowed_origins)
        .any(|o| o == "*" || o.trim_end_matches('/') == origin)
        || state
            .issuer
            .strip_prefix(origin)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if allowed {
        Ok(())
    } else {
        Err(GatewayError::ForeignOrigin(origin.to_string()))
    }
}

/// Look into the request where the policy needs to, then forward it.
async fn pass(
    state: &Gateway,
    resource: &Arc<Resource>,
    caller: &Caller,
    request: Request,
) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    if !resource.policy.inspects_bodies() {
        return forward::proxy(state, resource, caller, parts, body, true, None).await;
    }
    // The policy looks into bodies: each is read whole and judged, and only what was
    // judged goes on.
    let limit = resource.settings.max_request_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| GatewayError::TooLarge(limit))?;
    if parts.method != Method::POST {
        if !bytes.is_empty() {
            return Err(bad_request(Refusal::Malformed(format!(
                "a {} request must not have a body",
                parts.method
            ))));
        }
        let empty = Body::empty();
        return forward::proxy(state, resource, caller, parts, empty, false, None).await;
    }
    let judged = body::judge(&parts.headers, &bytes).map_err(bad_request)?;
    check_targets(resource, caller, &judged)?;
    let filter = judged.lists().then(|| {
        let (resource, caller) = (resource.clone(), caller.clone());
        // What an OAuth client could step up to stays listed.
        Arc::new(
            move |target: &body::Target| match resource.policy.allows(&caller, target) {
                Ok(()) => true,
                Err(denial) => can_step_up(&caller, &denial),
            },
        ) as jsonrpc::Filter
    });
    let canonical = Body::from(judged.canonical);
    forward::proxy(state, resource, caller, parts, canonical, false, filter).await
}

fn bad_request(refusal: Refusal) -> GatewayError {
    let status = refusal.status();
    let (code, message) = match refusal {
        Refusal::Unsupported(m) => (jsonrpc::PARSE_ERROR, m),
        Refusal::Malformed(m) => (jsonrpc::INVALID_REQUEST, m),
        Refusal::HeaderMismatch(m) => (error::HEADER_MISMATCH, format!("Header mismatch: {m}")),
    };
    GatewayError::BadRequest {
        status,
        code,
        message,
    }
}

/// Every tool called, resource read and prompt got must be allowed; otherwise nothing
/// of the body is forwarded.
fn check_targets(
    resource: &Resource,
    caller: &Caller,
    judged: &Judged,
) -> Result<(), GatewayError> {
    let denied: Vec<(usize, Denial)> = judged
        .messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let denial = resource.policy.allows(caller, m.target.as_ref()?).err()?;
            Some((i, denial))
        })
        .collect();
    if denied.is_empty() {
        return Ok(());
    }
    // An OAuth client lacking only scopes can get them: challenge it to step up (MCP's
    // scope challenge), for a single request; anything else is a JSON-RPC error.
    if let [(_, denial)] = &denied[..]
        && judged.messages.len() == 1
        && can_step_up(caller, denial)
    {
        let mut needed = resource.scopes.clone();
        needed.extend(denial.missing_scopes.iter().cloned());
        return Err(GatewayError::InsufficientScope(needed));
    }
    Err(denied_answer(judged, denied))
}

/// The JSON-RPC answer to a body with denied requests: an error for each request (the
/// others in a batch say they were not run, since the batch was not forwarded);
/// notifications get none, so a body of only notifications gets one error without id.
fn denied_answer(judged: &Judged, denied: Vec<(usize, Denial)>) -> GatewayError {
    let answers: Vec<Value> = judged
        .messages
        .iter()
        .enumerate()
        .filter_map(|(i, message)| {
            let id = message.id.clone()?;
            let text = match denied.iter().find(|(d, _)| *d == i) {
                Some((_, denial)) => format!("authhost policy: {}", denial.reason),
                None => "not run: the batch contains a request authhost's policy denies".into(),
            };
            Some(jsonrpc::error(id, error::POLICY_DENIED, &text))
        })
        .collect();
    let reasons: Vec<String> = denied.into_iter().map(|(_, d)| d.reason).collect();
    let answer = match (judged.batch, answers.len()) {
        (_, 0) => jsonrpc::error(
            Value::Null,
            error::POLICY_DENIED,
            &format!("authhost policy: {}", reasons.join("; ")),
        ),
        (false, _) => answers.into_iter().next().unwrap_or_default(),
        (true, _) => Value::Array(answers),
    };
    GatewayError::Denied { answer, reasons }
}

/// Whether a new authorization would get the caller past `denial`: only scopes are
/// missing, and the caller is an OAuth client (API keys and shared tokens cannot ask).
fn can_step_up(caller: &Caller, denial: &Denial) -> bool {
    caller.via == Via::Oauth && !denial.missing_scopes.is_empty()
}

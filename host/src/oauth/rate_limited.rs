//! 429 for the authorization server's endpoints when the client's address went over
//! its rate limit (`rate_limit.rs`), in the shape each endpoint's callers read.

use super::error::{ErrorPage, OAuthError};
use crate::rate_limit::{Endpoint, RateLimits, client_addr};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// Middleware for one endpoint's routes.
pub async fn limit(
    State((limits, endpoint)): State<(Arc<RateLimits>, Endpoint)>,
    request: Request,
    next: Next,
) -> Response {
    match limits.check(endpoint, client_addr()) {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many(endpoint, wait),
    }
}

/// 429 in the shape the endpoint's callers read: a page for a person at `/authorize`,
/// an OAuth error otherwise.
pub fn too_many(endpoint: Endpoint, wait: Duration) -> Response {
    let seconds = wait.as_secs().max(1);
    let message = format!("Too many requests from your address; try again in {seconds} s.");
    let mut response = match endpoint {
        Endpoint::Authorize => {
            ErrorPage::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests", message)
                .into_response()
        }
        _ => OAuthError::temporarily_unavailable(message)
            .with_status(StatusCode::TOO_MANY_REQUESTS)
            .into_response(),
    };
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&seconds.to_string()).unwrap_or(HeaderValue::from_static("1")),
    );
    response
}

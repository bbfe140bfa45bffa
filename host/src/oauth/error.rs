//! OAuth errors in their wire shape (RFC 6749 5.2, RFC 7591 3.2.2), and readable pages
//! for people in a browser.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

/// An error answered to a client as `{"error": ..., "error_description": ...}`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    pub status: StatusCode,
}

impl OAuthError {
    fn new(code: &'static str, status: StatusCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            status,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", StatusCode::BAD_REQUEST, d)
    }
    /// RFC 6749 5.2: 401 with a challenge when the client used HTTP authentication.
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", StatusCode::UNAUTHORIZED, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", StatusCode::BAD_REQUEST, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", StatusCode::BAD_REQUEST, d)
    }
    /// An authenticated client that may not use this endpoint.
    pub fn forbidden_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", StatusCode::FORBIDDEN, d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", StatusCode::BAD_REQUEST, d)
    }
    pub fn unsupported_response_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_response_type", StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new("invalid_target", StatusCode::BAD_REQUEST, d)
    }
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new("access_denied", StatusCode::FORBIDDEN, d)
    }
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new("invalid_redirect_uri", StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new("invalid_client_metadata", StatusCode::BAD_REQUEST, d)
    }
    pub fn server_error(d: impl Into<String>) -> Self {
        Self::new("server_error", StatusCode::INTERNAL_SERVER_ERROR, d)
    }
    pub fn temporarily_unavailable(d: impl Into<String>) -> Self {
        Self::new(
            "temporarily_unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            d,
        )
    }

    /// An internal failure: logged in full, answered generically.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!("{context}: {error}");
        Self::server_error(format!("{context}; see the server log"))
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(error: sqlx::Error) -> Self {
        OAuthError::internal("database error", error)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "error_description": self.description }));
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"authhost\""),
            );
        }
        response
    }
}

/// A page for a person: what went wrong and what to do, never internals.
pub struct ErrorPage {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
}

impl ErrorPage {
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorPage {
            status,
            title: title.into(),
            message: message.into(),
        }
    }
}

impl From<OAuthError> for ErrorPage {
    fn from(error: OAuthError) -> Self {
        // A 401 asks for HTTP authentication, which means nothing to a person here.
        let status = match error.status {
            StatusCode::UNAUTHORIZED => StatusCode::BAD_REQUEST,
            other => other,
        };
        ErrorPage::new(status, "Authorization failed", error.description)
    }
}

impl From<sqlx::Error> for ErrorPage {
    fn from(error: sqlx::Error) -> Self {
        OAuthError::from(error).into()
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        let html = crate::pages::render(
            "error.html",
            minijinja::context! { title => self.title, message => self.message },
        );
        (self.status, crate::pages::secure_headers(), Html(html)).into_response()
    }
}

//! OAuth errors (RFC 6749 5.2 and 4.1.2.1, RFC 7591 3.2.2, RFC 8707 2, RFC 6750 3.1):
//! the registered code, what it means to the client, and the HTTP status it is answered
//! with. `oauth/error.rs` turns them into responses and pages.

use axum::http::StatusCode;

/// The registered error codes authhost answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    /// RFC 8707: the `resource` is not one this server issues tokens for.
    InvalidTarget,
    AccessDenied,
    /// RFC 7591 3.2.2.
    InvalidRedirectUri,
    InvalidClientMetadata,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::UnsupportedResponseType,
        ErrorCode::InvalidScope,
        ErrorCode::InvalidTarget,
        ErrorCode::AccessDenied,
        ErrorCode::InvalidRedirectUri,
        ErrorCode::InvalidClientMetadata,
        ErrorCode::ServerError,
        ErrorCode::TemporarilyUnavailable,
    ];

    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The status a JSON error response with this code gets: 400 unless the RFCs
    /// say otherwise.
    pub fn status(self) -> StatusCode {
        match self {
            // RFC 6749 5.2: 401 when the client tried to authenticate.
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An error answered to a client as `{"error": ..., "error_description": ...}`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// For the client: never internals.
    pub description: String,
    pub status: StatusCode,
    /// For the operator: what failed inside, logged once by the HTTP middleware and
    /// never sent.
    pub cause: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            status: code.status(),
            cause: None,
        }
    }

    /// The same error answered with another status (413, 429, 403).
    pub fn with_status(self, status: StatusCode) -> Self {
        OAuthError { status, ..self }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    /// An authenticated client that may not use this endpoint.
    pub fn forbidden_client(d: impl Into<String>) -> Self {
        Self::unauthorized_client(d).with_status(StatusCode::FORBIDDEN)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedGrantType, d)
    }
    pub fn unsupported_response_type(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedResponseType, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, d)
    }
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::AccessDenied, d)
    }
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRedirectUri, d)
    }
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClientMetadata, d)
    }
    pub fn server_error(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServerError, d)
    }
    pub fn temporarily_unavailable(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::TemporarilyUnavailable, d)
    }

    /// An internal failure: answered generically, its cause kept for the log.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        OAuthError {
            cause: Some(format!("{context}: {error}")),
            ..Self::server_error(format!("{context}; see the server log"))
        }
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(error: sqlx::Error) -> Self {
        OAuthError::internal("database error", error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_registered_name_and_status() {
        let expected = [
            ("invalid_request", 400),
            ("invalid_client", 401),
            ("invalid_grant", 400),
            ("unauthorized_client", 400),
            ("unsupported_grant_type", 400),
            ("unsupported_response_type", 400),
            ("invalid_scope", 400),
            ("invalid_target", 400),
            ("access_denied", 403),
            ("invalid_redirect_uri", 400),
            ("invalid_client_metadata", 400),
            ("server_error", 500),
            ("temporarily_unavailable", 503),
        ];
        let actual: Vec<(&str, u16)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str(), c.status().as_u16()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn an_internal_error_tells_the_client_nothing_of_its_cause() {
        let error = OAuthError::internal("storing the grant", "disk I/O error at /var/db");
        assert_eq!(error.code, ErrorCode::ServerError);
        assert!(!error.description.contains("disk"), "{}", error.description);
        assert_eq!(
            error.cause.as_deref(),
            Some("storing the grant: disk I/O error at /var/db")
        );
    }

    #[test]
    fn a_forbidden_client_keeps_its_code_with_status_403() {
        let error = OAuthError::forbidden_client("introspection is for resource servers");
        assert_eq!(
            (error.code, error.status),
            (ErrorCode::UnauthorizedClient, StatusCode::FORBIDDEN)
        );
    }
}

//! OAuth errors as responses (JSON for clients, RFC 6749 5.2) and readable pages for
//! people in a browser. What failed inside travels in the response's extensions as a
//! [`Failure`], logged once by the server's middleware.

pub use crate::domain::oauth_error::{ErrorCode, OAuthError};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

/// An internal failure behind a response, for the log only.
#[derive(Debug, Clone)]
pub struct Failure(pub String);

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = Json(json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        }));
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"authhost\""),
            );
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(Failure(cause));
        }
        response
    }
}

/// A page for a person: what went wrong and what to do, never internals.
pub struct ErrorPage {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    cause: Option<String>,
}

impl ErrorPage {
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorPage {
            status,
            title: title.into(),
            message: message.into(),
            cause: None,
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
        ErrorPage {
            cause: error.cause,
            ..ErrorPage::new(status, "Authorization failed", error.description)
        }
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
        let mut response =
            (self.status, crate::pages::secure_headers(), Html(html)).into_response();
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(Failure(cause));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn an_error_is_answered_in_the_rfc_6749_shape_and_never_cached() {
        let response = OAuthError::invalid_grant("the code has expired").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(
            body(response).await,
            json!({"error": "invalid_grant", "error_description": "the code has expired"})
        );
    }

    #[tokio::test]
    async fn invalid_client_challenges_for_http_authentication() {
        let response = OAuthError::invalid_client("unknown client").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"authhost\""
        );
    }

    #[tokio::test]
    async fn an_internal_cause_goes_to_the_log_not_the_client() {
        let response = OAuthError::internal("signing", "key 7 unreadable").into_response();
        let failure = response.extensions().get::<Failure>().cloned();
        assert_eq!(
            failure.map(|f| f.0).as_deref(),
            Some("signing: key 7 unreadable")
        );
        let text = body(response).await.to_string();
        assert!(!text.contains("key 7"), "{text}");
    }

    #[test]
    fn a_page_never_asks_a_person_for_http_authentication() {
        let page = ErrorPage::from(OAuthError::invalid_client("unknown client"));
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert_eq!(page.message, "unknown client");
    }
}

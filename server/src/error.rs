//! One error type for every handler: 4xx with a clear message for bad
//! input, an opaque 500 (logged) for bugs and storage failures.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed or invalid input.
    #[error("{0}")]
    BadRequest(String),
    /// No or bad credentials, expired or revoked token.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the role or areas do not allow this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A body over its limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client was too slow sending its request.
    #[error("{0}")]
    Timeout(String),
    /// Too many failed attempts: try again after `retry_after_s`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    /// The server is at a limit of its own (bytes in flight): retry soon.
    #[error("{0}")]
    Busy(String),
    /// Everything else: logged, reported without detail.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::storage::StorageError> for AppError {
    fn from(e: crate::storage::StorageError) -> Self {
        match e {
            crate::storage::StorageError::Conflict(m) => AppError::Conflict(m),
            crate::storage::StorageError::NotFound(m) => AppError::NotFound(m),
            crate::storage::StorageError::Forbidden(m) => AppError::Forbidden(m),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl AppError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(detail) => {
                eprintln!("fieldbook server: internal error: {detail}");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let retry = match &self {
            AppError::TooManyRequests { retry_after_s, .. } => Some(*retry_after_s),
            AppError::Busy(_) => Some(5),
            _ => None,
        };
        let body = serde_json::json!({ "error": message }).to_string();
        let mut r = (status, [("content-type", "application/json")], body).into_response();
        if let Some(s) = retry {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(s),
            );
        }
        r
    }
}

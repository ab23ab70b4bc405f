//! Errors in npm's format: a status and `{"error": "<message>"}`, which the npm CLI prints after the
//! status line; 401 answers carry a `WWW-Authenticate` challenge.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::frontend::ApiError;

/// An error answer of the npm API.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct NpmError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human message, the `error` field.
    pub message: String,
}

impl NpmError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        NpmError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500, for what should not happen.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl IntoResponse for NpmError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"arca\""),
            );
        }
        response
    }
}

impl From<ApiError> for NpmError {
    fn from(error: ApiError) -> Self {
        Self::new(error.status, error.message)
    }
}

crate::core_error_conversions!(NpmError);

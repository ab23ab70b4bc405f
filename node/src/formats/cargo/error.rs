//! Errors in the shape cargo prints: a status and `{"errors": [{"detail": "<message>"}]}`. A 401
//! carries `WWW-Authenticate: Cargo`, which tells cargo to send its token.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::frontend::ApiError;

/// An error answer of a Cargo registry.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CargoError {
    /// HTTP status.
    pub status: StatusCode,
    /// What cargo shows.
    pub message: String,
}

impl CargoError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        CargoError {
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

impl IntoResponse for CargoError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errors": [{ "detail": self.message }] });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Cargo"));
        }
        response
    }
}

impl From<ApiError> for CargoError {
    fn from(error: ApiError) -> Self {
        Self::new(error.status, error.message)
    }
}

crate::core_error_conversions!(CargoError);

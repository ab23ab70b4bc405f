//! Errors as the go command shows them: a status and a plain-text body, which it prints after the
//! URL it fetched. A 401 challenges for Basic credentials, which the go command takes from the
//! `GOPROXY` URL or `.netrc`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::frontend::ApiError;

/// An error answer of a Go registry.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct GoError {
    /// HTTP status.
    pub status: StatusCode,
    /// What the go command prints.
    pub message: String,
}

impl GoError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        GoError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404, which the go command reads as "not here" and goes on to the next proxy of its list.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 502: the upstream answered with something that is not what a module proxy serves.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, message)
    }

    /// 500, for what should not happen.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl IntoResponse for GoError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"arca\""),
            );
        }
        response
    }
}

impl From<ApiError> for GoError {
    fn from(error: ApiError) -> Self {
        Self::new(error.status, error.message)
    }
}

crate::core_error_conversions!(GoError);

//! Errors of the front-ends whose clients print a plain-text body as it is (the go command after
//! the URL it fetched, `gem push` and `gem yank`): a status and the message as text. A 401
//! challenges for Basic credentials (which the go command takes from its `GOPROXY` URL or `.netrc`,
//! and bundler asks for).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::frontend::ApiError;

/// A plain-text error answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TextError {
    /// HTTP status.
    pub status: StatusCode,
    /// What the client prints.
    pub message: String,
}

impl TextError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        TextError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 (which the go command reads as "not here" and goes on to the next proxy of its list).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 502: the upstream answered with something that is not what its protocol serves.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, message)
    }

    /// 500, for what should not happen.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl IntoResponse for TextError {
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

impl From<ApiError> for TextError {
    fn from(error: ApiError) -> Self {
        Self::new(error.status, error.message)
    }
}

crate::core_error_conversions!(TextError);

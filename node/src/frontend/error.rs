//! The one error type of Arca's own HTTP surfaces (management API and generic registries), answered as
//! `{"error": {"code", "message"}}` with the matching status.

use arca_protocol::api::{ErrorBody, ErrorDetail};
use arca_protocol::{CommandError, NameError};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::blob::BlobError;
use crate::meta::ProposeError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human message.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `INVALID`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID", message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 409 `CONFLICT`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    /// 413 `PAYLOAD_TOO_LARGE`.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body exceeds this node's limit of {limit} bytes"),
        )
    }

    /// 503 `UNAVAILABLE`: try again later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message)
    }

    /// 500 `INTERNAL`, logged.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(%message, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            message.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // Package managers that only speak Basic (pip, Maven) need their own challenge.
            let headers = response.headers_mut();
            headers.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"arca\""),
            );
            headers.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"arca\""),
            );
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthorized(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", error.to_string())
            }
            AuthError::Forbidden { .. } => {
                Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", error.to_string())
            }
            AuthError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                error.to_string(),
            ),
            AuthError::Throttled(_) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                error.to_string(),
            ),
        }
    }
}

impl From<NameError> for ApiError {
    fn from(error: NameError) -> Self {
        Self::invalid(error.to_string())
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::NotFound(_) => Self::not_found(error.to_string()),
            CommandError::AlreadyExists(_) => {
                Self::new(StatusCode::CONFLICT, "ALREADY_EXISTS", error.to_string())
            }
            CommandError::Conflict(_) => Self::conflict(error.to_string()),
            CommandError::Invalid(_) | CommandError::MissingReference(_) => {
                Self::invalid(error.to_string())
            }
            CommandError::Retry(_) => Self::unavailable(error.to_string()),
        }
    }
}

impl From<ProposeError> for ApiError {
    fn from(error: ProposeError) -> Self {
        match error {
            ProposeError::Refused(refused) => refused.into(),
            ProposeError::Unavailable(_) => Self::unavailable(error.to_string()),
        }
    }
}

impl From<crate::policy::firewall::Blocked> for ApiError {
    /// A download, copy or promotion the dependency firewall refuses: 403 `BLOCKED`.
    fn from(blocked: crate::policy::firewall::Blocked) -> Self {
        match blocked {
            crate::policy::firewall::Blocked::Refused(message) => {
                Self::new(StatusCode::FORBIDDEN, "BLOCKED", message)
            }
            crate::policy::firewall::Blocked::Store(error) => error.into(),
        }
    }
}

impl From<crate::meta::view::StoreError> for ApiError {
    fn from(error: crate::meta::view::StoreError) -> Self {
        Self::internal(error)
    }
}

/// A full disk is 507 `INSUFFICIENT_STORAGE`; every other chunk store failure is 500.
impl From<BlobError> for ApiError {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::NoSpace { .. } => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "INSUFFICIENT_STORAGE",
                error.to_string(),
            ),
            other => Self::internal(other),
        }
    }
}

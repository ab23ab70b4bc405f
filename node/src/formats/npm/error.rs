//! Errors in npm's format: a status and `{"error": "<message>"}`, which the npm CLI prints after the
//! status line; 401 answers carry a `WWW-Authenticate` challenge.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::blob::BlobError;
use crate::frontend::ApiError;
use crate::frontend::UploadError;
use crate::meta::ProposeError;
use crate::proxy::ProxyError;

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

impl From<AuthError> for NpmError {
    fn from(error: AuthError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<ProposeError> for NpmError {
    fn from(error: ProposeError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<UploadError> for NpmError {
    fn from(error: UploadError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<BlobError> for NpmError {
    fn from(error: BlobError) -> Self {
        ApiError::from(error).into()
    }
}

/// A download the dependency firewall refuses: 403 with the reason as `{"error": ...}`, which npm
/// prints.
impl From<crate::policy::firewall::Blocked> for NpmError {
    fn from(blocked: crate::policy::firewall::Blocked) -> Self {
        match blocked {
            crate::policy::firewall::Blocked::Refused(message) => {
                Self::new(StatusCode::FORBIDDEN, message)
            }
            crate::policy::firewall::Blocked::Store(error) => error.into(),
        }
    }
}

impl From<crate::meta::view::StoreError> for NpmError {
    fn from(error: crate::meta::view::StoreError) -> Self {
        ApiError::from(error).into()
    }
}

/// An upstream that does not have something is a 404; one that fails (or whose circuit is open) a
/// 502; a fetched object that could not be recorded a 503.
impl From<ProxyError> for NpmError {
    fn from(error: ProxyError) -> Self {
        let status = match error {
            ProxyError::NotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::Record(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Denied(_)
            | ProxyError::Upstream(_)
            | ProxyError::Tls(_)
            | ProxyError::CircuitOpen(_) => StatusCode::BAD_GATEWAY,
        };
        Self::new(status, error.to_string())
    }
}

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
use crate::proxy::ProxyError;

use super::UploadError;

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

/// A full disk is 507 `INSUFFICIENT_STORAGE`, an object store that is down 503; every other chunk
/// store failure is 500 ([`BlobError::status`]).
impl From<BlobError> for ApiError {
    fn from(error: BlobError) -> Self {
        match error.status() {
            (StatusCode::INTERNAL_SERVER_ERROR, _) => Self::internal(error),
            (status, code) => Self::new(status, code, error.to_string()),
        }
    }
}

/// An upstream that does not have something is a 404; one that fails (or whose circuit is open) a
/// 502; a fetched object that could not be recorded a 503.
impl From<ProxyError> for ApiError {
    fn from(error: ProxyError) -> Self {
        match error {
            ProxyError::NotFound(_) => ApiError::not_found(error.to_string()),
            ProxyError::Record(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                error.to_string(),
            ),
            ProxyError::Denied(_)
            | ProxyError::Upstream(_)
            | ProxyError::Tls(_)
            | ProxyError::CircuitOpen(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "UPSTREAM", error.to_string())
            }
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::TooLarge { limit } => ApiError::too_large(limit),
            UploadError::Truncated(_) => ApiError::invalid(error.to_string()),
            UploadError::DigestMismatch { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "DIGEST_MISMATCH",
                error.to_string(),
            ),
            UploadError::Store(store) => store.into(),
        }
    }
}

/// Implements, for a front-end's own error type (which converts from [`ApiError`]), the conversions
/// from every core error, each through the status and message [`ApiError`] gives it.
#[macro_export]
macro_rules! core_error_conversions {
    ($error:ty) => {
        $crate::core_error_conversions!(
            $error:
            $crate::auth::AuthError,
            $crate::meta::ProposeError,
            $crate::frontend::UploadError,
            $crate::blob::BlobError,
            $crate::policy::firewall::Blocked,
            $crate::meta::view::StoreError,
            $crate::proxy::ProxyError
        );
    };
    ($error:ty: $($core:ty),+) => {$(
        impl From<$core> for $error {
            fn from(error: $core) -> Self {
                $crate::frontend::ApiError::from(error).into()
            }
        }
    )+};
}

/// `error` and each of its causes, outermost first.
pub fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |error| error.source())
}

/// An error's message with every cause its message leaves out (`error sending request: ...:
/// invalid peer certificate: UnknownIssuer`): an HTTP client's own message names none.
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    for cause in causes(error) {
        let more = cause.to_string();
        if !text.contains(&more) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&more);
        }
    }
    text
}

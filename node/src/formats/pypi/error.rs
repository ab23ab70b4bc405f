//! Errors in the form PyPI (warehouse) gives them: a plain-text body `<status> <message>` and, since
//! twine prints the HTTP reason phrase of a failed upload, the message as the reason phrase too
//! (twine's `--skip-existing` looks for "already exists" there). A 401 carries a Basic challenge.

use arca_protocol::CommandError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::blob::BlobError;
use crate::frontend::ApiError;
use crate::frontend::UploadError;
use crate::meta::ProposeError;
use crate::proxy::ProxyError;

/// An error answer of a PyPI endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {message}")]
pub struct PypiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub message: String,
}

impl PypiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PypiError {
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

    /// 500, logged.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(%message, "internal error in the PyPI API");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message.to_string())
    }
}

/// The message as an HTTP/1 reason phrase: one line of visible ASCII.
fn reason_phrase(message: &str) -> Option<hyper::ext::ReasonPhrase> {
    let line: String = message
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .take(512)
        .collect();
    hyper::ext::ReasonPhrase::try_from(line.into_bytes()).ok()
}

impl IntoResponse for PypiError {
    fn into_response(self) -> Response {
        let body = format!("{} {}\n", self.status.as_u16(), self.message);
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
        if let Some(reason) = reason_phrase(&self.message) {
            response.extensions_mut().insert(reason);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"arca\""),
            );
        }
        response
    }
}

impl From<AuthError> for PypiError {
    fn from(error: AuthError) -> Self {
        let status = match error {
            AuthError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        Self::new(status, error.to_string())
    }
}

impl From<ApiError> for PypiError {
    fn from(error: ApiError) -> Self {
        Self::new(error.status, error.message)
    }
}

impl From<ProposeError> for PypiError {
    fn from(error: ProposeError) -> Self {
        match error {
            ProposeError::Refused(CommandError::NotFound(what)) => {
                Self::not_found(format!("{what} not found"))
            }
            ProposeError::Refused(CommandError::Retry(_)) | ProposeError::Unavailable(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }
            ProposeError::Refused(refused) => Self::bad_request(refused.to_string()),
        }
    }
}

impl From<BlobError> for PypiError {
    fn from(error: BlobError) -> Self {
        match error.status() {
            (StatusCode::INTERNAL_SERVER_ERROR, _) => Self::internal(error),
            (status, _) => Self::new(status, error.to_string()),
        }
    }
}

impl From<UploadError> for PypiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
            }
            UploadError::Truncated(_) | UploadError::DigestMismatch { .. } => {
                Self::bad_request(error.to_string())
            }
            UploadError::Store(store) => store.into(),
        }
    }
}

/// A download the dependency firewall refuses: 403 with the reason.
impl From<crate::policy::firewall::Blocked> for PypiError {
    fn from(blocked: crate::policy::firewall::Blocked) -> Self {
        match blocked {
            crate::policy::firewall::Blocked::Refused(message) => {
                Self::new(StatusCode::FORBIDDEN, message)
            }
            crate::policy::firewall::Blocked::Store(error) => error.into(),
        }
    }
}

impl From<crate::meta::view::StoreError> for PypiError {
    fn from(error: crate::meta::view::StoreError) -> Self {
        Self::internal(error)
    }
}

impl From<ProxyError> for PypiError {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_plain_text_with_the_message_as_reason() {
        let response =
            PypiError::bad_request("File already exists ('a-1.tar.gz').\nSee help").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .expect("reason phrase");
        assert_eq!(
            reason.as_bytes(),
            b"File already exists ('a-1.tar.gz'). See help"
        );
        let unauthorized = PypiError::from(AuthError::unauthorized("no")).into_response();
        assert_eq!(
            unauthorized.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"arca\""
        );
    }
}

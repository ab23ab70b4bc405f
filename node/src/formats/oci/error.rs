//! Errors in the OCI distribution format: `{"errors": [{"code", "message", "detail"}]}` with the
//! spec's codes and statuses, and the `WWW-Authenticate` challenge on 401.

use arca_protocol::CommandError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::blob::BlobError;
use crate::frontend::UploadError;
use crate::meta::ProposeError;

/// An error answer of the OCI API.
#[derive(Debug, Clone)]
pub struct OciError {
    /// HTTP status.
    pub status: StatusCode,
    /// Spec code (`BLOB_UNKNOWN`, `MANIFEST_INVALID`, ...).
    pub code: &'static str,
    /// Human message.
    pub message: String,
    /// The `WWW-Authenticate` challenge of a 401.
    pub challenge: Option<String>,
}

impl OciError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        OciError {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }

    /// 404 `BLOB_UNKNOWN`.
    pub fn blob_unknown(digest: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob {digest} is unknown to this repository"),
        )
    }

    /// 404 `MANIFEST_UNKNOWN`.
    pub fn manifest_unknown(reference: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest {reference} is unknown to this repository"),
        )
    }

    /// 404 `NAME_UNKNOWN`.
    pub fn name_unknown(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {name} is not known to this registry"),
        )
    }

    /// 400 `NAME_INVALID`.
    pub fn name_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "NAME_INVALID", message)
    }

    /// 400 `DIGEST_INVALID`.
    pub fn digest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
    }

    /// 400 `MANIFEST_INVALID`.
    pub fn manifest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
    }

    /// 404 `BLOB_UPLOAD_UNKNOWN`.
    pub fn upload_unknown() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to this registry",
        )
    }

    /// 500, logged.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(%message, "internal error in the OCI API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            message.to_string(),
        )
    }

    /// Adds a `WWW-Authenticate` challenge (for 401 answers).
    pub fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body = json!({
            "errors": [{"code": self.code, "message": self.message, "detail": null}]
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(challenge) = self.challenge
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl From<ProposeError> for OciError {
    fn from(error: ProposeError) -> Self {
        match error {
            ProposeError::Refused(refused) => match refused {
                CommandError::NotFound(_) => {
                    Self::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", refused.to_string())
                }
                CommandError::AlreadyExists(_) | CommandError::Conflict(_) => {
                    Self::new(StatusCode::CONFLICT, "DENIED", refused.to_string())
                }
                CommandError::Invalid(_) => {
                    Self::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", refused.to_string())
                }
                CommandError::MissingReference(_) => Self::new(
                    StatusCode::BAD_REQUEST,
                    "MANIFEST_BLOB_UNKNOWN",
                    refused.to_string(),
                ),
                CommandError::Retry(_) => Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    refused.to_string(),
                ),
            },
            ProposeError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                error.to_string(),
            ),
        }
    }
}

/// A manifest the dependency firewall refuses: 403 `DENIED`.
impl From<crate::policy::firewall::Blocked> for OciError {
    fn from(blocked: crate::policy::firewall::Blocked) -> Self {
        match blocked {
            crate::policy::firewall::Blocked::Refused(message) => {
                Self::new(StatusCode::FORBIDDEN, "DENIED", message)
            }
            crate::policy::firewall::Blocked::Store(error) => error.into(),
        }
    }
}

impl From<crate::meta::view::StoreError> for OciError {
    fn from(error: crate::meta::view::StoreError) -> Self {
        Self::internal(error)
    }
}

impl From<BlobError> for OciError {
    fn from(error: BlobError) -> Self {
        match error.status() {
            (StatusCode::INTERNAL_SERVER_ERROR, _) => Self::internal(error),
            (status, code) => Self::new(status, code, error.to_string()),
        }
    }
}

impl From<UploadError> for OciError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                error.to_string(),
            ),
            UploadError::Truncated(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                error.to_string(),
            ),
            UploadError::DigestMismatch { .. } => Self::digest_invalid(error.to_string()),
            UploadError::Store(store) => store.into(),
        }
    }
}

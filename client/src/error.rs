//! The one error type of the client library, and the decoding of the server's error answers into it.

use arca_protocol::api::ErrorBody;
use reqwest::Response;

/// Everything that can go wrong when talking to an Arca node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// The server's machine-readable code (`NOT_FOUND`, `UNAUTHORIZED`, ...), or the status text when
        /// the answer was not Arca's error JSON.
        code: String,
        /// What went wrong, for humans.
        message: String,
    },
    /// The request could not be sent or the answer could not be read.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The input or the server's answer is not what the API allows.
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    /// Turns an error answer into [`ClientError::Api`], reading Arca's `{"error": {"code", "message"}}`
    /// body when there is one and falling back to the status text otherwise.
    pub(crate) async fn from_response(response: Response) -> ClientError {
        let status = response.status();
        let reason = status.canonical_reason().unwrap_or("unknown status");
        let text = match response.text().await {
            Ok(text) => text,
            Err(err) => return ClientError::Http(err),
        };
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: reason.to_ascii_uppercase().replace(' ', "_"),
                message: match text.trim() {
                    "" => reason.to_string(),
                    body => body.chars().take(500).collect(),
                },
            },
        }
    }
}

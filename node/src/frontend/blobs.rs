//! The core calls every front-end makes for bytes: [`receive_blob`] streams a request body into the
//! chunk store (bounded by the node's upload limit, checked against an expected digest) and
//! [`serve_blob`] answers a download (ranges, ETag, If-None-Match), verifying every chunk it sends.

use arca_protocol::{BlobRef, Sha256};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;

use crate::AppState;
use crate::blob::{BlobError, BlobWriter, ByteRange, read_blob};
use crate::usage::Download;

/// Why an upload was not stored. Nothing is committed in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The body is larger than the node accepts.
    #[error("the body exceeds this node's limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The body ended early or could not be read.
    #[error("the upload was interrupted or truncated: {0}")]
    Truncated(String),
    /// The bytes do not hash to the digest the client announced.
    #[error("digest mismatch: expected {expected}, received {actual}")]
    DigestMismatch {
        /// What the client said.
        expected: String,
        /// What arrived.
        actual: String,
    },
    /// The chunk store failed.
    #[error(transparent)]
    Store(#[from] BlobError),
}

/// The body length a request announces in `Content-Length`, if any.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The body length a request announces, refused up front when it is over the node's limit.
pub fn declared_length(state: &AppState, headers: &HeaderMap) -> Result<Option<u64>, UploadError> {
    let limit = state.config.max_upload_bytes;
    match content_length(headers) {
        Some(len) if len > limit => Err(UploadError::TooLarge { limit }),
        Some(len) => {
            state.chunks.check_room(len)?;
            Ok(Some(len))
        }
        None => Ok(None),
    }
}

/// Streams `body` into `writer` (which may already hold earlier parts of the blob), keeping the
/// blob within the node's limit. Returns the number of bytes appended.
pub async fn append_body(
    state: &AppState,
    writer: &mut BlobWriter,
    body: Body,
) -> Result<u64, UploadError> {
    let limit = state.config.max_upload_bytes;
    let start = writer.size();
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        let data = frame.map_err(|e| UploadError::Truncated(e.to_string()))?;
        if writer.size() + data.len() as u64 > limit {
            return Err(UploadError::TooLarge { limit });
        }
        writer.write(&data).await?;
    }
    let appended = writer.size() - start;
    state.metrics.upload_bytes.inc_by(appended);
    Ok(appended)
}

/// Streams `body` into the chunk store and returns the blob. Refuses bodies over the node's limit
/// (before reading when `Content-Length` says so) and, when `expected` is given, bytes with another
/// sha256.
pub async fn receive_blob(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    expected: Option<Sha256>,
) -> Result<BlobRef, UploadError> {
    let declared = declared_length(state, headers)?;
    let mut writer = BlobWriter::new(state.chunks.clone());
    let received = append_body(state, &mut writer, body).await?;
    if let Some(declared) = declared
        && declared != received
    {
        return Err(UploadError::Truncated(format!(
            "Content-Length was {declared}, received {received} bytes"
        )));
    }
    let blob = writer.finish().await?;
    match expected {
        Some(expected) if expected != blob.sha256 => Err(UploadError::DigestMismatch {
            expected: expected.to_hex(),
            actual: blob.sha256.to_hex(),
        }),
        _ => Ok(blob),
    }
}

/// How much of a refused request body is read (and dropped) so the client sees the refusal.
const DISCARD_LIMIT: u64 = 64 * 1024 * 1024;

/// `decided` with the request's body handed back; when it is a refusal, the body is read and dropped
/// first ([`discard_body`]), so the client gets the answer rather than a reset connection.
pub async fn unless_refused<T, E>(
    decided: Result<T, E>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(T, Body), E> {
    match decided {
        Ok(value) => Ok((value, body)),
        Err(error) => {
            discard_body(headers, body).await;
            Err(error)
        }
    }
}

/// Reads and drops the body of a refused request (at most 64 MiB), so the error answer is not lost to
/// a connection reset while the client is still sending — unless the client waits for
/// `100 Continue`: then it has not sent the body and, answered now, never will.
pub async fn discard_body(headers: &HeaderMap, body: Body) {
    let waiting = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waiting {
        return;
    }
    let mut seen = 0u64;
    let mut stream = body.into_data_stream();
    while seen < DISCARD_LIMIT {
        match stream.next().await {
            Some(Ok(data)) => seen += data.len() as u64,
            _ => break,
        }
    }
}

/// Reads a whole (small) blob into memory, verified; for manifests and other metadata-sized files.
pub async fn read_small_blob(state: &AppState, blob: &BlobRef) -> Result<Vec<u8>, BlobError> {
    let mut bytes = Vec::with_capacity(blob.size as usize);
    let mut stream = std::pin::pin!(read_blob(state.chunks.clone(), blob, None));
    while let Some(piece) = stream.next().await {
        bytes.extend_from_slice(&piece?);
    }
    Ok(bytes)
}

/// A `Range` header that cannot be satisfied for a blob of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("range not satisfiable for {size} bytes")]
pub struct RangeNotSatisfiable {
    /// The blob's size.
    pub size: u64,
}

/// Parses a single-range `Range: bytes=...` header. Headers this server does not act on (other
/// units, several ranges, bad syntax) give `Ok(None)`: the whole blob is served, as RFC 9110 allows.
/// A range that ends before it starts (`bytes=500-0`) is unsatisfiable, as the OCI distribution
/// spec asks, rather than ignored.
pub fn parse_range(value: &str, size: u64) -> Result<Option<ByteRange>, RangeNotSatisfiable> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = RangeNotSatisfiable { size };
    let (start, end) = match (first.trim(), last.trim()) {
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return Err(unsatisfiable),
            Ok(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            Err(_) => return Ok(None),
        },
        (first, "") => match first.parse::<u64>() {
            Ok(start) => (start, size.saturating_sub(1)),
            Err(_) => return Ok(None),
        },
        (first, last) => match (first.parse::<u64>(), last.parse::<u64>()) {
            (Ok(start), Ok(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
            (Ok(_), Ok(_)) => return Err(unsatisfiable),
            _ => return Ok(None),
        },
    };
    if size == 0 || start >= size {
        return Err(unsatisfiable);
    }
    Ok(Some(ByteRange { start, end }))
}

/// Answers a download of `blob`: 200 with the whole blob, 206 for a satisfiable `Range`, 304 when
/// `If-None-Match` names its ETag, 416 (with `Content-Range: bytes */size`) for an unsatisfiable one,
/// its body made by `unsatisfiable` from a message, in the caller's error format. Every chunk is
/// verified as it is read; a chunk that fails verification aborts the response instead of sending
/// wrong bytes. What is sent is counted as a download of `download`, when given (see
/// [`crate::usage`]).
pub fn serve_blob(
    state: &AppState,
    request_headers: &HeaderMap,
    blob: &BlobRef,
    download: Option<Download<'_>>,
    unsatisfiable: impl FnOnce(String) -> Response,
) -> Response {
    match ranged_response(state, request_headers, blob, download) {
        Ok(response) => response,
        Err(RangeNotSatisfiable { size }) => {
            let mut response = unsatisfiable(format!("range not satisfiable for {size} bytes"));
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response
        }
    }
}

/// [`serve_blob`] answering an unsatisfiable range in Arca's own error format (416,
/// `RANGE_NOT_SATISFIABLE`), for the front-ends whose protocols have none of their own.
pub fn serve_file(
    state: &AppState,
    request_headers: &HeaderMap,
    blob: &BlobRef,
    download: Option<Download<'_>>,
) -> Response {
    serve_blob(state, request_headers, blob, download, |message| {
        axum::response::IntoResponse::into_response(super::ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "RANGE_NOT_SATISFIABLE",
            message,
        ))
    })
}

fn ranged_response(
    state: &AppState,
    request_headers: &HeaderMap,
    blob: &BlobRef,
    download: Option<Download<'_>>,
) -> Result<Response, RangeNotSatisfiable> {
    let etag = format!("\"{}\"", blob.sha256);
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header("X-Checksum-Sha256", blob.sha256.to_hex())
        .header(header::ACCEPT_RANGES, "bytes");
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    if not_modified {
        return Ok(response(
            builder.status(StatusCode::NOT_MODIFIED),
            Body::empty(),
        ));
    }
    let range = match request_headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    {
        Some(value) => parse_range(value, blob.size)?,
        None => None,
    };
    let length = range.map_or(blob.size, |r| r.byte_count());
    builder = builder
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, length);
    builder = match range {
        Some(r) => builder.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", r.start, r.end, blob.size),
        ),
        None => builder.status(StatusCode::OK),
    };
    state.metrics.download_bytes.inc_by(length);
    let sha256 = blob.sha256;
    let stream = read_blob(state.chunks.clone(), blob, range).map(move |piece| {
        piece.map_err(|error| {
            tracing::error!(blob = %sha256, %error, "aborting a download");
            std::io::Error::other(error)
        })
    });
    let body = match download {
        Some(download) => Body::from_stream(
            state
                .usage
                .sending(&download, range.is_none().then_some(blob.size))
                .count(stream),
        ),
        None => Body::from_stream(stream),
    };
    Ok(response(builder, body))
}

fn response(builder: axum::http::response::Builder, body: Body) -> Response {
    builder.body(body).unwrap_or_else(|error| {
        tracing::error!(%error, "building a response");
        let mut fallback = Response::new(Body::empty());
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |start, end| Ok(Some(ByteRange { start, end }));
        assert_eq!(parse_range("bytes=0-9", 100), r(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), r(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), r(90, 99));
        assert_eq!(parse_range("bytes=-500", 100), r(0, 99));
        assert_eq!(parse_range("bytes=50-500", 100), r(50, 99));
        assert_eq!(
            parse_range("bytes=100-", 100),
            Err(RangeNotSatisfiable { size: 100 })
        );
        assert_eq!(
            parse_range("bytes=-0", 100),
            Err(RangeNotSatisfiable { size: 100 })
        );
        assert_eq!(
            parse_range("bytes=0-0", 0),
            Err(RangeNotSatisfiable { size: 0 })
        );
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(
            parse_range("bytes=500-0", 1000),
            Err(RangeNotSatisfiable { size: 1000 })
        );
        assert_eq!(parse_range("bytes=x-2", 100), Ok(None));
    }
}

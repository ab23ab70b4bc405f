//! Files of generic registries, `/generic/{registry}/{package}/{version}/{filename}`: streaming upload and
//! download with sha256 verification. No file is ever held whole in memory.

use std::path::{Path, PathBuf};

use arca_protocol::Sha256;
use futures::TryStreamExt;
use reqwest::header::{CONTENT_LENGTH, HeaderValue};
use reqwest::{Body, Method, Response, Url};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::UploadedFile;
use crate::client::Client;
use crate::error::ClientError;

/// The header carrying a file's hex sha256, both ways.
pub const CHECKSUM_HEADER: &str = "x-checksum-sha256";

/// Read and write buffer size for file transfers.
const BUFFER: usize = 256 * 1024;

/// Where a generic file lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericFile {
    /// Registry name.
    pub registry: String,
    /// Package name (may contain `/`).
    pub package: String,
    /// Version.
    pub version: String,
    /// File name within the version.
    pub filename: String,
}

/// How far a transfer has come, reported after every chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes transferred so far.
    pub done: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
}

/// The sha256 of a local file, read in a streaming pass; `progress` sees the bytes hashed so far.
pub async fn sha256_file(path: &Path, progress: impl Fn(Progress)) -> Result<Sha256, ClientError> {
    let digest = digest_file::<sha2::Sha256>(path, progress).await?;
    Ok(Sha256(digest.into()))
}

/// The `D` digest of a local file, read in a streaming pass; `progress` sees the bytes hashed so far.
pub(crate) async fn digest_file<D: Digest>(
    path: &Path,
    progress: impl Fn(Progress),
) -> Result<sha2::digest::Output<D>, ClientError> {
    let mut file = tokio::fs::File::open(path).await?;
    let total = file.metadata().await?.len();
    let mut hasher = D::new();
    let mut buffer = vec![0u8; BUFFER];
    let mut done = 0u64;
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        done += read as u64;
        progress(Progress {
            done,
            total: Some(total),
        });
    }
    Ok(hasher.finalize())
}

/// A request body streaming the file at `path`, and its length; `progress` sees the bytes sent.
pub(crate) async fn file_body(
    path: &Path,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> Result<(Body, u64), ClientError> {
    let handle = tokio::fs::File::open(path).await?;
    let total = handle.metadata().await?.len();
    let mut done = 0u64;
    let stream = ReaderStream::with_capacity(handle, BUFFER).inspect_ok(move |chunk| {
        done += chunk.len() as u64;
        progress(Progress {
            done,
            total: Some(total),
        });
    });
    Ok((Body::wrap_stream(stream), total))
}

impl Client {
    fn generic_url(&self, file: &GenericFile) -> Result<Url, ClientError> {
        self.url(&[
            "generic",
            &file.registry,
            &file.package,
            &file.version,
            &file.filename,
        ])
    }

    /// `PUT /generic/...`: streams the file at `source` with an explicit `Content-Length`. When `sha256`
    /// is given it is sent as `X-Checksum-Sha256` and the server refuses the upload if the bytes differ.
    pub async fn push_generic(
        &self,
        file: &GenericFile,
        source: &Path,
        sha256: Option<Sha256>,
        progress: impl Fn(Progress) + Send + Sync + 'static,
    ) -> Result<UploadedFile, ClientError> {
        let url = self.generic_url(file)?;
        let (body, total) = file_body(source, progress).await?;
        let mut request = self
            .request(Method::PUT, url)
            .header(CONTENT_LENGTH, HeaderValue::from(total))
            .body(body);
        if let Some(sha256) = sha256 {
            request = request.header(CHECKSUM_HEADER, sha256.to_hex());
        }
        self.send_json(request).await
    }

    /// `GET /generic/...`: streams the file into a temporary file beside `dest`, checks it against the
    /// server's `X-Checksum-Sha256` (when the server sends one), then renames it to `dest`. Answers the
    /// number of bytes written. Nothing is left behind on failure.
    pub async fn pull_generic(
        &self,
        file: &GenericFile,
        dest: &Path,
        progress: impl Fn(Progress) + Send + Sync + 'static,
    ) -> Result<u64, ClientError> {
        let url = self.generic_url(file)?;
        let response = self.send(self.request(Method::GET, url)).await?;
        let expected = response
            .headers()
            .get(CHECKSUM_HEADER)
            .map(|value| {
                value
                    .to_str()
                    .ok()
                    .and_then(|text| text.parse::<Sha256>().ok())
                    .ok_or_else(|| {
                        ClientError::Invalid(format!("server sent an invalid {CHECKSUM_HEADER}"))
                    })
            })
            .transpose()?;
        let partial = partial_path(dest)?;
        let written = download(response, &partial, progress)
            .await
            .and_then(|(size, actual)| match expected {
                Some(expected) if expected != actual => Err(ClientError::Invalid(format!(
                    "checksum mismatch for {}: server announced sha256 {expected}, received {actual}",
                    dest.display()
                ))),
                _ => Ok(size),
            });
        let renamed = match written {
            Ok(size) => tokio::fs::rename(&partial, dest)
                .await
                .map(|()| size)
                .map_err(ClientError::from),
            Err(err) => Err(err),
        };
        if renamed.is_err() {
            // Best effort: the partial file may not exist if creating it was what failed.
            let _ = tokio::fs::remove_file(&partial).await;
        }
        renamed
    }
}

/// The temporary file a download is written to: hidden, beside `dest`, unique to this process.
fn partial_path(dest: &Path) -> Result<PathBuf, ClientError> {
    let name = dest.file_name().ok_or_else(|| {
        ClientError::Invalid(format!("destination {} has no file name", dest.display()))
    })?;
    Ok(dest.with_file_name(format!(
        ".{}.{}.partial",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Writes the body of `response` to `path`, hashing it on the way; answers its size and sha256.
async fn download(
    response: Response,
    path: &Path,
    progress: impl Fn(Progress),
) -> Result<(u64, Sha256), ClientError> {
    let total = response.content_length();
    let mut out = tokio::fs::File::create(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut done = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.try_next().await? {
        out.write_all(&chunk).await?;
        hasher.update(&chunk);
        done += chunk.len() as u64;
        progress(Progress { done, total });
    }
    out.sync_all().await?;
    Ok((done, Sha256(hasher.finalize().into())))
}

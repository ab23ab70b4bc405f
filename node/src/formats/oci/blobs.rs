//! Blobs of the OCI API: `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>` and every upload flow:
//! monolithic (`POST ?digest=`), `POST` then `PUT`, chunked `PATCH` with `Content-Range` and
//! resumption, cross-repository mount (`POST ?mount=&from=`), status and cancel.
//!
//! An upload session streams into the chunk store as parts arrive, and is saved after each part
//! (`<data>/uploads/<id>.json`: its chunks so far), so a client resumes it after the node restarts;
//! a request for a session another node issued is forwarded there (see `super::forward`). Only when
//! it completes with a matching digest is the blob linked into the repository through Raft.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_protocol::{BlobRef, Command};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rand::Rng;
use sha2::Digest as _;

use super::auth::{Action, OciCaller};
use super::names::{Algorithm, Digest, RepositoryName};
use super::{OciError, query_param};
use crate::AppState;
use crate::blob::{BlobWriter, WriterCheckpoint, read_blob};
use crate::frontend::{append_body, declared_length, discard_body, serve_blob};
use crate::meta::{StateRead, StoreError};
use crate::proxy::Content;
use crate::usage::Download;

/// Upload sessions idle for longer than this are dropped.
const UPLOAD_IDLE_LIMIT: Duration = Duration::from_secs(300);
/// Upload sessions a node keeps at once.
const MAX_UPLOAD_SESSIONS: usize = 1024;
/// Upload sessions one caller (token or user) keeps at once on a node.
pub const SESSIONS_PER_CALLER: usize = 64;
/// Upload sessions one registry has at once on a node.
pub const SESSIONS_PER_REGISTRY: usize = 256;

/// An upload in progress.
pub struct Upload {
    /// The writer; `None` after a restart until the session is used again (then taken up from
    /// `saved`), or once the session failed.
    writer: Option<BlobWriter>,
    /// What was durable after the last part, for a writer not taken up yet.
    saved: Option<WriterCheckpoint>,
    last_used: Instant,
}

impl Upload {
    /// Bytes the upload holds.
    fn size(&self) -> u64 {
        match (&self.writer, &self.saved) {
            (Some(writer), _) => writer.size(),
            (None, Some(saved)) => saved.size,
            (None, None) => 0,
        }
    }

    /// The writer, taken up from what was saved when the node restarted since the last part.
    async fn writer(&mut self, state: &AppState) -> Result<&mut BlobWriter, OciError> {
        if self.writer.is_none()
            && let Some(saved) = self.saved.take()
        {
            self.writer = BlobWriter::resume(state.chunks.clone(), saved).await?;
        }
        self.writer.as_mut().ok_or_else(OciError::upload_unknown)
    }
}

/// A session: the repository it uploads into, the caller that started it, and the upload itself.
struct Session {
    repository: RepositoryName,
    owner: String,
    upload: Arc<tokio::sync::Mutex<Upload>>,
}

/// A session as saved in `<data>/uploads/<id>.json` after each part.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedSession {
    repository: String,
    #[serde(default)]
    owner: String,
    checkpoint: WriterCheckpoint,
}

/// This node's upload sessions, by id (`<node id in hex>-<random>`: any node can tell whose a
/// session is). Each is saved after each part, so a client resumes it after the node restarts.
pub struct Uploads {
    sessions: std::sync::Mutex<HashMap<String, Session>>,
    dir: PathBuf,
    node_id: u64,
}

impl Uploads {
    /// The sessions of node `node_id` saved in `dir` (created when missing).
    pub fn open(dir: &Path, node_id: u64) -> std::io::Result<Uploads> {
        std::fs::create_dir_all(dir)?;
        let mut sessions = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(id) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".json"))
                .map(str::to_string)
            else {
                // A save a crash interrupted.
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let saved = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<SavedSession>(&bytes).ok())
                .and_then(|saved| {
                    let name = RepositoryName::parse(&saved.repository).ok()?;
                    Some((name, saved.owner, saved.checkpoint))
                });
            let Some((repository, owner, checkpoint)) = saved else {
                tracing::warn!(path = %path.display(), "dropping an unreadable upload session");
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let upload = Upload {
                writer: None,
                saved: Some(checkpoint),
                last_used: Instant::now(),
            };
            sessions.insert(
                id,
                Session {
                    repository,
                    owner,
                    upload: Arc::new(tokio::sync::Mutex::new(upload)),
                },
            );
        }
        if !sessions.is_empty() {
            tracing::info!(
                sessions = sessions.len(),
                "upload sessions resumable after restart"
            );
        }
        Ok(Uploads {
            sessions: std::sync::Mutex::new(sessions),
            dir: dir.to_path_buf(),
            node_id,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// The node a session id was issued by (`None` for an id no node issued).
    pub fn owner(id: &str) -> Option<u64> {
        let (node, _) = id.split_once('-')?;
        u64::from_str_radix(node, 16).ok()
    }

    /// True when session `id` was issued by another node.
    pub fn is_foreign(&self, id: &str) -> bool {
        Self::owner(id).is_some_and(|owner| owner != self.node_id)
    }

    /// Starts a session for `owner` (the caller's subject) in repository `name`, within the node's,
    /// the caller's and the registry's share of sessions.
    fn start(
        &self,
        state: &AppState,
        name: &RepositoryName,
        owner: &str,
    ) -> Result<String, OciError> {
        let id = format!(
            "{:x}-{}",
            self.node_id,
            hex::encode(rand::rng().random::<[u8; 16]>())
        );
        let mut sessions = self.lock();
        let mut expired = Vec::new();
        sessions.retain(|id, session| {
            let live = session
                .upload
                .try_lock()
                .map_or(true, |u| u.last_used.elapsed() < UPLOAD_IDLE_LIMIT);
            if !live {
                expired.push(id.clone());
            }
            live
        });
        for id in expired {
            let _ = std::fs::remove_file(self.file(&id));
        }
        let busy = |message: String| {
            OciError::new(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", message)
        };
        // Each session may buffer up to one chunk in memory: bound how many there are, and how many
        // one caller or one registry may take.
        if sessions.len() >= MAX_UPLOAD_SESSIONS {
            return Err(busy(
                "too many blob uploads in progress on this node; retry later".to_string(),
            ));
        }
        let of_owner = sessions.values().filter(|s| s.owner == owner).count();
        if of_owner >= SESSIONS_PER_CALLER {
            return Err(busy(format!(
                "you have {of_owner} blob uploads in progress on this node (at most \
                 {SESSIONS_PER_CALLER}); finish or cancel some first"
            )));
        }
        let of_registry = sessions
            .values()
            .filter(|s| s.repository.registry == name.registry)
            .count();
        if of_registry >= SESSIONS_PER_REGISTRY {
            return Err(busy(format!(
                "registry {} has {of_registry} blob uploads in progress on this node (at most \
                 {SESSIONS_PER_REGISTRY}); retry later",
                name.registry
            )));
        }
        let upload = Upload {
            writer: Some(BlobWriter::new(state.chunks.clone())),
            saved: None,
            last_used: Instant::now(),
        };
        sessions.insert(
            id.clone(),
            Session {
                repository: name.clone(),
                owner: owner.to_string(),
                upload: Arc::new(tokio::sync::Mutex::new(upload)),
            },
        );
        Ok(id)
    }

    /// The session `id`, which must belong to the repository named in the URL.
    fn get(
        &self,
        name: &RepositoryName,
        id: &str,
    ) -> Result<Arc<tokio::sync::Mutex<Upload>>, OciError> {
        self.lock()
            .get(id)
            .filter(|session| session.repository == *name)
            .map(|session| session.upload.clone())
            .ok_or_else(OciError::upload_unknown)
    }

    /// Saves what session `id` holds so far (every chunk durable first), for a restart to resume.
    async fn save(
        &self,
        name: &RepositoryName,
        id: &str,
        writer: &mut BlobWriter,
    ) -> Result<(), OciError> {
        let owner = self
            .lock()
            .get(id)
            .map(|session| session.owner.clone())
            .unwrap_or_default();
        let saved = SavedSession {
            repository: name.to_string(),
            owner,
            checkpoint: writer.checkpoint().await?,
        };
        let json = serde_json::to_vec(&saved).map_err(OciError::internal)?;
        let (dir, file) = (self.dir.clone(), self.file(id));
        crate::blocking::spawn(move || -> std::io::Result<()> {
            let temp = tempfile::NamedTempFile::new_in(&dir)?;
            std::io::Write::write_all(&mut temp.as_file(), &json)?;
            temp.as_file().sync_data()?;
            temp.persist(&file).map_err(|e| e.error)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .map_err(OciError::internal)?
        .map_err(OciError::internal)
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
        let _ = std::fs::remove_file(self.file(id));
    }
}

fn upload_location(name: &RepositoryName, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn blob_location(name: &RepositoryName, digest: &str) -> String {
    format!("/v2/{name}/blobs/{digest}")
}

/// `Range: 0-<last byte>` of an upload holding `size` bytes.
fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// `Location`, `Range` and `Docker-Upload-UUID` of an upload holding `size` bytes.
fn upload_headers(name: &RepositoryName, id: &str, size: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (key, value) in [
        (header::LOCATION.as_str(), upload_location(name, id)),
        ("range", range_header(size)),
        ("docker-upload-uuid", id.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(key, value);
        }
    }
    headers
}

fn upload_accepted(name: &RepositoryName, id: &str, size: u64, status: StatusCode) -> Response {
    let mut response = status.into_response();
    response
        .headers_mut()
        .extend(upload_headers(name, id, size));
    response
}

fn blob_created(name: &RepositoryName, digest: &str) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    for (key, value) in [
        (header::LOCATION.as_str(), blob_location(name, digest)),
        ("docker-content-digest", digest.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(key, value);
        }
    }
    response
}

/// Verifies a finished blob against the digest the client named. sha256 was computed on the way in;
/// a sha512 digest (rare) is checked by reading the stored blob once more.
async fn verify_digest(state: &AppState, blob: &BlobRef, digest: &Digest) -> Result<(), OciError> {
    let actual = match digest.algorithm {
        Algorithm::Sha256 => blob.sha256.to_hex(),
        Algorithm::Sha512 => {
            let mut hasher = sha2::Sha512::new();
            let mut stream = std::pin::pin!(read_blob(state.chunks.clone(), blob, None));
            while let Some(piece) = stream.next().await {
                hasher.update(&piece?);
            }
            hex::encode(hasher.finalize())
        }
    };
    if actual == digest.hex {
        Ok(())
    } else {
        Err(OciError::digest_invalid(format!(
            "the uploaded bytes do not match digest {digest}"
        )))
    }
}

/// Completes an upload: verifies the digest and links the blob into the repository.
async fn commit_blob(
    state: &AppState,
    name: &RepositoryName,
    writer: BlobWriter,
    digest: &Digest,
) -> Result<Response, OciError> {
    let blob = writer.finish().await?;
    verify_digest(state, &blob, digest).await?;
    link_blob(state, name, digest.to_string(), blob).await
}

/// Links a stored blob into repository `name` under `digest` and answers 201 with its location.
async fn link_blob(
    state: &AppState,
    name: &RepositoryName,
    digest: String,
    blob: BlobRef,
) -> Result<Response, OciError> {
    let created = blob_created(name, &digest);
    state
        .meta
        .propose(Command::LinkBlob {
            registry: name.registry.clone(),
            package: name.repository.clone(),
            digest,
            blob,
            at: state.now_ms(),
        })
        .await?;
    Ok(created)
}

/// The blob `digest` as linked into repository `name`, or a manifest of it served as a blob.
fn linked_blob(
    state: &AppState,
    name: &RepositoryName,
    digest: &str,
) -> Result<Option<BlobRef>, StoreError> {
    let view = state.meta.view()?;
    if view.package_has_blob(&name.registry, &name.repository, digest)? {
        return view.blob_by_digest(digest);
    }
    let Some(version) = view.version(&name.registry, &name.repository, digest)? else {
        return Ok(None);
    };
    match version.files.values().next() {
        Some(manifest) => view.blob(&manifest.sha256),
        None => Ok(None),
    }
}

/// `GET`/`HEAD /v2/<name>/blobs/<digest>`
pub async fn fetch(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    digest: &str,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Pull)?;
    let digest = Digest::parse(digest)?.to_string();
    let linked = |registry: &str| {
        let name = RepositoryName {
            registry: registry.to_string(),
            repository: name.repository.clone(),
        };
        linked_blob(state, &name, &digest)
    };
    let (holder, found) = super::remote::find_blob(state, name, &digest, linked)
        .await?
        .ok_or_else(|| OciError::blob_unknown(&digest))?;
    // A layer is bytes served, not a download of one image: images share layers.
    let download = Download {
        registry: &holder.name,
        package: &name.repository,
        version: None,
        caller: &caller.caller,
    };
    let mut response = match found {
        Content::Stored(blob) => serve_blob(state, headers, &blob, Some(download), |message| {
            OciError::new(StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID", message)
                .into_response()
        }),
        Content::Arriving(arriving) => {
            crate::formats::generic::stream_arriving(state, arriving, download)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&digest) {
        response
            .headers_mut()
            .insert("docker-content-digest", value);
    }
    Ok(response)
}

/// `DELETE /v2/<name>/blobs/<digest>`
pub async fn delete(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    digest: &str,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Delete)?;
    let digest = Digest::parse(digest)?.to_string();
    let linked = state
        .meta
        .read(|view| view.package_has_blob(&name.registry, &name.repository, &digest))?;
    if !linked {
        return Err(OciError::blob_unknown(&digest));
    }
    state
        .meta
        .propose(Command::UnlinkBlob {
            registry: name.registry.clone(),
            package: name.repository.clone(),
            digest,
        })
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /v2/<name>/blobs/uploads/`: mount, monolithic upload, or the start of a session.
pub async fn start(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    query: &str,
    body: Body,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Push)?;
    if let (Some(mount), Some(from)) = (query_param(query, "mount"), query_param(query, "from")) {
        let digest = Digest::parse(&mount)?.to_string();
        if let Ok(source) = RepositoryName::parse(&from)
            && caller
                .authorize(state, headers, &source, Action::Pull)
                .is_ok()
            && let Some(blob) = state.meta.read(|view| {
                if view.package_has_blob(&source.registry, &source.repository, &digest)? {
                    view.blob_by_digest(&digest)
                } else {
                    Ok(None)
                }
            })?
        {
            // The chunks now have a second reference on the way: keep a collection running now from
            // taking them before the link is committed.
            for chunk in &blob.chunks {
                state.chunks.reuse(&chunk.id);
            }
            return link_blob(state, name, digest, blob).await;
        }
        // The spec says: when the mount cannot be done, start an ordinary upload session.
    }
    // A mount without `from` is answered the same way: the spec lets a registry look for the blob
    // elsewhere, and Arca does not (no index says which repositories link a digest, and a caller
    // must not learn what repositories it may not read hold).
    if let Some(digest) = query_param(query, "digest") {
        let digest = Digest::parse(&digest)?;
        declared_length(state, headers)?;
        let mut writer = BlobWriter::new(state.chunks.clone());
        append_body(state, &mut writer, body).await?;
        return commit_blob(state, name, writer, &digest).await;
    }
    let owner = caller
        .caller
        .principal()
        .map(|p| p.subject())
        .unwrap_or_default();
    let id = state.oci.uploads.start(state, name, &owner)?;
    Ok(upload_accepted(name, &id, 0, StatusCode::ACCEPTED))
}

/// `GET /v2/<name>/blobs/uploads/<id>`: how much has arrived.
pub async fn status(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    id: &str,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Push)?;
    let upload = state.oci.uploads.get(name, id)?;
    let size = upload.lock().await.size();
    Ok(upload_accepted(name, id, size, StatusCode::NO_CONTENT))
}

/// The first byte a `Content-Range: <start>-<end>` header names.
fn content_range_start(headers: &HeaderMap) -> Result<Option<u64>, OciError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| {
            v.trim()
                .trim_start_matches("bytes")
                .trim_start_matches([' ', '='])
        })
        .and_then(|v| v.split_once('-'))
        .and_then(|(start, _)| start.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                "malformed Content-Range",
            )
        })
}

/// Appends a request body to a session, refusing parts that do not start where the upload ends.
async fn append_part(
    state: &AppState,
    upload: &mut Upload,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), OciError> {
    let writer = upload.writer(state).await?;
    if let Some(start) = content_range_start(headers)?
        && start != writer.size()
    {
        discard_body(headers, body).await;
        // The caller adds the Range and Location a client resumes from.
        return Err(OciError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            format!(
                "this part starts at {start}, the upload holds {} bytes",
                writer.size()
            ),
        ));
    }
    declared_length(state, headers)?;
    let result = append_body(state, writer, body).await;
    upload.last_used = Instant::now();
    if let Err(error) = result {
        // A part that failed halfway leaves the session in an unknown state: end it.
        upload.writer = None;
        state.oci.uploads.remove(id);
        return Err(error.into());
    }
    Ok(())
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`: one more part.
pub async fn patch(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    id: &str,
    body: Body,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Push)?;
    let upload = state.oci.uploads.get(name, id)?;
    let mut upload = upload.lock().await;
    match append_part(state, &mut upload, id, headers, body).await {
        Ok(()) => {}
        Err(error) if error.status == StatusCode::RANGE_NOT_SATISFIABLE => {
            let mut response = error.into_response();
            response
                .headers_mut()
                .extend(upload_headers(name, id, upload.size()));
            return Ok(response);
        }
        Err(error) => return Err(error),
    }
    let writer = upload.writer(state).await?;
    if let Err(error) = state.oci.uploads.save(name, id, writer).await {
        upload.writer = None;
        state.oci.uploads.remove(id);
        return Err(error);
    }
    Ok(upload_accepted(
        name,
        id,
        upload.size(),
        StatusCode::ACCEPTED,
    ))
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: the last part (possibly empty) and completion.
pub async fn finish(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    id: &str,
    query: &str,
    body: Body,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Push)?;
    let digest = query_param(query, "digest")
        .ok_or_else(|| OciError::digest_invalid("the digest query parameter is required"))?;
    let digest = Digest::parse(&digest)?;
    let upload = state.oci.uploads.get(name, id)?;
    let mut upload = upload.lock().await;
    append_part(state, &mut upload, id, headers, body).await?;
    let writer = upload.writer.take().ok_or_else(OciError::upload_unknown)?;
    state.oci.uploads.remove(id);
    commit_blob(state, name, writer, &digest).await
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`: cancel.
pub async fn cancel(
    state: &AppState,
    caller: &OciCaller,
    headers: &HeaderMap,
    name: &RepositoryName,
    id: &str,
) -> Result<Response, OciError> {
    caller.authorize(state, headers, name, Action::Push)?;
    let upload = state.oci.uploads.get(name, id)?;
    upload.lock().await.writer = None;
    state.oci.uploads.remove(id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

//! Maven repositories under `/maven/<registry>/`: the Maven 2 layout (`GET`/`HEAD`/`PUT` of
//! `<group path>/<artifactId>/<version>/<file>`), the `maven-metadata.xml` files the registry
//! maintains itself, checksum files served for every file and verified when clients upload them,
//! releases that cannot be redeployed (unless the registry allows it) and SNAPSHOT cleanup that keeps
//! the newest builds.
//!
//! An artifact is the package `groupId:artifactId`; its version directory is the version; the files
//! of the directory are the version's files. Checksums (md5, sha1, sha512) are computed while an
//! upload streams into the chunk store and kept as version attributes; sha256 is the blob's own
//! digest. Client copies of `maven-metadata.xml` are accepted and dropped: the registry generates its
//! own from the state on every read. Errors use Arca's JSON error format (Maven only looks at the
//! status).
//!
//! Remote (caching proxy) and virtual Maven registries answer the same paths; where their files and
//! metadata come from is [`remote`]'s business. Deploys to a virtual registry land in its publish
//! target; remote registries take none.

mod checksum;
mod layout;
mod metadata;
mod remote;

use std::collections::BTreeMap;

use arca_protocol::names::validate_registry_name;
use arca_protocol::{
    BlobRef, Command, CommandError, Overwrite, PackageType, Registry, Role, Version,
};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;

use self::checksum::{BodyChecksums, ChecksumKind};
use self::layout::{ArtifactFile, Coordinates, LayoutError, MavenPath, Target, is_snapshot};
use self::metadata::SnapshotFile;
use super::generic::publish_registry;
use crate::AppState;
use crate::auth::Caller;
use crate::blob::read_blob;
use crate::frontend::ApiError;
use crate::frontend::serve_file;
use crate::frontend::{discard_body, receive_blob};
use crate::meta::ProposeError;
use crate::meta::{StateRead, StoreError};
use crate::usage::Download;

/// Registry metadata key: how many builds of each SNAPSHOT version to keep.
pub const SNAPSHOT_KEEP_KEY: &str = "maven.snapshot.keep";

/// Builds of a SNAPSHOT version kept when the registry does not say otherwise.
pub const DEFAULT_SNAPSHOT_KEEP: usize = 5;

/// Largest uploaded checksum file or client `maven-metadata.xml` read.
const SMALL_BODY_LIMIT: usize = 1024 * 1024;

/// Maven repositories at `/maven/<registry>/`.
pub struct Maven;

impl crate::frontend::FrontEnd for Maven {
    fn segment(&self) -> &'static str {
        "maven"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route("/maven/{registry}/{*path}", get(download).put(upload))
    }

    fn is_download(&self, path: &str) -> bool {
        let last = path.rsplit('/').next().unwrap_or_default();
        path.trim_start_matches('/').split('/').count() > 2
            && !last.is_empty()
            && !last.starts_with("maven-metadata.xml")
    }
}

impl From<LayoutError> for ApiError {
    fn from(error: LayoutError) -> Self {
        ApiError::invalid(error.to_string())
    }
}

/// The registry, the repository path as sent (not percent-decoded, already checked by
/// [`MavenPath::parse`]) and what it names.
fn parse_request(uri: &Uri) -> Result<(String, &str, MavenPath), ApiError> {
    let (registry, path) = uri
        .path()
        .strip_prefix("/maven/")
        .and_then(|rest| rest.split_once('/'))
        .ok_or(LayoutError::TooShort)?;
    validate_registry_name(registry)?;
    Ok((registry.to_string(), path, MavenPath::parse(path)?))
}

/// The Maven registry called `name`, after checking that `caller` may do what `needed` allows.
fn maven_registry(
    state: &AppState,
    caller: &Caller,
    name: &str,
    needed: Role,
) -> Result<Registry, ApiError> {
    let registry = state.registry_for(caller, name, needed)?;
    if registry.package_type != PackageType::Maven {
        return Err(ApiError::invalid(format!(
            "registry {name} holds {} packages, not MAVEN",
            registry.package_type
        )));
    }
    Ok(registry)
}

/// A stored file a path resolved to.
struct FoundFile {
    blob: BlobRef,
    /// The requested checksum when it was kept at upload time.
    kept_checksum: Option<String>,
    /// The registry whose version holds the file (`None`: a document a remote registry cached,
    /// which is no version's).
    holder: Option<String>,
}

/// The stored file `filename` names in `version`: the file itself, or for a plain `-SNAPSHOT` name
/// of a SNAPSHOT version, the file of the newest timestamped build with the same classifier and
/// extension.
fn resolve_file<'v>(
    artifact_id: &str,
    version_name: &str,
    version: &'v Version,
    filename: &str,
) -> Option<&'v str> {
    if let Some((stored, _)) = version.files.get_key_value(filename) {
        return Some(stored);
    }
    let wanted = ArtifactFile::parse(artifact_id, version_name, filename)
        .ok()
        .filter(|file| file.build.is_none() && is_snapshot(version_name))?;
    version
        .files
        .keys()
        .filter_map(|stored| {
            let file = ArtifactFile::parse(artifact_id, version_name, stored).ok()?;
            let same_kind =
                file.classifier == wanted.classifier && file.extension == wanted.extension;
            same_kind.then_some((file.build?, stored.as_str()))
        })
        .max()
        .map(|(_, stored)| stored)
}

/// Looks up the file a path names, with the kept checksum of `kind` when one is asked for.
fn find_file(
    state: &AppState,
    registry: &str,
    coordinates: &Coordinates,
    version: &str,
    filename: &str,
    kind: Option<ChecksumKind>,
) -> Result<FoundFile, ApiError> {
    lookup_file(state, registry, coordinates, version, filename, kind)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "{}/{version}/{filename} not found in {registry}",
            coordinates.package()
        ))
    })
}

/// [`find_file`], `None` when the registry does not hold the file.
fn lookup_file(
    state: &AppState,
    registry: &str,
    coordinates: &Coordinates,
    version: &str,
    filename: &str,
    kind: Option<ChecksumKind>,
) -> Result<Option<FoundFile>, StoreError> {
    let view = state.meta.view()?;
    let Some(stored_version) = view.version(registry, &coordinates.package(), version)? else {
        return Ok(None);
    };
    let Some(stored) = resolve_file(&coordinates.artifact_id, version, &stored_version, filename)
    else {
        return Ok(None);
    };
    let Some(entry) = stored_version.files.get(stored) else {
        return Ok(None);
    };
    let kept_checksum = kind.and_then(|kind| match kind.attribute(stored) {
        Some(key) => stored_version.attributes.get(&key).cloned(),
        None => Some(entry.sha256.to_hex()),
    });
    Ok(view.blob(&entry.sha256)?.map(|blob| FoundFile {
        blob,
        kept_checksum,
        holder: Some(registry.to_string()),
    }))
}

/// The checksum of a found file: the kept one, or computed by reading the blob (files that came in
/// some other way than a Maven upload).
async fn checksum_of(
    state: &AppState,
    found: &FoundFile,
    kind: ChecksumKind,
) -> Result<String, ApiError> {
    if let Some(kept) = &found.kept_checksum {
        return Ok(kept.clone());
    }
    let mut hasher = kind.hasher();
    let mut stream = std::pin::pin!(read_blob(state.chunks.clone(), &found.blob, None));
    while let Some(piece) = stream.next().await {
        hasher.update(&piece?);
    }
    Ok(hasher.finish())
}

fn checksum_response(hex: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], hex).into_response()
}

/// Answers a generated `maven-metadata.xml`, or its checksum.
fn generated(
    xml: std::io::Result<Vec<u8>>,
    kind: Option<ChecksumKind>,
) -> Result<Response, ApiError> {
    let xml = xml.map_err(ApiError::internal)?;
    Ok(match kind {
        Some(kind) => checksum_response(kind.of(&xml)),
        None => {
            let etag = format!("\"{}\"", ChecksumKind::Sha256.of(&xml));
            (
                [
                    (header::CONTENT_TYPE, "application/xml".to_string()),
                    (header::ETAG, etag),
                ],
                xml,
            )
                .into_response()
        }
    })
}

/// The files of a SNAPSHOT version, as the version-level metadata describes them.
fn snapshot_files(artifact_id: &str, version_name: &str, version: &Version) -> Vec<SnapshotFile> {
    version
        .files
        .iter()
        .filter_map(|(name, entry)| {
            Some(SnapshotFile {
                file: ArtifactFile::parse(artifact_id, version_name, name).ok()?,
                updated_ms: entry.created_at,
            })
        })
        .collect()
}

/// The `maven-metadata.xml` a local registry generates for `target` (artifact level, or SNAPSHOT
/// version level); `None` when it holds no such artifact or version. Only metadata targets are asked
/// for.
fn local_metadata(
    state: &AppState,
    registry: &str,
    coordinates: &Coordinates,
    target: &Target,
) -> Result<Option<Vec<u8>>, ApiError> {
    let package = coordinates.package();
    let view = state.meta.view()?;
    let xml = match target {
        Target::ArtifactMetadata => match view.package(registry, &package)? {
            Some(stored) => {
                let names = view.version_names(registry, &package)?;
                let versions = names.iter().map(String::as_str);
                Some(metadata::artifact_metadata(
                    coordinates,
                    versions,
                    stored.updated_at,
                ))
            }
            None => None,
        },
        Target::VersionMetadata { version } => match view.version(registry, &package, version)? {
            Some(stored) => {
                let files = snapshot_files(&coordinates.artifact_id, version, &stored);
                Some(metadata::snapshot_metadata(
                    coordinates,
                    version,
                    &files,
                    stored.updated_at,
                ))
            }
            None => None,
        },
        Target::File { .. } => None,
    };
    xml.transpose().map_err(ApiError::internal)
}

/// Adds the stale warning to an answer built from a stale upstream copy.
fn warn_if_stale(mut response: Response, stale: bool) -> Response {
    if stale {
        response.headers_mut().insert(
            header::WARNING,
            header::HeaderValue::from_static(remote::STALE_WARNING),
        );
    }
    response
}

/// `GET`/`HEAD /maven/<registry>/<path>`
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (registry, raw_path, path) = parse_request(&uri)?;
    let found = maven_registry(&state, &caller, &registry, Role::Read)?;
    let upstream_path = remote::upstream_path(raw_path, path.checksum);
    let not_found = || ApiError::not_found(format!("{} not found in {registry}", uri.path()));
    match &path.target {
        Target::ArtifactMetadata | Target::VersionMetadata { .. } => {
            let (xml, stale) = remote::metadata(&state, &found, &path, upstream_path)
                .await?
                .ok_or_else(not_found)?;
            Ok(warn_if_stale(generated(Ok(xml), path.checksum)?, stale))
        }
        Target::File { version, filename } => {
            let package = path.coordinates.package();
            crate::policy::firewall::check_read(&state, &found, &package, version)?;
            let file = remote::File {
                coordinates: &path.coordinates,
                version,
                filename,
                upstream_path,
            };
            let (found, stale) = remote::find_file(&state, &found, &file, path.checksum)
                .await?
                .ok_or_else(not_found)?;
            let response = match path.checksum {
                Some(kind) => checksum_response(checksum_of(&state, &found, kind).await?),
                None => {
                    let download = found
                        .holder
                        .as_deref()
                        .map(|holder| Download::of(holder, &package, version, &caller));
                    serve_file(&state, &headers, &found.blob, download)
                }
            };
            Ok(warn_if_stale(response, stale))
        }
    }
}

/// Answers a refused upload, after [`discard_body`].
async fn refuse(headers: &HeaderMap, body: Body, error: ApiError) -> ApiError {
    discard_body(headers, body).await;
    error
}

/// `PUT /maven/<registry>/<path>`
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    // A deploy to a virtual registry lands in its publish target; remote registries take none.
    let request = parse_request(&uri).and_then(|(name, _, path)| {
        let named = maven_registry(&state, &caller, &name, Role::Write)?;
        Ok((publish_registry(&state, named)?, path))
    });
    let (registry, path) = match request {
        Ok(request) => request,
        Err(error) => return Err(refuse(&headers, body, error).await),
    };
    match path.target {
        Target::ArtifactMetadata | Target::VersionMetadata { .. } => {
            // The registry maintains its own metadata; the client's copy is read and dropped.
            axum::body::to_bytes(body, SMALL_BODY_LIMIT)
                .await
                .map_err(|e| ApiError::invalid(format!("reading maven-metadata.xml: {e}")))?;
            Ok(StatusCode::CREATED)
        }
        Target::File { version, filename } => {
            let file = FileRef {
                registry: &registry,
                coordinates: &path.coordinates,
                version: &version,
                filename: &filename,
            };
            match path.checksum {
                Some(kind) => verify_checksum(&state, &file, kind, &headers, body).await,
                None => store_file(&state, &file, &headers, body).await,
            }
        }
    }
}

/// A file of a version in a registry.
struct FileRef<'a> {
    registry: &'a Registry,
    coordinates: &'a Coordinates,
    version: &'a str,
    filename: &'a str,
}

/// `PUT` of a checksum file: compares it with the checksum of the stored file.
async fn verify_checksum(
    state: &AppState,
    file: &FileRef<'_>,
    kind: ChecksumKind,
    headers: &HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let found = match find_file(
        state,
        &file.registry.name,
        file.coordinates,
        file.version,
        file.filename,
        Some(kind),
    ) {
        Ok(found) => found,
        Err(error) => return Err(refuse(headers, body, error).await),
    };
    let bytes = axum::body::to_bytes(body, SMALL_BODY_LIMIT)
        .await
        .map_err(|e| ApiError::invalid(format!("reading the {kind} checksum: {e}")))?;
    let claimed = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| kind.parse_uploaded(text))
        .ok_or_else(|| ApiError::invalid(format!("the body is not a {kind} checksum")))?;
    let actual = checksum_of(state, &found, kind).await?;
    if claimed != actual {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_MISMATCH",
            format!(
                "{kind} mismatch for {}: uploaded {claimed}, stored file has {actual}",
                file.filename
            ),
        ));
    }
    Ok(StatusCode::CREATED)
}

/// `PUT` of an artifact file: streams it into the chunk store (computing its checksums on the way)
/// and commits it. Release files are not replaced unless the registry allows redeploying.
async fn store_file(
    state: &AppState,
    file: &FileRef<'_>,
    headers: &HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let registry = file.registry;
    let package = file.coordinates.package();
    let snapshot = is_snapshot(file.version);
    let overwrite = if snapshot || registry.allow_redeploy {
        Overwrite::Allow
    } else {
        Overwrite::RefuseFile
    };
    let exists = state
        .meta
        .read(|view| view.version(&registry.name, &package, file.version))?
        .is_some_and(|v| v.files.contains_key(file.filename));
    if overwrite == Overwrite::RefuseFile && exists {
        let error = CommandError::AlreadyExists(format!(
            "release file {package}/{}/{} (registry {} does not allow redeploying releases)",
            file.version, file.filename, registry.name
        ));
        return Err(refuse(headers, body, error.into()).await);
    }
    let (body, checksums) = BodyChecksums::wrap(body);
    let blob = receive_blob(state, headers, body, None).await?;
    state
        .meta
        .propose(Command::PutFile {
            registry: registry.name.clone(),
            package,
            version: file.version.to_string(),
            filename: file.filename.to_string(),
            blob,
            attributes: checksums.attributes(file.filename),
            tags: Vec::new(),
            overwrite,
            at: state.now_ms(),
        })
        .await?;
    if snapshot {
        clean_snapshot(state, file).await;
    }
    Ok(StatusCode::CREATED)
}

/// How many builds of a SNAPSHOT version `registry` keeps (registry metadata
/// [`SNAPSHOT_KEEP_KEY`], at least 1).
fn snapshot_keep(registry: &Registry) -> usize {
    registry
        .metadata
        .get(SNAPSHOT_KEEP_KEY)
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|keep| *keep >= 1)
        .unwrap_or(DEFAULT_SNAPSHOT_KEEP)
}

/// The files of `version` that belong to builds older than the newest `keep`.
fn expired_builds(
    artifact_id: &str,
    version_name: &str,
    version: &Version,
    keep: usize,
) -> Vec<String> {
    let builds: BTreeMap<&String, u32> = version
        .files
        .keys()
        .filter_map(|name| {
            let build = ArtifactFile::parse(artifact_id, version_name, name)
                .ok()?
                .build?;
            Some((name, build.number))
        })
        .collect();
    let mut numbers: Vec<u32> = builds.values().copied().collect();
    numbers.sort_unstable();
    numbers.dedup();
    let Some(&oldest_kept) = numbers.iter().rev().nth(keep.saturating_sub(1)) else {
        return Vec::new();
    };
    builds
        .into_iter()
        .filter(|(_, number)| *number < oldest_kept)
        .map(|(name, _)| name.clone())
        .collect()
}

/// Removes the files (and kept checksums) of every build of a SNAPSHOT version but the newest
/// [`snapshot_keep`]. The upload that triggered it is already stored, so failures are logged, not
/// answered; a file another request removed first is not a failure.
async fn clean_snapshot(state: &AppState, file: &FileRef<'_>) {
    let registry = &file.registry.name;
    let package = file.coordinates.package();
    let keep = snapshot_keep(file.registry);
    let expired = match state
        .meta
        .read(|view| view.version(registry, &package, file.version))
    {
        Ok(version) => version
            .map(|v| expired_builds(&file.coordinates.artifact_id, file.version, &v, keep))
            .unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%registry, %package, version = file.version, %error, "SNAPSHOT cleanup");
            return;
        }
    };
    if expired.is_empty() {
        return;
    }
    let log_failure = |result: Result<(), ProposeError>| match result {
        Ok(()) | Err(ProposeError::Refused(CommandError::NotFound(_))) => {}
        Err(error) => {
            tracing::warn!(%registry, %package, version = file.version, %error, "SNAPSHOT cleanup")
        }
    };
    for filename in &expired {
        log_failure(
            state
                .meta
                .propose(Command::DeleteFile {
                    registry: registry.clone(),
                    package: package.clone(),
                    version: file.version.to_string(),
                    filename: filename.clone(),
                    at: state.now_ms(),
                })
                .await,
        );
    }
    log_failure(
        state
            .meta
            .propose(Command::SetAttributes {
                registry: registry.clone(),
                package: package.clone(),
                version: file.version.to_string(),
                set: BTreeMap::new(),
                remove: expired
                    .iter()
                    .flat_map(|name| ChecksumKind::attributes_of(name))
                    .collect(),
                at: state.now_ms(),
            })
            .await,
    );
    tracing::info!(%registry, %package, version = file.version, keep, removed = expired.len(), "SNAPSHOT cleanup");
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_protocol::FileEntry;

    fn version_with(files: &[&str]) -> Version {
        Version {
            name: "1.1-SNAPSHOT".into(),
            created_at: 0,
            updated_at: 0,
            files: files
                .iter()
                .map(|name| {
                    let entry = FileEntry {
                        sha256: arca_protocol::Sha256([0; 32]),
                        size: 0,
                        created_at: 0,
                    };
                    (name.to_string(), entry)
                })
                .collect(),
            metadata: Default::default(),
            manifest: None,
            attributes: Default::default(),
            firewall: None,
            size: 0,
        }
    }

    #[test]
    fn cleanup_keeps_the_newest_builds() {
        let version = version_with(&[
            "lib-1.1-20240101.000000-1.jar",
            "lib-1.1-20240101.000000-1.pom",
            "lib-1.1-20240102.000000-2.jar",
            "lib-1.1-20240103.000000-10.jar",
            "lib-1.1-20240103.000000-10.pom",
            "lib-1.1-SNAPSHOT.jar",
        ]);
        assert_eq!(
            expired_builds("lib", "1.1-SNAPSHOT", &version, 2),
            vec![
                "lib-1.1-20240101.000000-1.jar",
                "lib-1.1-20240101.000000-1.pom"
            ]
        );
        assert_eq!(expired_builds("lib", "1.1-SNAPSHOT", &version, 1).len(), 3);
        assert!(expired_builds("lib", "1.1-SNAPSHOT", &version, 3).is_empty());
    }

    #[test]
    fn plain_snapshot_names_resolve_to_the_newest_build() {
        let version = version_with(&[
            "lib-1.1-20240101.000000-1.jar",
            "lib-1.1-20240102.000000-2.jar",
            "lib-1.1-20240102.000000-2.pom",
        ]);
        let resolve = |name| resolve_file("lib", "1.1-SNAPSHOT", &version, name);
        assert_eq!(
            resolve("lib-1.1-SNAPSHOT.jar"),
            Some("lib-1.1-20240102.000000-2.jar")
        );
        assert_eq!(
            resolve("lib-1.1-20240101.000000-1.jar"),
            Some("lib-1.1-20240101.000000-1.jar")
        );
        assert_eq!(resolve("lib-1.1-SNAPSHOT-sources.jar"), None);
    }
}

//! Generic registries: any file under `/generic/<registry>/<package>/<version>/<filename>`, uploaded
//! with `PUT` (optionally checked against `X-Checksum-Sha256`), served with `GET`/`HEAD` (ranges, ETag)
//! and removed with `DELETE`. Errors use Arca's JSON error format.

use arca_protocol::api::UploadedFile;
use arca_protocol::names::{
    validate_filename, validate_new_segment, validate_segment, validate_version,
};
use arca_protocol::{Command, Overwrite, PackageType, Registry, Role, Sha256};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::auth::Caller;
use crate::frontend::{ApiError, PathParams};
use crate::frontend::{discard_body, receive_blob, serve_file};
use crate::meta::StateRead;
use crate::proxy::{self, Content, Expected};
use crate::usage::Download;

/// The generic front-end: files at `/generic/<registry>/<package>/<version>/<file>`.
pub struct Generic;

impl crate::frontend::FrontEnd for Generic {
    fn segment(&self) -> &'static str {
        "generic"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route(
            "/generic/{registry}/{package}/{version}/{filename}",
            get(download).put(upload).delete(remove),
        )
    }

    fn is_download(&self, path: &str) -> bool {
        path.trim_start_matches('/').split('/').count() == 5
    }
}

type FilePath = (String, String, String, String);

/// Validates the names of a file path and returns its generic registry, checking `needed`.
fn generic_registry(
    state: &AppState,
    caller: &Caller,
    (registry, package, version, filename): &FilePath,
    needed: Role,
) -> Result<Registry, ApiError> {
    validate_segment("package name", package, 256)?;
    validate_version(version)?;
    validate_filename(filename)?;
    let found = state.registry_for(caller, registry, needed)?;
    if found.package_type != PackageType::Generic {
        return Err(ApiError::invalid(format!(
            "registry {registry} holds {} packages, not GENERIC",
            found.package_type
        )));
    }
    Ok(found)
}

/// What an upload must pass before its body is read: the caller, the names, immutability and the
/// announced checksum.
fn check_upload(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    path: &FilePath,
    headers: &HeaderMap,
) -> Result<(String, Option<Sha256>), ApiError> {
    let registry = publish_registry(state, generic_registry(state, &caller?, path, Role::Write)?)?;
    let (_, package, version, filename) = path;
    validate_new_segment("package name", package, 256)?;
    validate_new_segment("version", version, 128)?;
    validate_new_segment("file name", filename, 255)?;
    let registry_name = &registry.name;
    if registry.immutable
        && state
            .meta
            .read(|view| view.version(registry_name, package, version))?
            .is_some_and(|v| v.files.contains_key(filename))
    {
        return Err(ApiError::conflict(format!(
            "registry {registry_name} is immutable: {package}/{version}/{filename} already exists"
        )));
    }
    let expected = headers
        .get("X-Checksum-Sha256")
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<Sha256>().ok())
                .ok_or_else(|| ApiError::invalid("X-Checksum-Sha256 must be 64 hex characters"))
        })
        .transpose()?;
    Ok((registry_name.clone(), expected))
}

/// The registry a publish to `registry` lands in: itself when local, a virtual registry's publish
/// target; remote registries (and virtual ones without a target) take no publishes.
pub fn publish_registry(state: &AppState, registry: Registry) -> Result<Registry, ApiError> {
    proxy::publish_target(state, &registry).ok_or_else(|| {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "READ_ONLY",
            format!(
                "registry {} is {}: it takes no publishes",
                registry.name,
                match registry.kind {
                    arca_protocol::RegistryKind::Remote => "a remote (caching) registry",
                    _ => "a virtual registry without a publish target",
                }
            ),
        )
    })
}

async fn upload(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PathParams(path): PathParams<FilePath>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UploadedFile>), ApiError> {
    let (registry_name, expected) = match check_upload(&state, caller, &path, &headers) {
        Ok(checked) => checked,
        Err(error) => {
            discard_body(&headers, body).await;
            return Err(error);
        }
    };
    let (_, package, version, filename) = path;
    let blob = receive_blob(&state, &headers, body, expected).await?;
    let uploaded = UploadedFile {
        registry: registry_name.clone(),
        package: package.clone(),
        version: version.clone(),
        filename: filename.clone(),
        size: blob.size,
        sha256: blob.sha256,
    };
    state
        .meta
        .propose(Command::PutFile {
            registry: registry_name,
            package,
            version,
            filename,
            blob,
            attributes: Default::default(),
            tags: Vec::new(),
            overwrite: Overwrite::Allow,
            at: state.now_ms(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(uploaded)))
}

async fn download(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<FilePath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let found = generic_registry(&state, &caller, &path, Role::Read)?;
    let (registry, package, version, filename) = &path;
    crate::policy::firewall::check_read(&state, &found, package, version)?;
    let candidates = proxy::resolution_order(&state, &found);
    let located =
        proxy::find_or_start_file(&state, &candidates, (package, version, filename), |_| {
            Some((
                format!("{package}/{version}/{filename}"),
                Expected::default(),
            ))
        })
        .await?;
    let Some((holder, content)) = located else {
        return Err(ApiError::not_found(format!(
            "file {package}/{version}/{filename} not found in {registry}"
        )));
    };
    let download = Download::of(&holder.name, package, version, &caller);
    match content {
        Content::Stored(blob) => Ok(serve_file(&state, &headers, &blob, Some(download))),
        Content::Arriving(arriving) => Ok(stream_arriving(&state, arriving, download)),
    }
}

/// Answers with a file a remote registry is fetching, streamed as it arrives (ranges are served once
/// it is stored), counted as a download of `download`.
pub fn stream_arriving(
    state: &AppState,
    arriving: proxy::Arriving,
    download: Download<'_>,
) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(axum::http::header::CONTENT_TYPE, "application/octet-stream");
    let length = arriving.declared_length();
    if let Some(length) = length {
        builder = builder.header(axum::http::header::CONTENT_LENGTH, length);
    }
    let body = state
        .usage
        .sending(&download, length)
        .count(arriving.into_body());
    builder
        .body(Body::from_stream(body))
        .unwrap_or_else(|error| ApiError::internal(error).into_response())
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(path): PathParams<FilePath>,
) -> Result<StatusCode, ApiError> {
    generic_registry(&state, &caller, &path, Role::Write)?;
    let (registry, package, version, filename) = path;
    state
        .meta
        .propose(Command::DeleteFile {
            registry,
            package,
            version,
            filename,
            at: state.now_ms(),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

//! PyPI registries under `/pypi/<registry>/`: the simple repository API (PEP 503 HTML and PEP 691
//! JSON, with PEP 592 yanking, PEP 658/714 core metadata and PEP 700 fields), the upload API twine
//! uses, the JSON API, file downloads and a yank endpoint.
//!
//! | method | path (under `/pypi/<registry>`) | what |
//! |---|---|---|
//! | POST | `/` (or `/legacy/`) | upload one distribution (twine) |
//! | GET | `/simple/` | every project |
//! | GET | `/simple/<project>/` | a project's files; other spellings redirect (301) to the normalised name |
//! | GET | `/files/<project>/<version>/<filename>` | a distribution, or `<wheel>.metadata` |
//! | GET | `/pypi/<project>/json`, `/pypi/<project>/<version>/json` | the JSON API |
//! | POST / DELETE | `/yank/<project>/<version>[?reason=]` | yank / un-yank a release |
//!
//! Callers authenticate with Basic credentials (any user name, e.g. `__token__`, and an Arca token as
//! the password) or a bearer token; errors are plain text as warehouse sends them. The rendering
//! modules see projects only through [`model::Project`], whatever stores them.
//!
//! The same endpoints serve remote registries (a caching proxy of an upstream simple index) and
//! virtual ones (an ordered merge of local and remote members); see [`remote`]. Uploads and yanking
//! on a virtual registry go to its publish target; a remote registry takes neither (405).

mod error;
mod index;
mod json_api;
mod model;
pub(crate) mod names;
mod remote;
mod upload;
mod upstream_index;
mod wheel;

use arca_protocol::{Command, PackageType, Registry, RegistryKind, Role};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

pub use self::error::PypiError;
use self::model::{YANKED, YANKED_REASON};
use self::names::{normalize_project, normalize_version};
use self::remote::Resolved;
use crate::AppState;
use crate::auth::Caller;
use crate::formats::oci::query_param;
use crate::frontend::serve_blob;
use crate::proxy;
use crate::usage::Download;

/// The PyPI upload API and simple index at `/pypi/<registry>/`.
pub struct Pypi;

impl crate::frontend::FrontEnd for Pypi {
    fn segment(&self) -> &'static str {
        "pypi"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new()
            .route("/pypi/{registry}", post(upload))
            .route("/pypi/{registry}/", post(upload))
            .route("/pypi/{registry}/legacy/", post(upload))
            .route("/pypi/{registry}/simple", get(simple_root_redirect))
            .route("/pypi/{registry}/simple/", get(simple_root))
            .route("/pypi/{registry}/simple/{project}", get(simple_project))
            .route("/pypi/{registry}/simple/{project}/", get(simple_project))
            .route(
                "/pypi/{registry}/files/{project}/{version}/{filename}",
                get(download),
            )
            .route("/pypi/{registry}/pypi/{project}/json", get(project_json))
            .route(
                "/pypi/{registry}/pypi/{project}/{version}/json",
                get(release_json),
            )
            .route(
                "/pypi/{registry}/yank/{project}/{version}",
                post(yank).delete(unyank),
            )
    }

    fn usual_status(&self, method: &Method) -> u16 {
        match *method {
            // Uploads and yanks answer 200, as PyPI's do.
            Method::POST => 200,
            Method::DELETE => 204,
            _ => 200,
        }
    }

    fn is_download(&self, path: &str) -> bool {
        path.trim_start_matches('/').split('/').nth(2) == Some("files")
    }
}

/// Authenticates the request and returns registry `name`, which must be a PyPI registry the caller
/// may use with `needed`.
fn open_registry(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    needed: Role,
) -> Result<Registry, PypiError> {
    let caller = crate::auth::authenticate(state, headers)?;
    registry_as(state, &caller, name, needed)
}

/// [`open_registry`] for a caller already authenticated.
fn registry_as(
    state: &AppState,
    caller: &Caller,
    name: &str,
    needed: Role,
) -> Result<Registry, PypiError> {
    let registry = state.registry_for(caller, name, needed)?;
    if registry.package_type != PackageType::Pypi {
        return Err(PypiError::not_found(format!(
            "registry {name} holds {} packages, not PYPI",
            registry.package_type
        )));
    }
    Ok(registry)
}

/// The registry a write to `registry` (an upload, a yank) lands in: itself when local, a virtual
/// registry's publish target; a remote registry (or a virtual one without a target) refuses it (405).
fn publish_target(state: &AppState, registry: &Registry) -> Result<Registry, PypiError> {
    proxy::publish_target(state, registry).ok_or_else(|| {
        PypiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "registry {} is {}: it takes no uploads",
                registry.name,
                match registry.kind {
                    RegistryKind::Remote => "a remote (caching) registry",
                    _ => "a virtual registry without a publish target",
                }
            ),
        )
    })
}

/// Adds the stale warning to an answer built from a stale upstream page.
fn warn_if_stale(mut response: Response, stale: bool) -> Response {
    if stale {
        response.headers_mut().insert(
            header::WARNING,
            HeaderValue::from_static(remote::STALE_WARNING),
        );
    }
    response
}

fn redirect(location: String) -> Response {
    let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn with_query(path: String, query: Option<&str>) -> String {
    match query {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path,
    }
}

async fn upload(
    State(state): State<AppState>,
    Path(registry): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PypiError> {
    upload::upload(&state, &registry, &headers, body).await
}

async fn simple_root_redirect(Path(registry): Path<String>, RawQuery(query): RawQuery) -> Response {
    redirect(with_query(
        format!("/pypi/{registry}/simple/"),
        query.as_deref(),
    ))
}

async fn simple_root(
    State(state): State<AppState>,
    Path(registry): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PypiError> {
    let found = open_registry(&state, &headers, &registry, Role::Read)?;
    let format = index::negotiate(&headers, query.as_deref())?;
    let projects = remote::known_projects(&state, &found)?;
    Ok(index::root(
        format,
        &format!("/pypi/{registry}/simple"),
        &projects,
    ))
}

/// `/simple/<project>/`; other spellings of the name, and the path without its trailing slash,
/// redirect to the canonical URL.
async fn simple_project(
    State(state): State<AppState>,
    Path((registry, project)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, PypiError> {
    let found = open_registry(&state, &headers, &registry, Role::Read)?;
    let normalized = normalize_project(&project);
    if normalized != project || !uri.path().ends_with('/') {
        return Ok(redirect(with_query(
            format!("/pypi/{registry}/simple/{normalized}/"),
            query.as_deref(),
        )));
    }
    let format = index::negotiate(&headers, query.as_deref())?;
    let Resolved { project, stale } = remote::resolve_project(&state, &found, &normalized).await?;
    Ok(warn_if_stale(index::project(format, &project), stale))
}

async fn download(
    State(state): State<AppState>,
    Path((registry, project, version, filename)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, PypiError> {
    let caller = crate::auth::authenticate(&state, &headers)?;
    let found = registry_as(&state, &caller, &registry, Role::Read)?;
    let project = normalize_project(&project);
    crate::policy::firewall::check_read(&state, &found, &project, &version)?;
    let (holder, blob) = remote::find_file(&state, &found, &project, &version, &filename)
        .await?
        .ok_or_else(|| {
            PypiError::not_found(format!("file {project}/{version}/{filename} not found"))
        })?;
    // A file's core metadata (PEP 658), which installers read before choosing, is no download.
    let stored = stored_version(&version);
    let download = (!filename.ends_with(model::METADATA_SUFFIX))
        .then(|| Download::of(&holder.name, &project, &stored, &caller));
    Ok(serve_blob(&state, &headers, &blob, download, |message| {
        PypiError::new(StatusCode::RANGE_NOT_SATISFIABLE, message).into_response()
    }))
}

/// The JSON API's URL of a project.
fn project_url(registry: &str, project: &str) -> String {
    format!("/pypi/{registry}/pypi/{project}/")
}

async fn project_json(
    State(state): State<AppState>,
    Path((registry, project)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, PypiError> {
    let found = open_registry(&state, &headers, &registry, Role::Read)?;
    let Resolved { project, stale } =
        remote::resolve_project(&state, &found, &normalize_project(&project)).await?;
    let json = json_api::project(&project, &project_url(&registry, &project.name))
        .ok_or_else(|| PypiError::not_found("the project has no release"))?;
    Ok(warn_if_stale(Json(json).into_response(), stale))
}

/// The version as stored: its PEP 440 normal form when it has one.
fn stored_version(version: &str) -> String {
    normalize_version(version).unwrap_or_else(|| version.to_string())
}

async fn release_json(
    State(state): State<AppState>,
    Path((registry, project, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, PypiError> {
    let found = open_registry(&state, &headers, &registry, Role::Read)?;
    let Resolved { project, stale } =
        remote::resolve_project(&state, &found, &normalize_project(&project)).await?;
    let release = project
        .release(&stored_version(&version))
        .ok_or_else(|| PypiError::not_found(format!("release {version} not found")))?;
    let json = json_api::release(&project, release, &project_url(&registry, &project.name));
    Ok(warn_if_stale(Json(json).into_response(), stale))
}

/// Sets or clears the yanked state of a release (PEP 592).
async fn set_yanked(
    state: &AppState,
    headers: &HeaderMap,
    (registry, project, version): (String, String, String),
    reason: Option<String>,
) -> Result<Json<serde_json::Value>, PypiError> {
    let registry = publish_target(
        state,
        &open_registry(state, headers, &registry, Role::Write)?,
    )?
    .name;
    let package = normalize_project(&project);
    let version = stored_version(&version);
    let yanked = reason.is_some();
    let (set, remove) = match &reason {
        Some(reason) => (
            [
                (YANKED.to_string(), "true".to_string()),
                (YANKED_REASON.to_string(), reason.clone()),
            ]
            .into(),
            Vec::new(),
        ),
        None => (
            Default::default(),
            vec![YANKED.to_string(), YANKED_REASON.to_string()],
        ),
    };
    state
        .meta
        .propose(Command::SetAttributes {
            registry,
            package: package.clone(),
            version: version.clone(),
            set,
            remove,
            at: state.now_ms(),
        })
        .await?;
    Ok(Json(serde_json::json!({
        "project": package,
        "version": version,
        "yanked": yanked,
        "yanked_reason": reason,
    })))
}

async fn yank(
    State(state): State<AppState>,
    Path(path): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, PypiError> {
    let reason = query
        .as_deref()
        .and_then(|q| query_param(q, "reason"))
        .unwrap_or_default();
    set_yanked(&state, &headers, path, Some(reason)).await
}

async fn unyank(
    State(state): State<AppState>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, PypiError> {
    set_yanked(&state, &headers, path, None).await
}

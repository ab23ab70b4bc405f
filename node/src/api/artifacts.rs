//! Packages and versions through the management API: listing with paging, get, delete, and copying a
//! version to another registry (new references to the same blobs; no bytes move).

use arca_protocol::api::{
    CopyVersionRequest, FileInfo, PackageInfo, PackageSummary, Page, PageQuery, VersionInfo,
};
use std::collections::BTreeMap;

use arca_protocol::{Command, Package, Role, Version};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, JsonBody, PathParams, QueryParams, paginate};
use crate::meta::state::MetaState;
use crate::{AppState, auth::Caller};

const PACKAGE: &str = "/registries/{registry}/packages/{package}";
const VERSION: &str = "/registries/{registry}/packages/{package}/versions/{version}";

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/artifacts", get(list))
        .route(PACKAGE, get(fetch_package).delete(remove_package))
        .route(VERSION, get(fetch_version).delete(remove_version))
        .route(&format!("{VERSION}/copy"), post(copy_version))
}

/// `?registry=&page=&page_size=` (flattening [`PageQuery`] would break number parsing in query strings).
#[derive(Debug, Deserialize)]
struct ListQuery {
    registry: Option<String>,
    page: Option<u64>,
    page_size: Option<u64>,
}

impl ListQuery {
    fn page(&self) -> PageQuery {
        let default = PageQuery::default();
        PageQuery {
            page: self.page.unwrap_or(default.page),
            page_size: self.page_size.unwrap_or(default.page_size),
        }
    }
}

/// The size of a version: its files plus, for OCI, each distinct blob its manifest references.
fn version_size(meta: &MetaState, version: &Version) -> u64 {
    let mut blobs = BTreeMap::new();
    for file in version.files.values() {
        blobs.insert(file.sha256, file.size);
    }
    let referenced = version.manifest.iter().flat_map(|m| m.blobs.iter());
    for blob in referenced.filter_map(|digest| meta.blob_by_digest(digest)) {
        blobs.insert(blob.sha256, blob.size);
    }
    blobs.values().sum()
}

/// How the API shows a version of `package`.
pub fn version_info(
    meta: &MetaState,
    registry: &str,
    package: &Package,
    version: &Version,
) -> VersionInfo {
    VersionInfo {
        registry: registry.to_string(),
        package: package.name.clone(),
        version: version.name.clone(),
        created_at: version.created_at,
        updated_at: version.updated_at,
        files: version
            .files
            .iter()
            .map(|(name, file)| FileInfo {
                name: name.clone(),
                size: file.size,
                sha256: file.sha256,
                created_at: file.created_at,
            })
            .collect(),
        metadata: version.metadata.clone(),
        tags: package
            .tags
            .iter()
            .filter(|(_, target)| **target == version.name)
            .map(|(tag, _)| tag.clone())
            .collect(),
        size: version_size(meta, version),
        attributes: version.attributes.clone(),
    }
}

fn package_summary(meta: &MetaState, registry: &str, package: &Package) -> PackageSummary {
    let latest = package.versions.values().max_by(|a, b| {
        a.updated_at
            .cmp(&b.updated_at)
            .then_with(|| a.name.cmp(&b.name))
    });
    PackageSummary {
        registry: registry.to_string(),
        name: package.name.clone(),
        latest_version: latest.map(|v| v.name.clone()),
        version_count: package.versions.len() as u64,
        size: package
            .versions
            .values()
            .map(|v| version_size(meta, v))
            .sum(),
        updated_at: package.updated_at,
        metadata: package.metadata.clone(),
        origin: latest.and_then(|v| v.attributes.get(crate::proxy::ORIGIN).cloned()),
        last_access: package
            .versions
            .values()
            .filter_map(|v| v.attributes.get(crate::proxy::LAST_ACCESS)?.parse().ok())
            .max(),
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Page<PackageSummary>>, ApiError> {
    match &query.registry {
        Some(name) => {
            state.registry_for(&caller, name, Role::Read)?;
        }
        None => caller.require_login()?,
    }
    let summaries = state.meta.read(|meta| {
        meta.registries
            .values()
            .filter(|r| {
                query
                    .registry
                    .as_ref()
                    .is_none_or(|name| &r.registry.name == name)
                    && caller.may(&r.registry, Role::Read)
            })
            .flat_map(|r| {
                r.packages
                    .values()
                    .map(|p| package_summary(meta, &r.registry.name, p))
            })
            .collect::<Vec<_>>()
    });
    Ok(Json(paginate(summaries, query.page())?))
}

async fn fetch_package(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package)): PathParams<(String, String)>,
) -> Result<Json<PackageInfo>, ApiError> {
    state.registry_for(&caller, &registry, Role::Read)?;
    state
        .meta
        .read(|meta| {
            meta.package(&registry, &package).map(|p| {
                let mut versions: Vec<VersionInfo> = p
                    .versions
                    .values()
                    .map(|v| version_info(meta, &registry, p, v))
                    .collect();
                versions.sort_by(|a, b| {
                    a.created_at
                        .cmp(&b.created_at)
                        .then_with(|| a.version.cmp(&b.version))
                });
                PackageInfo {
                    registry: registry.clone(),
                    name: p.name.clone(),
                    created_at: p.created_at,
                    updated_at: p.updated_at,
                    versions,
                    metadata: p.metadata.clone(),
                }
            })
        })
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("package {registry}/{package} not found")))
}

async fn fetch_version(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package, version)): PathParams<(String, String, String)>,
) -> Result<Json<VersionInfo>, ApiError> {
    state.registry_for(&caller, &registry, Role::Read)?;
    state
        .meta
        .read(|meta| {
            let p = meta.package(&registry, &package)?;
            p.versions
                .get(&version)
                .map(|v| version_info(meta, &registry, p, v))
        })
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!("version {registry}/{package}/{version} not found"))
        })
}

async fn remove_package(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.registry_for(&caller, &registry, Role::Write)?;
    state
        .meta
        .propose(Command::DeletePackage { registry, package })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_version(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package, version)): PathParams<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    state.registry_for(&caller, &registry, Role::Write)?;
    state
        .meta
        .propose(Command::DeleteVersion {
            registry,
            package,
            version,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn copy_version(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package, version)): PathParams<(String, String, String)>,
    JsonBody(request): JsonBody<CopyVersionRequest>,
) -> Result<(StatusCode, Json<VersionInfo>), ApiError> {
    let source = state.registry_for(&caller, &registry, Role::Read)?;
    crate::policy::firewall::check_read(&state, &source, &package, &version)?;
    let destination = request.destination_registry;
    state.registry_for(&caller, &destination, Role::Write)?;
    state
        .meta
        .propose(Command::CopyVersion {
            from_registry: registry,
            package: package.clone(),
            version: version.clone(),
            to_registry: destination.clone(),
            at: state.now_ms(),
        })
        .await?;
    let copied = state
        .meta
        .read(|meta| {
            let p = meta.package(&destination, &package)?;
            p.versions
                .get(&version)
                .map(|v| version_info(meta, &destination, p, v))
        })
        .ok_or_else(|| ApiError::internal("the copied version vanished"))?;
    Ok((StatusCode::CREATED, Json(copied)))
}

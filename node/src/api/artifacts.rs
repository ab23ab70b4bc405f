//! Packages and versions through the management API: listing with paging (by cursor over the
//! package index, so a page costs the same however deep it is), get, delete, and copying a version
//! to another registry (new references to the same blobs; no bytes move).

use arca_protocol::api::{
    CopyVersionRequest, FileInfo, PackageInfo, PackageSummary, Page, PageQuery, VersionInfo,
};
use std::collections::BTreeMap;

use arca_protocol::{Command, Package, Role, Version};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;

use super::{ApiError, JsonBody, PathParams, QueryParams, check_page};
use crate::meta::{ReadView, StateRead, StoreError};
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

/// `?registry=&page=&page_size=&cursor=` (flattening [`PageQuery`] would break number parsing in
/// query strings).
#[derive(Debug, Deserialize)]
struct ListQuery {
    registry: Option<String>,
    page: Option<u64>,
    page_size: Option<u64>,
    cursor: Option<String>,
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

/// A position in the listing: after this package of this registry.
fn encode_cursor(registry: &str, package: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{registry}\n{package}"))
}

fn decode_cursor(cursor: &str) -> Result<(String, String), ApiError> {
    let invalid = || ApiError::invalid("cursor is not one this server gave");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (registry, package) = text.split_once('\n').ok_or_else(invalid)?;
    Ok((registry.to_string(), package.to_string()))
}

/// How the API shows a version of `package` (whose tags are `tags`: tag to version).
pub fn version_info(
    registry: &str,
    package: &str,
    tags: &BTreeMap<String, String>,
    version: &Version,
) -> VersionInfo {
    VersionInfo {
        registry: registry.to_string(),
        package: package.to_string(),
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
        tags: tags
            .iter()
            .filter(|(_, target)| **target == version.name)
            .map(|(tag, _)| tag.clone())
            .collect(),
        size: version.size,
        attributes: version.attributes.clone(),
    }
}

/// How a listing shows a package: what its record keeps, and where its latest version came from.
fn package_summary(
    view: &ReadView,
    registry: &str,
    package: Package,
) -> Result<PackageSummary, StoreError> {
    let latest = package.latest_version().map(str::to_string);
    let origin = match &latest {
        Some(name) => view
            .version(registry, &package.name, name)?
            .and_then(|v| v.attributes.get(crate::proxy::ORIGIN).cloned()),
        None => None,
    };
    Ok(PackageSummary {
        registry: registry.to_string(),
        name: package.name,
        latest_version: latest,
        version_count: package.version_count,
        size: package.size,
        updated_at: package.updated_at,
        metadata: package.metadata,
        origin,
        last_access: package.last_access,
    })
}

/// `GET /api/v1/artifacts`: the packages of one registry (or of every registry the caller may
/// read), by registry and name. A `cursor` continues where the page that gave it ended; without
/// one, `page` counts pages from the start (skipping the earlier ones key by key).
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
    let page = query.page();
    check_page(&page)?;
    let size = page.page_size as usize;
    let mut position = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let view = state.meta.view()?;
    let registries: Vec<_> = view
        .registries()?
        .into_iter()
        .filter(|r| {
            query
                .registry
                .as_ref()
                .is_none_or(|name| &r.registry.name == name)
                && caller.may(&r.registry, Role::Read)
        })
        .collect();
    let total = registries.iter().map(|r| r.packages).sum();
    let mut skip = if position.is_none() {
        (page.page - 1).saturating_mul(page.page_size)
    } else {
        0
    };
    let mut items = Vec::with_capacity(size);
    let mut more = false;
    for record in &registries {
        let name = &record.registry.name;
        let after = match &position {
            Some((registry, _)) if registry > name => continue,
            Some((registry, package)) if registry == name => Some(package.clone()),
            _ => None,
        };
        position = None;
        if skip >= record.packages && after.is_none() {
            skip -= record.packages;
            continue;
        }
        let mut after = after;
        while skip > 0 {
            let skipped = view.package_names(name, after.as_deref(), skip.min(10_000) as usize)?;
            let Some(last) = skipped.last() else { break };
            skip -= skipped.len() as u64;
            after = Some(last.clone());
        }
        let wanted = size + 1 - items.len();
        for package in view.packages(name, after.as_deref(), wanted)? {
            if items.len() == size {
                more = true;
                break;
            }
            items.push(package_summary(&view, name, package)?);
        }
        if more {
            break;
        }
    }
    let next_cursor = match items.last() {
        Some(last) if more => Some(encode_cursor(&last.registry, &last.name)),
        _ => None,
    };
    Ok(Json(Page {
        items,
        page: if query.cursor.is_some() { 0 } else { page.page },
        page_size: page.page_size,
        total,
        next_cursor,
    }))
}

async fn fetch_package(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package)): PathParams<(String, String)>,
) -> Result<Json<PackageInfo>, ApiError> {
    state.registry_for(&caller, &registry, Role::Read)?;
    let view = state.meta.view()?;
    let p = view
        .package(&registry, &package)?
        .ok_or_else(|| ApiError::not_found(format!("package {registry}/{package} not found")))?;
    let tags = view.tags(&registry, &package)?;
    let mut versions: Vec<VersionInfo> = view
        .versions(&registry, &package)?
        .iter()
        .map(|v| version_info(&registry, &package, &tags, v))
        .collect();
    versions.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.version.cmp(&b.version))
    });
    Ok(Json(PackageInfo {
        registry: registry.clone(),
        name: p.name,
        created_at: p.created_at,
        updated_at: p.updated_at,
        versions,
        metadata: p.metadata,
    }))
}

/// A stored version as the API shows it, if there is one.
fn stored_version(
    state: &AppState,
    registry: &str,
    package: &str,
    version: &str,
) -> Result<Option<VersionInfo>, StoreError> {
    let view = state.meta.view()?;
    let Some(found) = view.version(registry, package, version)? else {
        return Ok(None);
    };
    let tags = view.tags(registry, package)?;
    Ok(Some(version_info(registry, package, &tags, &found)))
}

async fn fetch_version(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((registry, package, version)): PathParams<(String, String, String)>,
) -> Result<Json<VersionInfo>, ApiError> {
    state.registry_for(&caller, &registry, Role::Read)?;
    stored_version(&state, &registry, &package, &version)?
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
    let copied = stored_version(&state, &destination, &package, &version)?
        .ok_or_else(|| ApiError::internal("the copied version vanished"))?;
    Ok((StatusCode::CREATED, Json(copied)))
}

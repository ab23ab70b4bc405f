//! Reads: packuments (full or abbreviated, as the `Accept` header asks), single version manifests,
//! tarballs and search.

use arca_protocol::Role;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::names::PackageName;
use super::packument::{self, ABBREVIATED};
use super::publish::version_of_file;
use super::{Context, NpmError};
use crate::formats::serve_blob;

/// Search results per page unless asked otherwise, and at most.
const SEARCH_SIZE: (usize, usize) = (20, 250);

/// True when the client prefers the abbreviated packument (npm install sends
/// `application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*`).
fn wants_abbreviated(ctx: &Context<'_>) -> bool {
    ctx.headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            parts.next() == Some(ABBREVIATED)
                && !parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0")
        })
}

/// `GET /<name>`: the packument.
pub fn packument(ctx: &Context<'_>, name: &str) -> Result<Response, NpmError> {
    ctx.authorize(Role::Read)?;
    let name = PackageName::parse(name)?;
    let package = ctx.package(name.as_str())?;
    let base = ctx.base_url();
    let (document, media_type) = if wants_abbreviated(ctx) {
        (packument::abbreviated(&package, &base), ABBREVIATED)
    } else {
        (packument::full(&package, &base), "application/json")
    };
    let mut response = Json(document).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

/// `GET /<name>/<version or dist-tag>`: one version's manifest.
pub fn version(ctx: &Context<'_>, name: &str, wanted: &str) -> Result<Response, NpmError> {
    ctx.authorize(Role::Read)?;
    let name = PackageName::parse(name)?;
    let package = ctx.package(name.as_str())?;
    let found = package.tags.get(wanted).map_or(wanted, String::as_str);
    let version = package
        .versions
        .get(found)
        .ok_or_else(|| NpmError::not_found(format!("version not found: {name}@{wanted}")))?;
    Ok(Json(packument::version_manifest(
        &package,
        version,
        &ctx.base_url(),
    ))
    .into_response())
}

/// `GET /<name>/-/<file>`: a tarball.
pub fn tarball(ctx: &Context<'_>, name: &str, file: &str) -> Result<Response, NpmError> {
    ctx.authorize(Role::Read)?;
    let name = PackageName::parse(name)?;
    let missing = || NpmError::not_found(format!("{name} has no tarball {file}"));
    let blob = ctx
        .state
        .meta
        .read(|meta| {
            let package = meta.package(&ctx.registry, name.as_str())?;
            let version = version_of_file(package, file)?;
            let entry = package.versions.get(&version)?.files.get(file)?;
            meta.blobs.get(&entry.sha256).cloned()
        })
        .ok_or_else(missing)?;
    Ok(serve_blob(ctx.state, ctx.headers, &blob, |message| {
        NpmError::new(StatusCode::RANGE_NOT_SATISFIABLE, message).into_response()
    }))
}

/// `GET /-/v1/search?text=&size=&from=`: packages whose name, description or keywords contain every
/// word of `text`, in npm's search result format.
pub fn search(ctx: &Context<'_>, query: &str) -> Result<Response, NpmError> {
    ctx.authorize(Role::Read)?;
    let param = |key: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let number = |key: &str, default: usize| {
        param(key).map_or(Ok(default), |v| {
            v.parse::<usize>()
                .map_err(|_| NpmError::bad_request(format!("{key} must be a number")))
        })
    };
    let size = number("size", SEARCH_SIZE.0)?.clamp(1, SEARCH_SIZE.1);
    let from = number("from", 0)?;
    let terms: Vec<String> = param("text")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let hits: Vec<serde_json::Value> = ctx.state.meta.read(|meta| {
        meta.registry(&ctx.registry)
            .into_iter()
            .flat_map(|r| r.packages.values())
            .filter_map(|package| packument::search_object(package, &terms))
            .collect()
    });
    let total = hits.len();
    let objects: Vec<_> = hits.into_iter().skip(from).take(size).collect();
    Ok(Json(json!({
        "objects": objects,
        "total": total,
        "time": packument::iso_time(ctx.state.now_ms()),
    }))
    .into_response())
}

//! Reads: packuments (full or abbreviated, as the `Accept` header asks), single version manifests,
//! dist-tags, tarballs and search. Each reads the package as [`remote::resolve`] sees it, so a remote
//! or virtual registry answers like a local one; a packument built from a stale upstream copy carries
//! `Warning: 110 - "Response is Stale"`.

use crate::frontend::documents::accepts;
use crate::meta::{PackageContents, StateRead};
use arca_protocol::{RegistryKind, Role};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::names::PackageName;
use super::packument::{self, ABBREVIATED};
use super::remote::{self, Resolved};
use super::{Context, NpmError};
use crate::frontend::documents::{DocumentKey, Rendered};
use crate::frontend::serve_blob;
use crate::proxy;
use crate::usage::Download;

/// The warning a packument built from a stale upstream copy carries.
const STALE_WARNING: &str = "110 - \"Response is Stale\"";

/// Search results per page unless asked otherwise, and at most.
const SEARCH_SIZE: (usize, usize) = (20, 250);

/// True when the client prefers the abbreviated packument (npm install sends
/// `application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*`).
fn wants_abbreviated(ctx: &Context<'_>) -> bool {
    accepts(ctx.headers, header::ACCEPT, ABBREVIATED)
}

/// The package `name` as a read of the addressed registry sees it, or 404.
async fn resolve(ctx: &Context<'_>, name: &str) -> Result<(PackageName, Resolved), NpmError> {
    let registry = ctx.authorize(Role::Read)?;
    let name = PackageName::parse_existing(name)?;
    let resolved = remote::resolve(ctx.state, &registry, &name)
        .await?
        .ok_or_else(|| NpmError::not_found(format!("package {name} not found")))?;
    Ok((name, resolved))
}

/// Adds the stale warning to `response` when `resolved` is stale.
fn warn_if_stale(mut response: Response, resolved: &Resolved) -> Response {
    if resolved.stale {
        response
            .headers_mut()
            .insert(header::WARNING, HeaderValue::from_static(STALE_WARNING));
    }
    response
}

/// `GET /<name>`: the packument. A local registry's is rendered once per change of the package and
/// served from the node's documents until the next (with an entity tag, so a client that has it
/// gets 304); a remote or virtual registry's is built from what its members resolve to, and kept
/// the same way for as long as they resolve to the same sources.
pub async fn packument(ctx: &Context<'_>, name: &str) -> Result<Response, NpmError> {
    let registry = ctx.authorize(Role::Read)?;
    if registry.kind == RegistryKind::Local {
        return local_packument(ctx, &registry.name, name);
    }
    let (name, resolved) = resolve(ctx, name).await?;
    let abbreviated = wants_abbreviated(ctx);
    let base = ctx.base_url();
    // Rendered once per set of sources (a member's new generation, an upstream's new packument).
    let key = DocumentKey {
        registry: registry.name.clone(),
        package: name.to_string(),
        generation: 0,
        variant: format!(
            "{} {base} {}",
            if abbreviated { "abbreviated" } else { "full" },
            resolved.sources
        ),
    };
    let rendered = ctx
        .state
        .documents
        .get_or_render(key, || render(resolved.package(), abbreviated, &base))?;
    Ok(warn_if_stale(
        respond_packument(ctx, &rendered, abbreviated),
        &resolved,
    ))
}

/// The packument of `package` as JSON, abbreviated or full, with tarball URLs under `base`.
fn render(package: &PackageContents, abbreviated: bool, base: &str) -> Result<Vec<u8>, NpmError> {
    let document = if abbreviated {
        packument::abbreviated(package, base)
    } else {
        packument::full(package, base)
    };
    document.map_err(NpmError::internal)
}

/// The response carrying a rendered packument: its media type, and no caching without asking
/// again (the entity tag makes asking cheap).
fn respond_packument(ctx: &Context<'_>, rendered: &Rendered, abbreviated: bool) -> Response {
    let media_type = if abbreviated {
        ABBREVIATED
    } else {
        "application/json"
    };
    let mut response = rendered.respond(ctx.headers, media_type);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The packument of a package of the local registry `registry`, from the node's documents.
fn local_packument(ctx: &Context<'_>, registry: &str, name: &str) -> Result<Response, NpmError> {
    let name = PackageName::parse_existing(name)?;
    let abbreviated = wants_abbreviated(ctx);
    let base = ctx.base_url();
    let view = ctx.state.meta.view()?;
    let not_found = || NpmError::not_found(format!("package {name} not found"));
    let record = view
        .package(registry, name.as_str())?
        .ok_or_else(not_found)?;
    let key = DocumentKey {
        registry: registry.to_string(),
        package: name.to_string(),
        generation: record.generation,
        variant: format!(
            "{} {base}",
            if abbreviated { "abbreviated" } else { "full" }
        ),
    };
    let rendered = ctx.state.documents.get_or_render(key, || {
        let package = view
            .package_contents(registry, name.as_str())?
            .ok_or_else(not_found)?;
        render(&package, abbreviated, &base)
    })?;
    Ok(respond_packument(ctx, &rendered, abbreviated))
}

/// `GET /<name>/<version or dist-tag>`: one version's manifest.
pub async fn version(ctx: &Context<'_>, name: &str, wanted: &str) -> Result<Response, NpmError> {
    let (name, resolved) = resolve(ctx, name).await?;
    let package = resolved.package();
    let found = package.tags.get(wanted).map_or(wanted, String::as_str);
    let version = package
        .versions
        .get(found)
        .ok_or_else(|| NpmError::not_found(format!("version not found: {name}@{wanted}")))?;
    let manifest = packument::version_manifest(package, version, &ctx.base_url())
        .map_err(NpmError::internal)?;
    let response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        manifest,
    )
        .into_response();
    Ok(warn_if_stale(response, &resolved))
}

/// `GET /-/package/<name>/dist-tags`.
pub async fn list_tags(ctx: &Context<'_>, name: &str) -> Result<Response, NpmError> {
    let (_, resolved) = resolve(ctx, name).await?;
    Ok(warn_if_stale(
        Json(&resolved.package().tags).into_response(),
        &resolved,
    ))
}

/// `GET /<name>/-/<file>`: a tarball, from the registry (or, for a remote registry, its upstream;
/// for a virtual registry, its first member that has it).
pub async fn tarball(ctx: &Context<'_>, name: &str, file: &str) -> Result<Response, NpmError> {
    let registry = ctx.authorize(Role::Read)?;
    let name = PackageName::parse_existing(name)?;
    let (holder, version, blob) = remote::tarball(ctx.state, &registry, &name, file)
        .await?
        .ok_or_else(|| NpmError::not_found(format!("{name} has no tarball {file}")))?;
    let download = Download::of(&holder.name, name.as_str(), &version, &ctx.caller);
    Ok(serve_blob(
        ctx.state,
        ctx.headers,
        &blob,
        Some(download),
        |message| NpmError::new(StatusCode::RANGE_NOT_SATISFIABLE, message).into_response(),
    ))
}

/// `GET /-/v1/search?text=&size=&from=`: packages matching `text` (names, descriptions, keywords,
/// READMEs; see [`crate::search`]), best first, in npm's search result format, answered from the
/// node's search index. A virtual registry searches what its members hold (a remote registry: the
/// packages it has cached), a package of an earlier member hiding a later one's.
pub async fn search(ctx: &Context<'_>, query: &str) -> Result<Response, NpmError> {
    let registry = ctx.authorize(Role::Read)?;
    let members: Vec<String> = proxy::resolution_order(ctx.state, &registry)
        .into_iter()
        .map(|member| member.name)
        .collect();
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
    let words = param("text")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let (hits, total) = ctx
        .state
        .search
        .clone()
        .find_in_members(ctx.state.meta.clone(), members, words, (from, size))
        .await
        .map_err(NpmError::internal)?;
    let view = ctx.state.meta.view()?;
    let today = crate::meta::usage::day_of(ctx.state.now_ms());
    let mut objects = Vec::new();
    for hit in hits {
        let Some(contents) = view.package_contents(&hit.registry, &hit.package)? else {
            continue;
        };
        let since = |days: u32| {
            crate::meta::usage::package_downloads_between(
                &view,
                &hit.registry,
                &hit.package,
                (today.saturating_sub(days - 1), today),
            )
        };
        let downloads = packument::RecentDownloads {
            weekly: since(7)?,
            monthly: since(30)?,
        };
        objects.extend(packument::search_object(&contents, hit.score, downloads));
    }
    Ok(Json(json!({
        "objects": objects,
        "total": total,
        "time": packument::iso_time(ctx.state.now_ms()),
    }))
    .into_response())
}

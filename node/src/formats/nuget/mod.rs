//! NuGet feeds under `/nuget/<registry>/`: the v2 OData feed at that root (what `nuget.exe` 2.x
//! and `packages.config` restores read, see [`v2`]), the v3 service index at `v3/index.json` with
//! its flat container, registration pages and search (see [`v3`]), and pushes
//! (`PUT api/v2/package`, or `PUT` to the root as `nuget.exe` 2.x does: a multipart form holding
//! the `.nupkg`, `X-NuGet-ApiKey` an Arca token)
//! with delete as unlist (`DELETE api/v2/package/<id>/<version>`, or `DELETE <id>/<version>` as
//! `nuget.exe` 2.x sends it) and relist (`POST api/v2/package/<id>/<version>`).
//!
//! Storage mapping: a package id, lower-cased (ids compare case-insensitively), is a package; its
//! normalized version, lower-cased, a version whose one file is `<id>.<version>.nupkg`. What the
//! `.nuspec` says (read at push, see [`package`]) is a version attribute, as JSON, with the
//! package's SHA-512 (the v2 `PackageHash`); an unlisted version carries `nuget.listed = false`.
//!
//! Remote NuGet registries proxy a v3 feed (the upstream URL is its service index, such as
//! `https://api.nuget.org/v3/index.json`): its registration index per package is a cached document
//! and packages are fetched once from its flat container (see [`remote`]); virtual ones serve their
//! members' versions together, the first member holding a version giving its entry, and take
//! pushes into their publish target. Errors are plain text with the HTTP status the clients
//! print; a 401 challenges for Basic credentials.

mod package;
mod push_form;
mod remote;
mod v2;
mod v3;

use std::collections::BTreeMap;

use arca_protocol::{Command, CommandError, Overwrite, PackageType, Registry, RegistryKind, Role};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;

use crate::AppState;
use crate::auth::{Caller, authenticate, caller_for_secret};
use crate::ecosystems::nuget_version;
use crate::frontend::{ApiError, BlobCursor, TextError, receive_blob, serve_file, unless_refused};
use crate::meta::{ProposeError, StateRead};
use crate::policy::firewall::{self, versions::Ecosystem};
use crate::proxy;
use crate::usage::Download;
use package::PackageMetadata;

/// The version attribute holding what the `.nuspec` says, as JSON.
const METADATA: &str = "nuget.metadata";
/// The version attribute holding the package's SHA-512, base64.
const SHA512: &str = "nuget.sha512";
/// The version attribute marking an unlisted version (`false`).
const LISTED: &str = "nuget.listed";
/// The header NuGet clients send an API key in.
const API_KEY: &str = "x-nuget-apikey";

/// NuGet feeds at `/nuget/<registry>/`.
pub struct NuGet;

impl crate::frontend::FrontEnd for NuGet {
    fn segment(&self) -> &'static str {
        "nuget"
    }

    fn routes(&self) -> Router<AppState> {
        let handler = any(crate::frontend::answering(route));
        Router::new()
            .route("/nuget/{registry}", handler.clone())
            .route("/nuget/{registry}/", handler.clone())
            .route("/nuget/{registry}/{*path}", handler)
    }

    fn is_download(&self, path: &str) -> bool {
        path.ends_with(".nupkg") || path.contains("/package/")
    }
}

/// One request: the node, the caller and the registry it addresses.
struct Context<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    caller: Caller,
    registry: String,
}

impl Context<'_> {
    /// Checks that the caller may do what `needed` allows on the registry, a NuGet registry.
    fn authorize(&self, needed: Role) -> Result<Registry, ApiError> {
        self.state
            .typed_registry(&self.caller, &self.registry, needed, PackageType::Nuget)
    }

    /// `https://host/nuget/<registry>` (no trailing slash).
    fn base_url(&self) -> String {
        let origin =
            crate::http_server::public_origin(self.state.config.public_url.as_ref(), self.headers);
        format!("{origin}/nuget/{}", self.registry)
    }
}

/// The caller: from `Authorization`, else from an `X-NuGet-ApiKey` holding an Arca token.
fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    match authenticate(state, headers)? {
        Caller::Anonymous => match headers.get(API_KEY).and_then(|v| v.to_str().ok()) {
            Some(key) if !key.trim().is_empty() => Ok(caller_for_secret(state, key.trim())?),
            _ => Ok(Caller::Anonymous),
        },
        caller => Ok(caller),
    }
}

/// One version of a package as the feeds show it.
#[derive(Debug, Clone)]
struct Entry {
    /// The normalized version, in its author's letter case.
    version: String,
    metadata: PackageMetadata,
    listed: bool,
    /// When it was published, unix milliseconds.
    published_ms: u64,
    /// The `.nupkg`'s size and SHA-512 (base64), where known.
    size: Option<u64>,
    sha512: Option<String>,
    /// How many times it was downloaded, through any member (the usage figures).
    downloads: u64,
}

impl Entry {
    fn is_prerelease(&self) -> bool {
        self.version.contains('-')
    }

    /// The lower-cased normalized version, as the flat container and Arca's storage name it.
    fn key(&self) -> String {
        self.version.to_ascii_lowercase()
    }
}

/// Orders versions of a package as NuGet does.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    Ecosystem::NuGet
        .compare(a, b)
        .unwrap_or_else(|| a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()))
}

/// The file name of a version's package in storage and in the flat container.
fn nupkg_file(id: &str, version: &str) -> String {
    format!("{id}.{version}.nupkg").to_ascii_lowercase()
}

/// The versions of package `id` (lower case) through `registry`, oldest first: each from the
/// first member holding it.
async fn entries(ctx: &Context<'_>, registry: &Registry, id: &str) -> Result<Vec<Entry>, ApiError> {
    let mut all: BTreeMap<String, Entry> = BTreeMap::new();
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        let found = if member.kind == RegistryKind::Remote {
            match remote::entries(ctx, &member, id).await {
                Ok(found) => found,
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            }
        } else {
            stored_entries(ctx.state, &member, id)?
        };
        for entry in found {
            all.entry(entry.key()).or_insert(entry);
        }
        let counted = ctx
            .state
            .meta
            .read(|view| crate::meta::usage::package_versions_usage(view, &member.name, id))?;
        for (version, count) in counted {
            if let Some(entry) = all.get_mut(&version.to_ascii_lowercase()) {
                entry.downloads += count.downloads;
            }
        }
    }
    if let Some(error) = failure
        && all.is_empty()
    {
        return Err(error);
    }
    let mut entries: Vec<Entry> = all.into_values().collect();
    entries.sort_by(|a, b| compare_versions(&a.version, &b.version));
    Ok(entries)
}

/// The versions of `id` a hosted member holds.
fn stored_entries(state: &AppState, member: &Registry, id: &str) -> Result<Vec<Entry>, ApiError> {
    let Some(contents) = state
        .meta
        .read(|view| view.package_contents(&member.name, id))?
    else {
        return Ok(Vec::new());
    };
    Ok(contents
        .versions
        .values()
        .filter_map(|stored| {
            let metadata: PackageMetadata =
                serde_json::from_str(stored.attributes.get(METADATA)?).ok()?;
            Some(Entry {
                version: nuget_version::normalize(&metadata.version)?,
                listed: stored.attributes.get(LISTED).map(String::as_str) != Some("false"),
                published_ms: stored.created_at,
                size: Some(stored.size),
                sha512: stored.attributes.get(SHA512).cloned(),
                downloads: 0,
                metadata,
            })
        })
        .collect())
}

/// The ids of the packages `registry` offers for `term`: for an empty term every package its
/// hosted members hold, in id order; otherwise the packages of any member (a remote one: those it
/// has cached) that the search index finds by id, title, description, summary or tags, best
/// first (see [`crate::search`]).
async fn search_ids(
    state: &AppState,
    registry: &Registry,
    term: &str,
) -> Result<Vec<String>, ApiError> {
    let words: Vec<String> = term.split_whitespace().map(str::to_lowercase).collect();
    let members = proxy::resolution_order(state, registry);
    if words.is_empty() {
        let view = state.meta.view()?;
        let mut ids = std::collections::BTreeSet::new();
        for member in members.iter().filter(|m| m.kind != RegistryKind::Remote) {
            ids.extend(view.package_names(&member.name, None, usize::MAX)?);
        }
        return Ok(ids.into_iter().collect());
    }
    let names = members.into_iter().map(|member| member.name).collect();
    let (hits, _) = state
        .search
        .clone()
        .find_in_members(
            state.meta.clone(),
            names,
            words,
            (0, crate::search::MAX_LIMIT),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(hits.into_iter().map(|hit| hit.package).collect())
}

/// Every request. Errors are answered in plain text with the message as the status line's reason
/// too, which is all `nuget.exe` 2.x prints of a failed push; a 401 challenges for Basic alone,
/// the only challenge it answers with the credentials of its config.
async fn route(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, std::convert::Infallible> {
    Ok(match answer(&state, method, &uri, &headers, body).await {
        Ok(response) => response,
        Err(error) => {
            let error = TextError::from(error);
            let reason: Vec<u8> = error
                .message
                .bytes()
                .map(|b| if b.is_ascii_graphic() { b } else { b' ' })
                .take(200)
                .collect();
            let mut response = error.into_response();
            if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason) {
                response.extensions_mut().insert(reason);
            }
            response
        }
    })
}

async fn answer(
    state: &AppState,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no such endpoint {}", uri.path()));
    let rest = uri.path().strip_prefix("/nuget/").ok_or_else(not_found)?;
    let (registry, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = crate::frontend::percent_decode(path).ok_or_else(not_found)?;
    let ctx = Context {
        state,
        headers,
        caller: caller(state, headers)?,
        registry: registry.to_string(),
    };
    let ctx = &ctx;
    let segments: Vec<&str> = path.split('/').collect();
    match (segments.as_slice(), &method) {
        (["v3", rest @ ..], &Method::GET | &Method::HEAD) => {
            v3::route(ctx, rest, uri.query()).await
        }
        // nuget.exe 2.x puts to the feed's root, later clients to `api/v2/package`.
        ([""] | ["api", "v2", "package"] | ["api", "v2", "package", ""], &Method::PUT) => {
            let writable = ctx
                .authorize(Role::Write)
                .and_then(|registry| ctx.state.write_target(&registry));
            let (target, body) = unless_refused(writable, headers, body).await?;
            push(ctx, &target, body).await
        }
        (["api", "v2", "package", id, version], &Method::DELETE | &Method::POST) => {
            set_listed(ctx, id, version, method == Method::POST).await
        }
        // `nuget delete` 2.x, whose source is the feed's root.
        ([id, version], &Method::DELETE) => set_listed(ctx, id, version, false).await,
        (["package", id, version], &Method::GET | &Method::HEAD)
        | (["api", "v2", "package", id, version], &Method::GET | &Method::HEAD) => {
            download(ctx, id, version).await
        }
        (_, &Method::GET | &Method::HEAD) => v2::route(ctx, &path, uri.query())
            .await?
            .ok_or_else(not_found),
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "NOT_ALLOWED",
            format!("{method} is not supported on {}", uri.path()),
        )),
    }
}

/// Serves the `.nupkg` of `id` `version` from the first member that has it (a remote member
/// fetches it), unless the firewall blocks the version.
async fn download(ctx: &Context<'_>, id: &str, version: &str) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let not_found = || ApiError::not_found(format!("{id} {version} not found"));
    let id = id.to_ascii_lowercase();
    let version = nuget_version::normalize(version)
        .ok_or_else(not_found)?
        .to_ascii_lowercase();
    let (holder, blob) = find_package(ctx, &registry, &id, &version)
        .await?
        .ok_or_else(not_found)?;
    let download = Download::of(&holder.name, &id, &version, &ctx.caller);
    Ok(serve_file(ctx.state, ctx.headers, &blob, Some(download)))
}

/// The `.nupkg` of `id` `version` (both lower case, the version normalized) through `registry`.
async fn find_package(
    ctx: &Context<'_>,
    registry: &Registry,
    id: &str,
    version: &str,
) -> Result<Option<(Registry, arca_protocol::BlobRef)>, ApiError> {
    let file = nupkg_file(id, version);
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        let now = ctx.state.now_ms();
        let held = firewall::check_member(&ctx.state.meta.view()?, &member, id, version, now)?;
        let located = if held {
            None
        } else if member.kind == RegistryKind::Remote {
            match remote::locate(ctx, &member, id, version).await {
                Ok(Some(located)) => Some(located),
                Ok(None) => continue,
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            }
        } else {
            continue;
        };
        let found = proxy::find_or_fetch_file(
            ctx.state,
            std::slice::from_ref(&member),
            (id, version, &file),
            |_| located.clone(),
        )
        .await;
        match found {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) | Err(proxy::ProxyError::NotFound(_)) => {}
            Err(error) => failure = Some(ApiError::from(error)),
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(None),
    }
}

/// The form's one part (what `nuget push` and `dotnet nuget push` send, see [`push_form`]), or
/// the body itself when it is not a multipart form; with the headers that describe it (a form's
/// `Content-Length` is not the package's).
fn package_body(headers: &HeaderMap, body: Body) -> (Body, HeaderMap) {
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok());
    match boundary {
        Some(boundary) => (
            Body::from_stream(push_form::first_part(body, &boundary)),
            HeaderMap::new(),
        ),
        None => (body, headers.clone()),
    }
}

/// `PUT api/v2/package`: stores the pushed `.nupkg` as the version its `.nuspec` names; 409 when
/// that version exists.
async fn push(ctx: &Context<'_>, target: &Registry, body: Body) -> Result<Response, ApiError> {
    let (body, headers) = package_body(ctx.headers, body);
    let blob = receive_blob(ctx.state, &headers, body, None).await?;
    let (metadata, sha512) = {
        let state = ctx.state.clone();
        let blob = blob.clone();
        crate::blocking::spawn(move || -> Result<_, String> {
            let (metadata, _) =
                package::read_nupkg(BlobCursor::new(state.chunks.clone(), blob.clone()))?;
            let mut hasher = <sha2::Sha512 as sha2::Digest>::new();
            std::io::copy(
                &mut BlobCursor::new(state.chunks.clone(), blob),
                &mut crate::frontend::DigestWriter(&mut hasher),
            )
            .map_err(|e| e.to_string())?;
            let digest = sha2::Digest::finalize(hasher);
            Ok((
                metadata,
                base64::engine::general_purpose::STANDARD.encode(digest),
            ))
        })
        .await
        .map_err(ApiError::internal)?
    }
    .map_err(|why| ApiError::invalid(format!("not a NuGet package: {why}")))?;
    if !nuget_version::is_valid_id(&metadata.id) {
        return Err(ApiError::invalid(format!(
            "the .nuspec's id {:?} is not a valid package id",
            metadata.id
        )));
    }
    let version = nuget_version::normalize(&metadata.version).ok_or_else(|| {
        ApiError::invalid(format!(
            "the .nuspec's version {:?} is not a NuGet version",
            metadata.version
        ))
    })?;
    let (id, key) = (
        metadata.id.to_ascii_lowercase(),
        version.to_ascii_lowercase(),
    );
    let mut attributes = BTreeMap::from([
        (
            METADATA.to_string(),
            serde_json::to_string(&PackageMetadata {
                version: version.clone(),
                ..metadata.clone()
            })
            .map_err(ApiError::internal)?,
        ),
        (SHA512.to_string(), sha512),
    ]);
    if !metadata.description.is_empty() {
        attributes.insert("description".into(), metadata.description.clone());
    }
    let committed = ctx
        .state
        .meta
        .propose(Command::PutFile {
            registry: target.name.clone(),
            package: id.clone(),
            version: key.clone(),
            filename: nupkg_file(&id, &key),
            blob,
            attributes,
            tags: Vec::new(),
            overwrite: Overwrite::RefuseVersion,
            at: ctx.state.now_ms(),
        })
        .await;
    match committed {
        Ok(()) => Ok((
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "id": metadata.id, "version": version })),
        )
            .into_response()),
        Err(ProposeError::Refused(CommandError::AlreadyExists(_))) => Err(ApiError::conflict(
            format!("{} {version} already exists", metadata.id),
        )),
        Err(error) => Err(error.into()),
    }
}

/// `DELETE api/v2/package/<id>/<version>` (unlist: the version stays installable by its exact
/// version but leaves searches and "latest") or `POST` there (list it again).
async fn set_listed(
    ctx: &Context<'_>,
    id: &str,
    version: &str,
    listed: bool,
) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Write)?;
    let target = ctx.state.write_target(&registry)?;
    let not_found = || ApiError::not_found(format!("{id} {version} not found"));
    let id = id.to_ascii_lowercase();
    let version = nuget_version::normalize(version)
        .ok_or_else(not_found)?
        .to_ascii_lowercase();
    let exists = ctx
        .state
        .meta
        .read(|view| view.version(&target.name, &id, &version))?
        .is_some();
    if !exists {
        return Err(not_found());
    }
    let (set, remove) = if listed {
        (BTreeMap::new(), vec![LISTED.to_string()])
    } else {
        (
            BTreeMap::from([(LISTED.to_string(), "false".to_string())]),
            Vec::new(),
        )
    };
    ctx.state
        .meta
        .propose(Command::SetAttributes {
            registry: target.name.clone(),
            package: id,
            version,
            set,
            remove,
            at: ctx.state.now_ms(),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

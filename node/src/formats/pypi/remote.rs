//! Remote and virtual PyPI registries.
//!
//! A remote registry's project page is the upstream's (fetched as PEP 691 JSON when the upstream
//! speaks it, else PEP 503 HTML, and cached as a metadata document with the registry's time to live
//! under `simple/<project>`), read into the same [`Project`] model local projects use, with every link
//! pointing back at this registry's own file URLs, and merged with what was cached before (so a file
//! that vanished upstream is still listed while it is kept here). A file is fetched on its first
//! download from the URL the page lists, checked against the page's sha256, and recorded like an
//! upload: package = normalised project, version = the version in the file name, file = file name. A
//! wheel's core metadata (PEP 658) is read from the cached wheel when that gives the bytes the page
//! promised, else fetched from the upstream's `<url>.metadata`.
//!
//! A virtual registry's page merges its members' pages in member order (a file name an earlier
//! member lists wins), with links to the virtual registry; a download tries the members in order.

use std::collections::BTreeSet;

use arca_protocol::{BlobRef, Command, Overwrite, Registry, RegistryKind, Sha256};
use reqwest::Url;
use sha2::Digest as _;

use super::model::{Distribution, FileDetails, METADATA_SUFFIX, Project, file_attribute};
use super::names::parse_distribution;
use super::upstream_index::{self, UpstreamFile};
use super::wheel::read_metadata;
use super::{PypiError, stored_version};
use crate::AppState;
use crate::blob::BlobWriter;
use crate::frontend::BlobCursor;
use crate::meta::{StateRead, StoreError};
use crate::proxy::{self, Expected, ProxyError};

/// What a remote registry asks its upstream for: PEP 691 JSON first, HTML as a fallback.
const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, \
                      application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// The `Warning` sent with a page built from a stale upstream page (RFC 7234).
pub const STALE_WARNING: &str = "110 - \"Response is Stale\"";

/// Prefix of the keys project pages are cached under.
const DOCUMENT_PREFIX: &str = "simple/";

/// A project as a registry serves it.
pub struct Resolved {
    /// The merged view, links pointing at the registry asked.
    pub project: Project,
    /// True when part of it comes from a stale upstream page, or an upstream failed and what this
    /// node holds was served without it.
    pub stale: bool,
}

/// What a remote registry's upstream lists for a project.
struct Listing {
    files: Vec<UpstreamFile>,
    stale: bool,
}

/// The URL path files of `registry` are served under.
fn files_base(registry: &str) -> String {
    format!("/pypi/{registry}/files")
}

/// Reads a whole (small) blob: a cached document.
async fn read_bytes(state: &AppState, blob: &BlobRef) -> Result<Vec<u8>, ProxyError> {
    crate::frontend::read_small_blob(state, blob)
        .await
        .map_err(|e| ProxyError::Record(format!("reading a cached document: {e}")))
}

/// The upstream's page of `project` (normalised) for remote registry `registry`, from the cache while
/// it is fresh; `None` when the upstream has no such project.
async fn listing(
    state: &AppState,
    registry: &Registry,
    project: &str,
) -> Result<Option<Listing>, ProxyError> {
    let upstream = registry
        .upstream
        .as_ref()
        .ok_or_else(|| ProxyError::Upstream(format!("{} has no upstream", registry.name)))?;
    let path = page_path(&upstream.url, project);
    let page = Url::parse(&format!("{}/{path}", upstream.url.trim_end_matches('/')))
        .map_err(|e| ProxyError::Upstream(format!("bad upstream URL {}: {e}", upstream.url)))?;
    let document = match state
        .proxy
        .document(
            state,
            registry,
            &format!("{DOCUMENT_PREFIX}{project}"),
            &path,
            Some(ACCEPT),
        )
        .await
    {
        Ok(document) => document,
        Err(ProxyError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    let body = read_bytes(state, &document.cached.blob).await?;
    Ok(Some(Listing {
        files: upstream_index::parse(&body, &document.cached.content_type, &page),
        stale: document.stale,
    }))
}

/// The path of a project's page under an upstream URL, which may be the repository's root
/// (`https://pypi.org`, `http://host/pypi/<registry>`) or its simple index (`https://pypi.org/simple`).
fn page_path(upstream_url: &str, project: &str) -> String {
    if upstream_url.trim_end_matches('/').ends_with("/simple") {
        format!("{project}/")
    } else {
        format!("{DOCUMENT_PREFIX}{project}/")
    }
}

/// What `registry` holds of `project` itself (uploaded, or cached from an upstream).
fn recorded_project(
    state: &AppState,
    registry: &str,
    project: &str,
    files_base: &str,
) -> Result<Option<Project>, StoreError> {
    Ok(state
        .meta
        .read(|view| view.package_contents(registry, project))?
        .map(|package| Project::from_package(&package, files_base))
        .filter(|project| !project.releases.is_empty()))
}

/// The upstream's files of `project` as remote registry `registry` serves them: links under
/// `files_base`, and for files already cached the digest and size of what is kept.
fn upstream_project(
    state: &AppState,
    registry: &str,
    project: &str,
    files_base: &str,
    files: &[UpstreamFile],
) -> Result<Project, StoreError> {
    let view = state.meta.view()?;
    let mut recorded = std::collections::BTreeMap::new();
    for file in files {
        if !recorded.contains_key(&file.version) {
            let version = view.version(registry, project, &file.version)?;
            recorded.insert(file.version.clone(), version);
        }
    }
    {
        let distributions = files.iter().map(|file| {
            let version = recorded.get(&file.version).and_then(Option::as_ref);
            let cached = version.and_then(|v| v.files.get(&file.filename));
            let cached_metadata =
                version.and_then(|v| v.files.get(&format!("{}{METADATA_SUFFIX}", file.filename)));
            let details: Option<FileDetails> = version
                .and_then(|v| v.attributes.get(&file_attribute(&file.filename)))
                .and_then(|json| serde_json::from_str(json).ok());
            let distribution = Distribution {
                filename: file.filename.clone(),
                url: format!("{files_base}/{project}/{}/{}", file.version, file.filename),
                sha256: cached.map_or(file.sha256, |c| c.sha256),
                size: cached.map(|c| c.size).or(file.size).unwrap_or_default(),
                uploaded_at: file
                    .uploaded_at
                    .or(cached.map(|c| c.created_at))
                    .unwrap_or_default(),
                requires_python: file.requires_python.clone(),
                yanked: file.yanked.clone(),
                core_metadata: cached_metadata.map(|m| m.sha256).or(file.core_metadata),
                details,
            };
            (file.version.clone(), distribution)
        });
        Ok(Project::from_files(project, distributions))
    }
}

/// `project` (normalised) as `registry` serves it: its own files when local; the upstream's page
/// merged with what is cached when remote; the members' views merged in order when virtual.
pub async fn resolve_project(
    state: &AppState,
    registry: &Registry,
    project: &str,
) -> Result<Resolved, PypiError> {
    let base = files_base(&registry.name);
    let mut sources = Vec::new();
    let mut stale = false;
    let mut failure = None;
    for member in proxy::resolution_order(state, registry) {
        if member.kind == RegistryKind::Remote {
            match listing(state, &member, project).await {
                Ok(Some(listing)) => {
                    stale |= listing.stale;
                    sources.push(upstream_project(
                        state,
                        &member.name,
                        project,
                        &base,
                        &listing.files,
                    )?);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(registry = %member.name, project, %error, "upstream page unavailable");
                    failure = Some(error);
                }
            }
        }
        if let Some(recorded) = recorded_project(state, &member.name, project, &base)? {
            sources.push(recorded);
        }
    }
    match Project::merge(project, sources) {
        Some(project) => Ok(Resolved {
            project,
            stale: stale || failure.is_some(),
        }),
        None => Err(match failure {
            Some(error) => error.into(),
            None => {
                PypiError::not_found(format!("project {project} not found in {}", registry.name))
            }
        }),
    }
}

/// The projects `registry` knows of: its own, or its members'; for a remote registry, those it has
/// cached a page or a file of (the upstream's whole list is not fetched).
pub fn known_projects(state: &AppState, registry: &Registry) -> Result<Vec<String>, StoreError> {
    let members = proxy::resolution_order(state, registry);
    let view = state.meta.view()?;
    let mut names = BTreeSet::new();
    for member in &members {
        names.extend(view.package_names(&member.name, None, usize::MAX)?);
        if member.kind == RegistryKind::Remote {
            names.extend(
                view.cached_keys(&member.name, DOCUMENT_PREFIX)?
                    .iter()
                    .filter_map(|key| key.strip_prefix(DOCUMENT_PREFIX))
                    .map(str::to_string),
            );
        }
    }
    Ok(names.into_iter().collect())
}

/// The blob of a file recorded in `registry`.
fn recorded_file(
    state: &AppState,
    registry: &str,
    project: &str,
    version: &str,
    filename: &str,
) -> Result<Option<BlobRef>, StoreError> {
    state.meta.read(|view| {
        let file = view
            .version(registry, project, version)?
            .and_then(|v| v.files.get(filename).cloned());
        match file {
            Some(file) => view.blob(&file.sha256),
            None => Ok(None),
        }
    })
}

/// A distribution (or `<distribution>.metadata`) of `registry`: recorded in it, or — trying its
/// members in order when virtual — in the first member that has it or whose upstream lists it.
pub async fn find_file(
    state: &AppState,
    registry: &Registry,
    project: &str,
    version: &str,
    filename: &str,
) -> Result<Option<(Registry, BlobRef)>, PypiError> {
    let mut failure = None;
    for member in proxy::resolution_order(state, registry) {
        if let Some(blob) = recorded_file(state, &member.name, project, version, filename)? {
            if member.kind == RegistryKind::Remote {
                state.proxy.count_hit(&member.name);
            }
            return Ok(Some((member, blob)));
        }
        if member.kind != RegistryKind::Remote {
            continue;
        }
        match fetch_file(state, &member, project, version, filename).await {
            Ok(Some(blob)) => return Ok(Some((member, blob))),
            Ok(None) => {}
            Err(error) => failure = Some(error),
        }
    }
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(None),
    }
}

/// Fetches a file of remote registry `registry` from the URL its upstream page lists and records it.
async fn fetch_file(
    state: &AppState,
    registry: &Registry,
    project: &str,
    version: &str,
    filename: &str,
) -> Result<Option<BlobRef>, ProxyError> {
    let (distribution, is_metadata) = match filename.strip_suffix(METADATA_SUFFIX) {
        Some(distribution) => (distribution, true),
        None => (filename, false),
    };
    let Some(listing) = listing(state, registry, project).await? else {
        return Ok(None);
    };
    let version = stored_version(version);
    let Some(file) = listing
        .files
        .into_iter()
        .find(|f| f.filename == distribution && f.version == version)
    else {
        return Ok(None);
    };
    let located = if is_metadata {
        let Some(sha256) = file.core_metadata else {
            return Ok(None);
        };
        if let Some(blob) = metadata_from_wheel(state, registry, project, &file, sha256).await {
            return Ok(Some(blob));
        }
        (
            format!("{}{METADATA_SUFFIX}", file.url),
            Expected {
                sha256: Some(sha256),
                ..Expected::default()
            },
        )
    } else {
        (
            file.url.clone(),
            Expected {
                sha256: Some(file.sha256),
                ..Expected::default()
            },
        )
    };
    let found = proxy::find_or_fetch_file(
        state,
        std::slice::from_ref(registry),
        (project, &file.version, filename),
        |_| Some(located.clone()),
    )
    .await?;
    let Some((_, blob)) = found else {
        return Ok(None);
    };
    if !is_metadata {
        record_details(state, registry, project, &file).await?;
    }
    Ok(Some(blob))
}

/// Keeps what the upstream page said of a cached distribution (its kind, Python tag and
/// `Requires-Python`) the way an upload keeps it, so the file is listed alike when the page is gone.
async fn record_details(
    state: &AppState,
    registry: &Registry,
    project: &str,
    file: &UpstreamFile,
) -> Result<(), ProxyError> {
    let Some(parsed) = parse_distribution(&file.filename) else {
        return Ok(());
    };
    let details = FileDetails {
        packagetype: parsed.kind.packagetype().to_string(),
        python_version: parsed.python_tag,
        requires_python: file.requires_python.clone(),
        blake2_256: String::new(),
    };
    let Ok(json) = serde_json::to_string(&details) else {
        return Ok(());
    };
    state
        .meta
        .propose(Command::SetAttributes {
            registry: registry.name.clone(),
            package: project.to_string(),
            version: file.version.clone(),
            set: [(file_attribute(&file.filename), json)].into(),
            remove: Vec::new(),
            at: state.now_ms(),
        })
        .await?;
    Ok(())
}

/// The core metadata of a cached wheel, read from the wheel as an upload's is, and recorded as
/// `<wheel>.metadata` — when it is the file the upstream promised (`sha256`); `None` otherwise.
async fn metadata_from_wheel(
    state: &AppState,
    registry: &Registry,
    project: &str,
    file: &UpstreamFile,
    sha256: Sha256,
) -> Option<BlobRef> {
    if !file.filename.ends_with(".whl") {
        return None;
    }
    let wheel = recorded_file(
        state,
        &registry.name,
        project,
        &file.version,
        &file.filename,
    )
    .ok()
    .flatten()?;
    let cursor = BlobCursor::new(state.chunks.clone(), wheel);
    let metadata = crate::blocking::spawn(move || read_metadata(cursor))
        .await
        .ok()?
        .ok()?;
    if Sha256(sha2::Sha256::digest(&metadata).into()) != sha256 {
        tracing::debug!(file = %file.filename, "the wheel's METADATA is not what the upstream lists");
        return None;
    }
    let mut writer = BlobWriter::new(state.chunks.clone());
    writer.write(&metadata).await.ok()?;
    let blob = writer.finish().await.ok()?;
    state
        .meta
        .propose(Command::PutFile {
            registry: registry.name.clone(),
            package: project.to_string(),
            version: file.version.clone(),
            filename: format!("{}{METADATA_SUFFIX}", file.filename),
            blob: blob.clone(),
            attributes: Default::default(),
            tags: Vec::new(),
            overwrite: Overwrite::Allow,
            at: state.now_ms(),
        })
        .await
        .ok()?;
    Some(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_may_name_the_root_or_the_simple_index() {
        assert_eq!(page_path("https://pypi.org", "dep-a"), "simple/dep-a/");
        assert_eq!(page_path("http://h/pypi/py/", "dep-a"), "simple/dep-a/");
        assert_eq!(page_path("https://pypi.org/simple/", "dep-a"), "dep-a/");
        assert_eq!(page_path("https://pypi.org/simple", "dep-a"), "dep-a/");
    }
}
